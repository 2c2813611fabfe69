// A real Prometheus (Debian's package) scrapes the agent every second with
// the bearer token, in the lab's host namespace; its query API must give
// each user exactly the bytes of the user's log file. And the endpoint as
// any client sees it: promtool accepts the exposition, 404, 401, and slow
// or huge requests dropped while the ring keeps up.
#define BOOST_TEST_MODULE prometheus
#include "jobs_lab.hpp"

#include <sys/stat.h>

#include <map>
#include <sstream>

using namespace pdtt::test;

namespace {

constexpr const char* kMetricsPort = "9877";
constexpr const char* kPrometheusAddr = "127.0.0.1:9090";
constexpr const char* kToken = "lab-token-7f3a9c";

struct PrometheusLab : Lab {
    fs::path token_file = dir / "token";
    fs::path prom_dir = dir / "prometheus";
    std::unique_ptr<Process> prometheus; // destroyed (killed) before the Lab removes its files

    PrometheusLab() {
        std::ofstream(token_file) << kToken << "\n";
        fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write);
        fs::create_directory(prom_dir);
    }
    ~PrometheusLab() { prometheus.reset(); }

    std::string metrics_addr() const { return link.a_ip4() + ":" + kMetricsPort; }
    std::string metrics_url(const std::string& path = "/metrics") const { return "http://" + metrics_addr() + path; }

    void start_prometheus() {
        fs::path cfg = prom_dir / "prometheus.yml";
        std::ofstream(cfg) << "global:\n"
                              "  scrape_interval: 1s\n"
                              "  scrape_timeout: 1s\n"
                              "scrape_configs:\n"
                              "  - job_name: pdtt\n"
                              "    authorization:\n"
                              "      type: Bearer\n"
                              "      credentials_file: "
                           << token_file.string()
                           << "\n"
                              "    static_configs:\n"
                              "      - targets: ['"
                           << metrics_addr() << "']\n";
        prometheus =
            std::make_unique<Process>(std::vector<std::string>{"prometheus", "--config.file=" + cfg.string(),
                                                               "--storage.tsdb.path=" + (prom_dir / "data").string(),
                                                               "--web.listen-address=" + std::string(kPrometheusAddr)},
                                      host.name());
        bool ready = wait_until(
            [&] { return curl_status("http://" + std::string(kPrometheusAddr) + "/-/ready") == 200; }, 30s, 100ms);
        BOOST_REQUIRE_MESSAGE(ready, "prometheus did not start: " << prometheus->err());
    }

    // HTTP status of a GET from the host namespace (0: no answer).
    int curl_status(const std::string& url, const std::string& extra = "") const {
        std::string out = capture(
            host.exec("sh -c \"curl -s -o /dev/null -m 10 -w '%{http_code}' " + extra + " '" + url + "' || true\""));
        return out.empty() ? 0 : std::atoi(out.c_str());
    }
    std::string curl(const std::string& url, const std::string& extra = "") const {
        return capture(host.exec("curl -s -m 10 " + extra + " '" + url + "'"));
    }
    std::string bearer() const { return std::string("-H 'Authorization: Bearer ") + kToken + "'"; }

    // user -> value of `expr` summed by user, from Prometheus's query API.
    std::map<std::string, uint64_t> query_by_user(const std::string& metric) const {
        std::map<std::string, uint64_t> out;
        for (const auto& [labels, v] : query_by({"user"}, metric))
            out[labels[0]] = v;
        return out;
    }
    // The labels' values -> `metric` summed by them.
    std::map<std::vector<std::string>, uint64_t> query_by(const std::vector<std::string>& by,
                                                          const std::string& metric) const {
        std::string list;
        for (const auto& l : by)
            list += (list.empty() ? "" : ",") + l;
        std::string body = curl("http://" + std::string(kPrometheusAddr) + "/api/v1/query",
                                "-G --data-urlencode 'query=sum by (" + list + ") (" + metric + ")'");
        std::map<std::vector<std::string>, uint64_t> out;
        boost::system::error_code ec;
        json::value v = json::parse(body, ec);
        if (ec || !v.is_object() || v.at("status").as_string() != "success")
            return out;
        for (const auto& r : v.at("data").at("result").as_array()) {
            const auto& o = r.as_object();
            std::vector<std::string> labels;
            for (const auto& l : by)
                labels.push_back(
                    o.at("metric").as_object().contains(l) ? json::value_to<std::string>(o.at("metric").at(l)) : "");
            out[labels] = std::stoull(json::value_to<std::string>(o.at("value").as_array()[1]));
        }
        return out;
    }
};

