// Console summary: one table per interval, no per-flow lines (too noisy).
#include "console_out.hpp"
#include "factory.hpp"
#include "format.hpp"

#include <algorithm>
#include <optional>

namespace pdtt {

namespace {

// Keeps terminal escape sequences in a user name off the console.
std::string printable(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = '?';
    return s;
}

std::string left(const std::string& s, size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string right(const std::string& s, size_t width) {
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

class TextSink : public Sink {
public:
    TextSink(std::FILE* out, boost::asio::io_context* io) : out_(out, io) {}

    void user_report(const UserReport& r) override {
        rows_.push_back({printable(r.user), r.tx_bytes, r.rx_bytes, r.flows});
        if (!ts_) {
            ts_ = r.ts;
            interval_s_ = r.interval_s;
        }
    }

    void agent_stats(const AgentStats& s) override {
        stats_ = s;
        ts_ = s.ts;
        interval_s_ = s.interval_s;
    }

    void interval_end() override {
        if (!ts_)
            return;
        std::stable_sort(rows_.begin(), rows_.end(),
                         [](const Row& a, const Row& b) { return a.tx + a.rx > b.tx + b.rx; });
        size_t width = 16;
        for (const auto& r : rows_)
            width = std::max(width, r.user.size());

        char interval[32];
        std::snprintf(interval, sizeof interval, "%.1f", interval_s_);
        std::string text = "=== " + local_datetime(*ts_) + " (" + interval + " s) ===\n";
        text += left("USER", width) + right("TX", 12) + right("RX", 12) + right("TOTAL", 12) + right("FLOWS", 8) + "\n";
        for (const auto& r : rows_)
            text += left(r.user, width) + right(human_bytes(r.tx), 12) + right(human_bytes(r.rx), 12) +
                    right(human_bytes(r.tx + r.rx), 12) + right(std::to_string(r.flows), 8) + "\n";
        if (rows_.empty())
            text += "(no traffic)\n";
        if (stats_)
            text += "health: events " + std::to_string(stats_->events) + ", ring drops " +
                    std::to_string(stats_->ring_drops) + ", flow table full " +
                    std::to_string(stats_->flow_table_full) + ", sink errors " + std::to_string(stats_->sink_errors) +
                    (stats_->interfaces_missing ? ", interfaces missing " + std::to_string(stats_->interfaces_missing)
                                                : std::string()) +
                    "\n";
        rows_.clear();
        stats_.reset();
        ts_.reset();

        if (!out_.write(text))
            ++errors_;
        else
            flush();
    }

    void flush() override {
        if (!out_.flush())
            ++errors_;
    }

    bool drained() const override { return out_.drained(); }
    uint64_t errors() const override { return errors_ + out_.lost(); }

private:
    struct Row {
        std::string user;
        uint64_t tx, rx, flows;
    };

    ConsoleOut out_;
    std::vector<Row> rows_;
    std::optional<AgentStats> stats_;
    std::optional<Timestamp> ts_;
    double interval_s_ = 0;
    uint64_t errors_ = 0;
};

} // namespace

std::unique_ptr<Sink> make_text_sink(std::FILE* out, boost::asio::io_context* io) {
    return std::make_unique<TextSink>(out, io);
}

} // namespace pdtt
