// JSON lines on the console: one object per record, "v" and "type" first.
#include "factory.hpp"
#include "record_json.hpp"

#include <boost/json.hpp>
#include <sys/stat.h>

namespace pdtt {

namespace json = boost::json;

namespace {

class JsonSink : public Sink {
public:
    explicit JsonSink(std::FILE* out) : out_(out) {
        // A reader on a pipe (jq) wants every line now; files flush per interval.
        struct stat st{};
        line_flush_ = fstat(fileno(out), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
    }

    void flow_open(const FlowRecord& r) override { emit(r); }
    void flow_delta(const FlowRecord& r) override { emit(r); }
    void flow_close(const FlowRecord& r) override { emit(r); }
    void flow_owner(const FlowRecord& r) override { emit(r); }
    void user_report(const UserReport& r) override { emit(r); }
    void job_report(const JobReport& r) override { emit(r); }
    void agent_stats(const AgentStats& s) override { emit(s); }

    void interval_end() override { flush(); }

    void flush() override {
        if (std::fflush(out_) != 0)
            failed();
    }

    uint64_t errors() const override { return errors_; }

private:
    // Every record is built in one reused arena and serialised into one
    // reused buffer: no allocation per record once they are warm.
    template <typename Record>
    void emit(const Record& r) {
        json::monotonic_resource arena(arena_, sizeof(arena_));
        json::object o = to_json(r, &arena);
        serializer_.reset(&o);
        line_.clear();
        while (!serializer_.done()) {
            size_t used = line_.size();
            line_.resize(used + 4096);
            line_.resize(used + serializer_.read(line_.data() + used, 4096).size());
        }
        line_ += '\n';
        if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size())
            failed();
        else if (line_flush_)
            flush();
    }

    void failed() {
        ++errors_;
        std::clearerr(out_);  // retry on the next record
    }

    std::FILE* out_;
    alignas(std::max_align_t) unsigned char arena_[16384];
    json::serializer serializer_;
    std::string line_;
    bool line_flush_ = false;
    uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_json_sink(std::FILE* out) {
    return std::make_unique<JsonSink>(out);
}

} // namespace pdtt