uint64_t ring_drops(const std::vector<json::object>& recs) {
    uint64_t drops = 0;
    for (const auto& r : recs)
        if (str(r, "type") == "agent_stats")
            drops = std::max(drops, u64(r, "ring_drops") + u64(r, "flow_table_full"));
    return drops;
}

} // namespace

// Prometheus's counters per user are the user's log file totals, to the byte.
BOOST_FIXTURE_TEST_CASE(prometheus_counts_what_the_log_files_say, PrometheusLab) {
    auto srv = serve(link.b_ip4());
    start_agent({"-t", "1", "--metrics-listen", metrics_addr(), "--metrics-token-file", token_file.string()});
    start_prometheus();
    transfer(alice, link.b_ip4(), 300'000, 1'200'000, 2);
    transfer(bob, link.b_ip4(), 2'000'000, 70'000);
    tcp_settled(host);
    tcp_settled(peer);

    // The files grow at each report, the metrics at each tick: wait for both
    // to have everything, and for Prometheus to have scraped it.
    std::map<std::string, uint64_t> tx, rx;
    FileSums a, b;
    bool same = wait_until(
        [&] {
            a = read_user_file(user_file(alice));
            b = read_user_file(user_file(bob));
            tx = query_by_user("pdtt_transmit_bytes_total");
            rx = query_by_user("pdtt_receive_bytes_total");
            return a.tx > 0 && b.tx > 0 && tx[alice.name()] == a.tx && rx[alice.name()] == a.rx &&
                   tx[bob.name()] == b.tx && rx[bob.name()] == b.rx;
        },
        20s, 500ms);
    BOOST_TEST(same, "alice: file " << a.tx << "/" << a.rx << ", prometheus " << tx[alice.name()] << "/"
                                    << rx[alice.name()] << "; bob: file " << b.tx << "/" << b.rx << ", prometheus "
                                    << tx[bob.name()] << "/" << rx[bob.name()]);

    auto recs = stop_agent();
    // The final report added nothing: the files still say what Prometheus said.
    BOOST_TEST(read_user_file(user_file(alice)).tx == a.tx);
    BOOST_TEST(read_user_file(user_file(bob)).rx == b.rx);
    BOOST_TEST(ring_drops(recs) == 0u);
    check_wire(recs);
}

// The endpoint as any client sees it.
BOOST_FIXTURE_TEST_CASE(only_get_metrics_with_the_token_is_answered, PrometheusLab) {
    start_agent({"-t", "1", "--metrics-listen", metrics_addr(), "--metrics-token-file", token_file.string()});
    BOOST_TEST(curl_status(metrics_url()) == 401);
    BOOST_TEST(curl_status(metrics_url(), "-H 'Authorization: Bearer wrong'") == 401);
    BOOST_TEST(curl_status(metrics_url(), bearer()) == 200);
    BOOST_TEST(curl_status(metrics_url("/"), bearer()) == 404);
    BOOST_TEST(curl_status(metrics_url("/api/v1/query"), bearer()) == 404);
    BOOST_TEST(curl_status(metrics_url(), bearer() + " -X POST") == 404);

    // promtool lints the exposition too (names, HELP, TYPE).
    fs::path text = dir / "metrics.txt";
    std::ofstream(text) << curl(metrics_url(), bearer());
    int rc = run("promtool check metrics < " + text.string() + " > " + (dir / "promtool.out").string() + " 2>&1");
    std::ifstream in(dir / "promtool.out");
    std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(rc == 0, "promtool check metrics: " << said);
    stop_agent();
}

BOOST_FIXTURE_TEST_CASE(a_token_file_others_can_read_is_refused, PrometheusLab) {
    fs::permissions(token_file, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
    Process agent({PDTT_AGENT_BIN, "-c", no_config.string(), "-i", link.a_name(), "--no-files", "--metrics-listen",
                   metrics_addr(), "--metrics-token-file", token_file.string()},
                  host.name());
    auto st = agent.wait(10s);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(*st == 2);
    BOOST_TEST(agent.err().find("chmod 600") != std::string::npos, agent.err());
}

// While one client dribbles half a request and another sends a huge one,
// a transfer goes on and Prometheus keeps scraping: the slow one is cut
// off after a few seconds, the huge one at once, and the kernel lost nothing.
BOOST_FIXTURE_TEST_CASE(slow_and_huge_requests_are_dropped_without_stalling_the_ring, PrometheusLab) {
    auto srv = serve(link.b_ip4());
    run_ok(peer.exec("tc qdisc add dev " + link.b_name() + " root tbf rate 200mbit burst 64kb latency 200ms"));
    start_agent({"-t", "1", "--metrics-listen", metrics_addr(), "--metrics-token-file", token_file.string()});
    start_prometheus();
    auto big = start_transfer(alice, link.b_ip4(), 1'000'000, 100'000'000, 4);

    // Half a request, then silence: bash keeps the connection open.
    Process slow({"bash", "-c",
                  "exec 3<>/dev/tcp/" + link.a_ip4() + "/" + kMetricsPort +
                      "; printf 'GET /metrics HTTP/1.1\\r\\nHo' >&3; start=$(date +%s%N); cat <&3 >/dev/null; "
                      "echo closed_after_ms=$(( ($(date +%s%N) - start) / 1000000 ))"},
                 host.name());
    auto t0 = std::chrono::steady_clock::now();
    std::string pad(64 * 1024, 'a');
    fs::path huge = dir / "huge.hdr";
    std::ofstream(huge) << "X-Pad: " << pad << "\n";
    BOOST_TEST(curl_status(metrics_url(), bearer() + " -H @" + huge.string()) == 0, "a huge request was answered");
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < 3s));
    BOOST_TEST(curl_status(metrics_url(), bearer()) == 200, "a scrape while the slow client waits");

    auto line = slow.wait_for_line("closed_after_ms=", 15s);
    BOOST_TEST_REQUIRE(line.has_value(), "the slow client was never cut off");
    int ms = std::stoi(line->substr(line->find('=') + 1));
    BOOST_TEST(ms >= 3000);
    BOOST_TEST(ms <= 8000);

    auto st = big->wait(60s);
    BOOST_REQUIRE_MESSAGE(st && *st == 0, "transfer failed: " << big->err());
    // Prometheus scraped all along.
    std::string up = curl("http://" + std::string(kPrometheusAddr) + "/api/v1/query",
                          "-G --data-urlencode 'query=min_over_time(up[5s])'");
    BOOST_TEST(up.find("\"value\":[") != std::string::npos, up);
    BOOST_TEST(up.find("\"1\"]") != std::string::npos, "a scrape failed meanwhile: " << up);

    auto recs = stop_agent();
    BOOST_TEST(ring_drops(recs) == 0u, "the kernel lost records");
    check_wire(recs);
}

// Per job and per class, as Prometheus stores them: a job's series are its
// job_reports' totals, each class's series its user_reports' class totals,
// and a job's series go away after its flows closed (10 intervals).
BOOST_FIXTURE_TEST_CASE(job_and_class_series_equal_the_reports_and_jobs_expire, PrometheusLab) {
    auto srv4 = serve(link.b_ip4()), srv6 = serve(link.b_ip6());
    SlurmCgroup cg;
    start_agent_nsenter(*this,
                        {"-t", "1", "--cgroup-v1", "off", "--metrics-listen", metrics_addr(), "--metrics-token-file",
                         token_file.string(), "--class", "v4=" + link.b_ip4(), "--class", "v6=" + link.b_ip6()});
    start_prometheus();
    transfer_in(*this, cg.task, alice, link.b_ip4(), 800'000, 300'000);
    transfer_in(*this, cg.task, alice, link.b_ip6(), 200'000, 600'000);
    transfer_in(*this, {}, bob, link.b_ip4(), 400'000, 100'000);
    const auto job_closed = std::chrono::steady_clock::now(); // its last flow, before this
    tcp_settled(host);
    tcp_settled(peer);

    // promtool accepts the exposition with job and class labels.
    fs::path text = dir / "metrics.txt";
    std::string exposition;
    // The records reach the sink at the agent's next tick.
    bool labelled = wait_until(
        [&] {
            exposition = curl(metrics_url(), bearer());
            return exposition.find("pdtt_job_transmit_bytes_total{job=\"4242\"") != std::string::npos &&
                   exposition.find(",class=\"v6\"}") != std::string::npos;
        },
        5s, 200ms);
    BOOST_TEST(labelled, "no job or class series: " << exposition);
    std::ofstream(text) << exposition;
    int rc = run("promtool check metrics < " + text.string() + " > " + (dir / "promtool.out").string() + " 2>&1");
    std::ifstream in(dir / "promtool.out");
    std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(rc == 0, "promtool check metrics: " << said);

    // Wait for Prometheus to hold the final values: the same twice, a second apart.
    using Q = std::map<std::vector<std::string>, uint64_t>;
    Q job_tx, job_rx, cls_tx, cls_rx;
    bool stable = wait_until(
        [&] {
            // Prometheus keeps `job` for its scrape job: ours is exported_job.
            Q jt = query_by({"exported_job", "user"}, "pdtt_job_transmit_bytes_total");
            Q jr = query_by({"exported_job", "user"}, "pdtt_job_receive_bytes_total");
            Q ct = query_by({"user", "class"}, "pdtt_transmit_bytes_total");
            Q cr = query_by({"user", "class"}, "pdtt_receive_bytes_total");
            bool same = !jt.empty() && jt == job_tx && jr == job_rx && ct == cls_tx && cr == cls_rx;
            job_tx = jt, job_rx = jr, cls_tx = ct, cls_rx = cr;
            return same;
        },
        20s, 1s);
    BOOST_TEST(stable, "Prometheus's job and class sums kept changing");

    // The job's series leave the exposition some 10 intervals after its last flow closed.
    bool gone =
        wait_until([&] { return curl(metrics_url(), bearer()).find("job=\"4242\"") == std::string::npos; }, 25s, 500ms);
    BOOST_TEST(gone, "job 4242's series never went away");
    BOOST_TEST((std::chrono::steady_clock::now() - job_closed > 8s), "job 4242's series went away too soon");

    auto recs = stop_agent();
    Q want_job_tx, want_job_rx, want_cls_tx, want_cls_rx;
    for (const auto& r : recs) {
        std::string type = str(r, "type");
        if (type == "job_report") {
            want_job_tx[{str(r, "job"), str(r, "user")}] += u64(r, "tx_bytes");
            want_job_rx[{str(r, "job"), str(r, "user")}] += u64(r, "rx_bytes");
        } else if (type == "user_report" && r.contains("classes")) {
            for (const auto& [name, t] : r.at("classes").as_object()) {
                if (u64(t.as_object(), "tx_bytes") + u64(t.as_object(), "rx_bytes") == 0)
                    continue;
                want_cls_tx[{str(r, "user"), std::string(name)}] += u64(t.as_object(), "tx_bytes");
                want_cls_rx[{str(r, "user"), std::string(name)}] += u64(t.as_object(), "rx_bytes");
            }
        }
    }
    BOOST_TEST_REQUIRE(want_job_tx.size() == 1u, "one job, one user");
    BOOST_TEST((want_job_tx.begin()->first == std::vector<std::string>{"4242", alice.name()}));
    auto show = [](const Q& q) {
        std::ostringstream o;
        for (const auto& [k, v] : q)
            o << (k.empty() ? "" : k[0]) << "/" << (k.size() > 1 ? k[1] : "") << "=" << v << " ";
        return o.str();
    };
    BOOST_TEST((job_tx == want_job_tx), "prometheus " << show(job_tx) << "reports " << show(want_job_tx));
    BOOST_TEST((job_rx == want_job_rx), "prometheus " << show(job_rx) << "reports " << show(want_job_rx));
    // Class "*" holds bytes counted outside any flow: none here, so the
    // classes are exactly the reports'.
    auto drop_zero = [](Q q) {
        for (auto it = q.begin(); it != q.end();)
            it = it->second == 0 ? q.erase(it) : std::next(it);
        return q;
    };
    Q got_tx = drop_zero(cls_tx), got_rx = drop_zero(cls_rx);
    for (Q* q : {&got_tx, &got_rx})
        for (auto it = q->begin(); it != q->end();)
            it = it->first[0] == alice.name() || it->first[0] == bob.name() ? std::next(it) : q->erase(it);
    BOOST_TEST((got_tx == want_cls_tx), "prometheus " << show(got_tx) << "reports " << show(want_cls_tx));
    BOOST_TEST((got_rx == want_cls_rx), "prometheus " << show(got_rx) << "reports " << show(want_cls_rx));
    BOOST_TEST((want_cls_tx[{alice.name(), "v6"}] > 0u));
    BOOST_TEST((want_cls_tx[{bob.name(), "v4"}] > 0u));
    BOOST_TEST(ring_drops(recs) == 0u);
}
