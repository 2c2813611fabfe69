#!/usr/bin/python3
# Many UDP flows, each moving a little every second: one socket (one source
# port, so one flow) per flow, each sending SIZE bytes per second to
# ADDR:PORT, spread evenly over the second; or, given START (a
# CLOCK_MONOTONIC time in seconds), each second's datagrams in one burst at
# START + N, so that a test can put them all inside one report interval;
# then every flow first sends one datagram ("second -1"), spread over
# START-1.4 .. START-0.6, so that 20,000 flows do not open in one burst.
# Prints one line per second, "second=N bytes=B", flushed, and "total=B
# seconds=S" at the end.
#   udp-flows.py ADDR PORT FLOWS SECONDS [SIZE [START]]
import socket
import sys
import time

addr, port, flows, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 100
burst_at = float(sys.argv[6]) if len(sys.argv) > 6 else None
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
socks = []
for _ in range(flows):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((addr, port))
    socks.append(s)
payload = b"m" * size
total = 0
start = burst_at if burst_at is not None else time.monotonic()
if burst_at is not None:
    opened = 0
    for i, s in enumerate(socks):
        if i % 200 == 0:
            time.sleep(max(0.0, start - 1.4 + 0.8 * i / flows - time.monotonic()))
        opened += s.send(payload)
    total += opened
    print(f"second=-1 bytes={opened} late={time.monotonic() - start + 0.6:.3f}", flush=True)
for second in range(seconds):
    moved = 0
    if burst_at is not None:
        time.sleep(max(0.0, start + second - time.monotonic()))
    for i, s in enumerate(socks):
        if burst_at is None and i % 200 == 0:   # a sleep per socket would cost more than the send
            due = start + second + i / flows
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
        moved += s.send(payload)
    total += moved
    # late: how long after its due time this second's sending ended
    print(f"second={second} bytes={moved} late={time.monotonic() - start - second:.3f}", flush=True)
print(f"total={total} seconds={time.monotonic() - start:.3f}", flush=True)
