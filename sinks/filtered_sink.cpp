// A sink that passes on only some record types (--syslog-records), so a
// site with many nodes can send reports but not one message per flow.
#include "factory.hpp"

namespace pdtt {

namespace {

class FilteredSink : public Sink {
public:
    FilteredSink(std::unique_ptr<Sink> inner, RecordTypes types) : inner_(std::move(inner)), types_(types) {}

    void flow_open(const FlowRecord& r) override { inner_->flow_open(r); }
    void flow_delta(const FlowRecord& r) override { inner_->flow_delta(r); }
    void flow_close(const FlowRecord& r) override {
        if (types_.has(RecordType::flow_close))
            inner_->flow_close(r);
    }
    void flow_owner(const FlowRecord& r) override {
        if (types_.has(RecordType::flow_owner))
            inner_->flow_owner(r);
    }
    void user_report(const UserReport& r) override {
        if (types_.has(RecordType::user_report))
            inner_->user_report(r);
    }
    void job_report(const JobReport& r) override {
        if (types_.has(RecordType::job_report))
            inner_->job_report(r);
    }
    void agent_stats(const AgentStats& s) override {
        if (types_.has(RecordType::agent_stats))
            inner_->agent_stats(s);
    }
    void interval_end() override { inner_->interval_end(); }
    void reopen() override { inner_->reopen(); }
    void flush() override { inner_->flush(); }
    uint64_t errors() const override { return inner_->errors(); }

private:
    std::unique_ptr<Sink> inner_;
    RecordTypes types_;
};

} // namespace

std::unique_ptr<Sink> make_filtered_sink(std::unique_ptr<Sink> inner, RecordTypes types) {
    return std::make_unique<FilteredSink>(std::move(inner), types);
}

} // namespace pdtt
