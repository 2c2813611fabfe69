#include "record_json.hpp"

#include "format.hpp"
#include "record_fields.hpp"

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstring>
#include <type_traits>

namespace pdtt {

namespace json = boost::json;

namespace {

// The field lists' writer. Field names and record types are ours, plain
// ASCII identifiers: they are copied as they are; every value string goes
// through Boost.JSON's escaping.
class Writer {
public:
    // spare: where a flow's identity is made when its record keeps none.
    Writer(JsonText& out, json::serializer& sr, JsonText* spare = nullptr) : out_(out), sr_(sr), spare_(spare) {}

    void type(std::string_view t) { field("type", t, true); }
    void time(std::string_view n, Timestamp ts) {
        char buf[32];
        field(n, rfc3339_utc(ts, buf), true); // digits and punctuation: nothing to escape
    }
    void text(std::string_view n, std::string_view s) {
        key(n);
        string(s);
    }
    void text_or_null(std::string_view n, const std::optional<std::string_view>& s) {
        key(n);
        if (s)
            string(*s);
        else
            raw("null");
    }
    template <std::integral T> void number(std::string_view n, T v) {
        constexpr size_t kDigits = 20; // of any 64-bit integer, sign included
        char* p = name(room(n.size() + 4 + kDigits), n);
        wrote(std::to_chars(p, p + kDigits, v).ptr);
    }
    template <std::integral T> void number(std::string_view n, const std::optional<T>& v) {
        if (v)
            number(n, *v);
        else
            field(n, "null", false);
    }
    void seconds(std::string_view n, double s) {
        char buf[32];
        field(n, fields::seconds_text(s, buf), false);
    }
    void classes(std::string_view n, const std::vector<ClassTotals>& classes) {
        if (classes.empty())
            return;
        key(n);
        raw("{");
        first_ = true;
        for (const auto& c : classes) {
            key_string(c.name); // from the configuration: escaped like any value
            raw("{");
            first_ = true;
            fields::class_row(*this, c);
            raw("}");
        }
        raw("}");
    }
    // The identity's text is made once per flow (FlowRecord::id_json) and
    // copied into every record of it. It is kept from a flow's first delta
    // or owner record on: a flow that only opens and closes (most of a
    // connection churn) or sits idle costs no memory for it.
    void identity(const FlowRecord& r) {
        if (r.id_json && !r.id_json->empty())
            return raw(*r.id_json);
        spare_->len = 0; // made where the room is, then kept at its size
        Writer w(*spare_, sr_);
        w.first_ = false; // it follows the head
        fields::identity(w, r.id);
        if (r.id_json && (r.type == FlowEvent::delta || r.type == FlowEvent::owner))
            r.id_json->assign(spare_->view());
        raw(spare_->view());
    }
    void connections(std::string_view n, const std::vector<PairRow>& rows) {
        key(n);
        raw("[");
        for (size_t i = 0; i < rows.size(); ++i) {
            if (i)
                raw(",");
            raw("{");
            first_ = true;
            fields::pair_row(*this, rows[i]);
            raw("}");
        }
        raw("]");
    }
    void raw(std::string_view s) { wrote(put(room(s.size()), s)); }

private:
    // Each field checks for room once and is written at the cursor: most
    // are a name and a few digits, where a string append per part cost more
    // than the text.
    char* room(size_t n) {
        if (out_.room.size() - out_.len < n) [[unlikely]]
            grow(n);
        return out_.room.data() + out_.len;
    }
    [[gnu::noinline]] void grow(size_t n) { out_.room.resize(std::max(2 * out_.room.size(), out_.len + n)); }
    void wrote(const char* end) { out_.len = size_t(end - out_.room.data()); }
    static char* put(char* p, std::string_view s) {
        std::memcpy(p, s.data(), s.size());
        return p + s.size();
    }
    // ,"n": at p, which has room for it.
    char* name(char* p, std::string_view n) {
        if (!first_)
            *p++ = ',';
        first_ = false;
        *p++ = '"';
        p = put(p, n);
        *p++ = '"';
        *p++ = ':';
        return p;
    }
    void key(std::string_view n) { wrote(name(room(n.size() + 4), n)); }
    // ,"n":v (v quoted when asked)
    void field(std::string_view n, std::string_view v, bool quoted) {
        char* p = name(room(n.size() + v.size() + 6), n);
        if (quoted)
            *p++ = '"';
        p = put(p, v);
        if (quoted)
            *p++ = '"';
        wrote(p);
    }
    void key_string(std::string_view n) {
        if (!first_)
            raw(",");
        first_ = false;
        string(n);
        raw(":");
    }
    // Valid UTF-8 first (Boost.JSON does not check it on output); ASCII
    // needs no repair copy.
    void string(std::string_view s) {
        bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
        if (ascii)
            return escaped(s);
        std::string repaired = valid_utf8(s);
        escaped(repaired);
    }
    // Room for the worst case, every octet as \u00XX, so one read() finishes it.
    void escaped(std::string_view s) {
        sr_.reset(s);
        const size_t most = 6 * s.size() + 2;
        char* p = room(most);
        wrote(p + sr_.read(p, most).size());
    }

