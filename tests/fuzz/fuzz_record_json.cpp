// JSON lines of records with arbitrary strings and numbers, through the JSON
// sink itself: every record is exactly one line, and every line is a JSON
// object that boost::json parses back (so valid UTF-8), "v":1 and "type" first.
#include "factory.hpp"
#include "fuzz_records.hpp"
#include "record_json.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

[[noreturn]] void fail(const char* what, const std::string& line) {
    std::fprintf(stderr, "%s: %s\n", what, line.c_str());
    std::abort();
}

void check_line(const std::string& line) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec)
        fail(("not JSON (" + ec.message() + ")").c_str(), line);
    if (!v.is_object() || v.as_object().size() < 2)
        fail("not an object", line);
    const auto& o = v.as_object();
    auto it = o.begin();
    if (it->key() != "v" || !it->value().is_int64() || it->value().as_int64() != 1)
        fail("\"v\":1 is not first", line);
    ++it;
    if (it->key() != "type" || !it->value().is_string())
        fail("\"type\" is not second", line);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider p(data, size);
    pdtt::fuzz::Records gen(p);

    char* buf = nullptr;
    size_t len = 0;
    std::FILE* out = ::open_memstream(&buf, &len);
    if (!out)
        std::abort();
    size_t records = 0;
    {
        auto sink = pdtt::make_json_sink(out);
        while (p.remaining_bytes() > 0 && records < 64) {
            ++records;
            switch (p.ConsumeIntegralInRange(0, 6)) {
            case 0:
                sink->flow_open(gen.flow());
                break;
            case 1:
                sink->flow_delta(gen.flow());
                break;
            case 2:
                sink->flow_close(gen.flow());
                break;
            case 3:
                sink->flow_owner(gen.flow());
                break;
            case 4:
                sink->user_report(gen.user_report());
                break;
            case 5:
                sink->job_report(gen.job_report());
                break;
            default:
                sink->agent_stats(gen.agent_stats());
                break;
            }
        }
        sink->flush();
    }
    std::fclose(out);
    const std::string text(buf, len);
    std::free(buf);

    if (records && (text.empty() || text.back() != '\n'))
        fail("output does not end in a newline", text);
    size_t lines = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        check_line(text.substr(pos, nl - pos));
        ++lines;
        pos = nl + 1;
    }
    if (lines != records)
        fail(("records and lines differ: " + std::to_string(records) + " records").c_str(), text);

    // The public mapping on its own too, as the syslog sink uses it.
    pdtt::fuzz::Records more(p);
    check_line(boost::json::serialize(pdtt::to_json(more.flow())));
    return 0;
}
