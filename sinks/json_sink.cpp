// JSON lines on the console: one object per record, "v" and "type" first.
#include "console_out.hpp"
#include "factory.hpp"
#include "record_json.hpp"

namespace pdtt {

namespace {

class JsonSink : public Sink {
public:
    JsonSink(std::FILE* out, boost::asio::io_context* io) : out_(out, io) {}

    void flow_open(const FlowRecord& r) override { emit(r); }
    void flow_delta(const FlowRecord& r) override { emit(r); }
    void flow_close(const FlowRecord& r) override { emit(r); }
    void flow_owner(const FlowRecord& r) override { emit(r); }
    void user_report(const UserReport& r) override { emit(r); }
    void job_report(const JobReport& r) override { emit(r); }
    void agent_stats(const AgentStats& s) override { emit(s); }

    void interval_end() override { flush(); }

    void flush() override {
        if (!out_.flush())
            ++errors_;
    }

    bool drained() const override { return out_.drained(); }
    uint64_t errors() const override { return errors_ + out_.lost(); }

private:
    template <typename Record> void emit(const Record& r) {
        if (!out_.write(records_.line(r)))
            ++errors_;
    }

    ConsoleOut out_;
    JsonRecords records_;
    uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_json_sink(std::FILE* out, boost::asio::io_context* io) {
    return std::make_unique<JsonSink>(out, io);
}

} // namespace pdtt