    JsonText& out_;
    json::serializer& sr_;
    JsonText* spare_;
    bool first_ = true;
};

template <typename Record, typename List>
std::string_view make_line(JsonText& out, json::serializer& sr, JsonText* spare, const Record& r, List list) {
    out.len = 0;
    Writer w(out, sr, spare);
    w.raw("{");
    list(w, r);
    w.raw("}\n");
    return out.view();
}

} // namespace

std::string_view JsonRecords::line(const FlowRecord& r) {
    return make_line(line_, sr_, &id_, r, [](Writer& w, const FlowRecord& r) { fields::flow(w, r); });
}

std::string_view JsonRecords::line(const UserReport& r) {
    return make_line(line_, sr_, nullptr, r, [](Writer& w, const UserReport& r) { fields::user_report(w, r); });
}

std::string_view JsonRecords::line(const JobReport& r) {
    return make_line(line_, sr_, nullptr, r, [](Writer& w, const JobReport& r) { fields::job_report(w, r); });
}

std::string_view JsonRecords::line(const AgentStats& s) {
    return make_line(line_, sr_, nullptr, s, [](Writer& w, const AgentStats& s) { fields::agent_stats(w, s); });
}

namespace {

// The field lists' third writer: a DOM with the types the fields have
// (unsigned as uint64, signed as int64), for readers that want one.
class Dom {
public:
    explicit Dom(json::object& o) : o_(o) {}

    void type(std::string_view t) { o_["type"] = t; }
    void time(std::string_view n, Timestamp ts) {
        char buf[32];
        o_[n] = rfc3339_utc(ts, buf);
    }
    void text(std::string_view n, std::string_view s) { o_[n] = valid_utf8(s); }
    void text_or_null(std::string_view n, const std::optional<std::string_view>& s) {
        if (s)
            text(n, *s);
        else
            o_[n] = nullptr;
    }
    template <std::integral T> void number(std::string_view n, T v) {
        if constexpr (std::is_signed_v<T>)
            o_[n] = static_cast<int64_t>(v);
        else
            o_[n] = static_cast<uint64_t>(v);
    }
    template <std::integral T> void number(std::string_view n, const std::optional<T>& v) {
        if (v)
            number(n, *v);
        else
            o_[n] = nullptr;
    }
    void seconds(std::string_view n, double s) {
        char buf[32];
        o_[n] = json::parse(fields::seconds_text(s, buf));
    }
    void classes(std::string_view n, const std::vector<ClassTotals>& classes) {
        if (classes.empty())
            return;
        json::object by_class;
        for (const auto& c : classes) {
            json::object row;
            Dom w(row);
            fields::class_row(w, c);
            by_class[valid_utf8(c.name)] = std::move(row);
        }
        o_[n] = std::move(by_class);
    }
    void connections(std::string_view n, const std::vector<PairRow>& rows) {
        json::array a;
        for (const auto& c : rows) {
            json::object row;
            Dom w(row);
            fields::pair_row(w, c);
            a.push_back(std::move(row));
        }
        o_[n] = std::move(a);
    }

private:
    json::object& o_;
};

template <typename Record, typename List> json::object dom(const Record& r, List list) {
    json::object o;
    Dom w(o);
    list(w, r);
    return o;
}

} // namespace

json::object to_json(const FlowRecord& r) {
    return dom(r, [](Dom& w, const FlowRecord& r) { fields::flow(w, r); });
}
json::object to_json(const UserReport& r) {
    return dom(r, [](Dom& w, const UserReport& r) { fields::user_report(w, r); });
}
json::object to_json(const JobReport& r) {
    return dom(r, [](Dom& w, const JobReport& r) { fields::job_report(w, r); });
}
json::object to_json(const AgentStats& s) {
    return dom(s, [](Dom& w, const AgentStats& s) { fields::agent_stats(w, s); });
}

} // namespace pdtt
