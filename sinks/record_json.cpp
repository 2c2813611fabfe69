#include "record_json.hpp"

#include "format.hpp"
#include "record_fields.hpp"

#include <algorithm>
#include <charconv>
#include <concepts>
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
    Writer(std::string& out, json::serializer& sr, std::string* spare = nullptr) : out_(out), sr_(sr), spare_(spare) {}

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
            out_ += "null";
    }
    template <std::integral T> void number(std::string_view n, T v) {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        field(n, std::string_view(buf, size_t(end - buf)), false);
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
        out_ += '{';
        first_ = true;
        for (const auto& c : classes) {
            key_string(c.name); // from the configuration: escaped like any value
            out_ += '{';
            first_ = true;
            fields::class_row(*this, c);
            out_ += '}';
        }
        out_ += '}';
    }
    // The identity's text is made once per flow (FlowRecord::id_json) and
    // copied into every record of it. It is kept from a flow's first delta
    // or owner record on: a flow that only opens and closes (most of a
    // connection churn) or sits idle costs no memory for it.
    void identity(const FlowRecord& r) {
        if (r.id_json && !r.id_json->empty()) {
            out_ += *r.id_json;
            return;
        }
        spare_->clear(); // made where the room is, then kept at its size
        Writer w(*spare_, sr_);
        w.first_ = false; // it follows the head
        fields::identity(w, r.id);
        if (r.id_json && (r.type == FlowEvent::delta || r.type == FlowEvent::owner))
            *r.id_json = *spare_;
        out_ += *spare_;
    }
    void connections(std::string_view n, const std::vector<PairRow>& rows) {
        key(n);
        out_ += '[';
        for (size_t i = 0; i < rows.size(); ++i) {
            if (i)
                out_ += ',';
            out_ += '{';
            first_ = true;
            fields::pair_row(*this, rows[i]);
            out_ += '}';
        }
        out_ += ']';
    }

private:
    void comma() {
        if (!first_)
            out_ += ',';
        first_ = false;
    }
    void key(std::string_view n) { field(n, {}, false); }
    // ,"n":v in one append (v quoted when asked): most fields are a name and
    // a few digits, and one append costs what each of five would.
    void field(std::string_view n, std::string_view v, bool quoted) {
        char buf[128];
        if (n.size() + v.size() + 6 > sizeof buf) {
            comma();
            out_.append("\"").append(n).append("\":");
            if (quoted)
                out_.append("\"").append(v).append("\"");
            else
                out_.append(v);
            return;
        }
        char* p = buf;
        if (!first_)
            *p++ = ',';
        first_ = false;
        *p++ = '"';
        p = std::copy(n.begin(), n.end(), p);
        *p++ = '"';
        *p++ = ':';
        if (quoted)
            *p++ = '"';
        p = std::copy(v.begin(), v.end(), p);
        if (quoted)
            *p++ = '"';
        out_.append(buf, size_t(p - buf));
    }
    void key_string(std::string_view n) {
        comma();
        string(n);
        out_ += ':';
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
        size_t used = out_.size();
        out_.resize(used + 6 * s.size() + 2);
        out_.resize(used + sr_.read(out_.data() + used, out_.size() - used).size());
    }

    std::string& out_;
    json::serializer& sr_;
    std::string* spare_;
    bool first_ = true;
};

template <typename Record, typename List>
void append_object(std::string& out, json::serializer& sr, const Record& r, List list) {
    Writer w(out, sr);
    out += '{';
    list(w, r);
    out += '}';
}

} // namespace

void JsonRecords::append(std::string& out, const FlowRecord& r) {
    Writer w(out, sr_, &id_);
    out += '{';
    fields::flow(w, r);
    out += '}';
}

void JsonRecords::append(std::string& out, const UserReport& r) {
    append_object(out, sr_, r, [](Writer& w, const UserReport& r) { fields::user_report(w, r); });
}

void JsonRecords::append(std::string& out, const JobReport& r) {
    append_object(out, sr_, r, [](Writer& w, const JobReport& r) { fields::job_report(w, r); });
}

void JsonRecords::append(std::string& out, const AgentStats& s) {
    append_object(out, sr_, s, [](Writer& w, const AgentStats& s) { fields::agent_stats(w, s); });
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
