// The one interface every output implements. The agent core holds a list of
// Sink pointers and knows no concrete sink; each lives in its own file.
#pragma once

#include "records.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace pdtt {

class Sink {
public:
    virtual ~Sink() = default;
    virtual void flow_open(const FlowRecord&) {}
    virtual void flow_delta(const FlowRecord&) {}
    virtual void flow_close(const FlowRecord&) {}
    // A flow changed hands: its bytes so far were the old owner's.
    virtual void flow_owner(const FlowRecord&) {}
    // One per user with traffic, at the end of each interval.
    virtual void user_report(const UserReport&) {}
    // One per (job, step, user) with traffic, after the user reports.
    virtual void job_report(const JobReport&) {}
    virtual void agent_stats(const AgentStats&) {}
    // After every user_report/agent_stats of one interval has been handed in.
    virtual void interval_end() {}
    virtual void reopen() {} // SIGHUP: logrotate moved our files
    virtual void flush() {}
    // Shutdown, after the final flush(): what is still queued goes out on
    // the agent's loop, which runs until every sink is drained() or the
    // one deadline they share has passed. Nothing may block here.
    virtual void drain(std::chrono::steady_clock::time_point /*deadline*/) {}
    virtual bool drained() const { return true; }
    virtual uint64_t errors() const { return 0; }
};

using SinkList = std::vector<std::unique_ptr<Sink>>;

} // namespace pdtt
