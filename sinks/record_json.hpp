// Records as JSON text, from the field lists of record_fields.hpp: the JSON
// sink writes this, one object per line.
#pragma once

#include "records.hpp"

#include <boost/json.hpp>

#include <string>

namespace pdtt {

// A record's text, made in a buffer that grows and is then reused: no
// allocation per record. The std::string's size is its room, zero-filled
// only when it grows; the text is the first len octets.
struct JsonText {
    std::string room;
    size_t len = 0;

    std::string_view view() const { return {room.data(), len}; }
};

// Makes records' lines without allocating once the buffers have grown:
// numbers by std::to_chars, strings repaired to valid UTF-8 and escaped by
// Boost.JSON. "v", "type", "ts" first; unknown values are null.
class JsonRecords {
public:
    // One JSON object and a newline, valid until the next call. The flow's
    // identity comes from r.id_json, made there first when it is empty;
    // made afresh when r.id_json is null.
    std::string_view line(const FlowRecord& r);
    std::string_view line(const UserReport& r);
    std::string_view line(const JobReport& r);
    std::string_view line(const AgentStats& s);

private:
    boost::json::serializer sr_;
    JsonText line_;
    JsonText id_; // the identity of a flow nothing keeps
};

// The same fields as a DOM, for readers that want one (tests).
boost::json::object to_json(const FlowRecord& r);
boost::json::object to_json(const UserReport& r);
boost::json::object to_json(const JobReport& r);
boost::json::object to_json(const AgentStats& s);

} // namespace pdtt
