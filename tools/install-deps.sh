#!/usr/bin/env bash
# Installs every build, test and run dependency of pdtt from Debian's
# packages. Idempotent: safe to run on every CI run and every fresh machine.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (it calls apt-get)" >&2
    exit 3
fi

packages=(
    # build
    build-essential cmake pkg-config clang llvm clang-format clang-tidy git
    libbpf-dev libelf-dev zlib1g-dev bpftool
    libsystemd-dev    # sd_notify: Type=notify and the watchdog
    libboost1.81-dev libboost-program-options1.81-dev
    libboost-test1.81-dev libboost-json1.81-dev ccache
    libssl-dev              # tls:// syslog (Boost.Asio's SSL stream)
    libclang-rt-dev         # ASan, UBSan and libFuzzer runtimes for clang (tools/sanitize-tests.sh)
    # run and test: namespaces, veth, traffic, users
    iproute2 passwd procps util-linux python3 jq
    # integration tests: an independent count of the bytes on the wire
    nftables
    # syslog tests: a real receiver, over TLS too, with certificates made by the test
    rsyslog rsyslog-gnutls openssl
    # benchmarks: load and the tools users have today
    iperf3 nethogs libbpf-tools
    openssh-server rsync    # owner tests: a real sshd, rsync and scp through it
    prometheus curl         # metrics tests: a real Prometheus scrapes the agent
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # The tests run sshd and Prometheus of their own: keep the packages from
    # starting the system's (policy-rc.d exit 101: no service starts), and
    # remove only ours.
    policy=/usr/sbin/policy-rc.d
    if [[ " ${missing[*]} " =~ " "(openssh-server|prometheus)" " && ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
