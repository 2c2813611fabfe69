// RFC 5424 messages of records with arbitrary strings: each is one line of
// printable text (no C0 control or DEL octet), a well-formed header and one
// SD-ELEMENT whose PARAM-VALUEs escape '"', '\' and ']', valid UTF-8; a
// split user_report carries each connection once.
#include "fuzz_records.hpp"
#include "syslog_format.hpp"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

using pdtt::rfc5424::Param;

[[noreturn]] void fail(const char* what, std::string_view m, size_t at) {
    std::fprintf(stderr, "%s at octet %zu of: %.*s\n", what, at, int(m.size()), m.data());
    std::abort();
}

bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80                 ? 0
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 9;
        if (n == 9 || i + n >= s.size())
            return false;
        unsigned cp = n == 0 ? c : c & (0x3F >> n);
        for (size_t k = 1; k <= n; ++k) {
            auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (d & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
}

// Checks m and returns its PARAM-NAMEs.
std::vector<std::string> check_message(std::string_view m) {
    for (size_t i = 0; i < m.size(); ++i)
        if (static_cast<unsigned char>(m[i]) < 0x20 || m[i] == 0x7f)
            fail("raw control octet", m, i);
    if (!valid_utf8(m))
        fail("invalid UTF-8", m, 0);
    size_t i = 0;
    if (m.substr(0, 1) != "<")
        fail("no PRI", m, 0);
    size_t gt = m.find(">1 ");
    if (gt == std::string_view::npos || gt < 2 || gt > 4)
        fail("no PRI or VERSION", m, 0);
    i = gt + 3;
    // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID: printable US-ASCII, one space apart.
    for (int field = 0; field < 5; ++field) {
        size_t start = i;
        while (i < m.size() && m[i] > 32 && m[i] < 127)
            ++i;
        if (i == start || i >= m.size() || m[i] != ' ')
            fail("bad header field", m, i);
        ++i;
    }
    const std::string_view sd_id = "[pdtt@32473";
    if (m.substr(i, sd_id.size()) != sd_id)
        fail("no SD-ELEMENT", m, i);
    i += sd_id.size();
    std::vector<std::string> names;
    for (;;) {
        if (i >= m.size())
            fail("SD-ELEMENT not closed", m, i);
        if (m[i] == ']')
            break;
        if (m[i] != ' ')
            fail("expected a space before a PARAM", m, i);
        size_t start = ++i;
        while (i < m.size() && m[i] != '=' && m[i] != ' ' && m[i] != ']' && m[i] != '"' && m[i] > 32 &&
               static_cast<unsigned char>(m[i]) < 127)
            ++i;
        if (i == start || i - start > 32 || m.substr(i, 2) != "=\"")
            fail("bad PARAM-NAME", m, i);
        names.emplace_back(m.substr(start, i - start));
        for (i += 2;; ++i) {
            if (i >= m.size())
                fail("PARAM-VALUE not closed", m, i);
            if (m[i] == '\\') {
                if (i + 1 >= m.size() || (m[i + 1] != '"' && m[i + 1] != '\\' && m[i + 1] != ']'))
                    fail("backslash that escapes nothing", m, i);
                ++i;
            } else if (m[i] == ']') {
                fail("unescaped ] in a PARAM-VALUE", m, i);
            } else if (m[i] == '"') {
                ++i;
                break;
            }
        }
    }
    ++i;
    if (i < m.size() && m[i] != ' ')
        fail("MSG not after a space", m, i);
    return names;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider p(data, size);
    pdtt::fuzz::Records gen(p);
    namespace r5 = pdtt::rfc5424;
    r5::Header h{p.ConsumeIntegralInRange(0, 23), gen.text(), gen.text(), gen.text()};

    check_message(r5::format_flow_close(h, gen.flow()));
    check_message(r5::format_flow_owner(h, gen.flow()));
    check_message(r5::format_job_report(h, gen.job_report()));
    check_message(r5::format_agent_stats(h, gen.agent_stats()));
    std::vector<Param> params(p.ConsumeIntegralInRange(0, 4));
    for (auto& [k, v] : params)
        k = "k", v = gen.text();
    check_message(r5::format_message(h, gen.ts(), gen.text(), params, gen.text()));

    const pdtt::UserReport r = gen.user_report();
    const size_t max = p.ConsumeBool() ? r5::kUdpMaxMessage : r5::kTcpMaxMessage;
    std::set<std::string> conns; // local_I seen, over every part
    for (const auto& m : r5::format_user_report(h, r, max))
        for (const auto& n : check_message(m))
            if (n.rfind("local_", 0) == 0 && !conns.insert(n).second)
                fail("a connection in two parts", m, 0);
    if (conns.size() != r.connections.size())
        fail("a connection in no part", std::to_string(conns.size()), 0);
    return 0;
}
