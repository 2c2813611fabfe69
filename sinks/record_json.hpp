// The one mapping from records to their named fields, in SPEC's order:
// the JSON sink prints it, the syslog sink turns it into STRUCTURED-DATA.
#pragma once

#include "records.hpp"

#include <boost/json.hpp>

namespace pdtt {

// "v", "type", "ts" first; strings repaired to valid UTF-8; unknown pid and
// comm are null.
// sp: where the object allocates (the JSON sink hands in a reused arena).
boost::json::object to_json(const FlowRecord& r, boost::json::storage_ptr sp = {});
boost::json::object to_json(const UserReport& r, boost::json::storage_ptr sp = {});
boost::json::object to_json(const JobReport& r, boost::json::storage_ptr sp = {});
boost::json::object to_json(const AgentStats& s, boost::json::storage_ptr sp = {});

} // namespace pdtt
