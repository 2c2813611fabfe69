// Records as JSON text, from the field lists of record_fields.hpp: the JSON
// sink writes this, one object per line.
#pragma once

#include "records.hpp"

#include <boost/json.hpp>

#include <string>

namespace pdtt {

// Appends records to a caller's buffer without allocating once the buffer
// has grown: numbers by std::to_chars, strings repaired to valid UTF-8 and
// escaped by Boost.JSON. "v", "type", "ts" first; unknown values are null.
class JsonRecords {
public:
    // The flow's identity comes from r.id_json, made there first when it is
    // empty; made afresh when r.id_json is null.
    void append(std::string& out, const FlowRecord& r);
    void append(std::string& out, const UserReport& r);
    void append(std::string& out, const JobReport& r);
    void append(std::string& out, const AgentStats& s);

private:
    boost::json::serializer sr_;
    std::string id_; // the identity of a flow nothing keeps
};

// The same fields as a DOM, for readers that want one (tests).
boost::json::object to_json(const FlowRecord& r);
boost::json::object to_json(const UserReport& r);
boost::json::object to_json(const JobReport& r);
boost::json::object to_json(const AgentStats& s);

} // namespace pdtt
