#include "factory.hpp"

namespace pdtt {

SinkList make_sinks(const SinkSettings& settings, boost::asio::io_context& io) {
    SinkList sinks;
    if (settings.files)
        sinks.push_back(make_file_sink(settings.log_prefix));
    switch (settings.console) {
    case ConsoleFormat::text:
        sinks.push_back(make_text_sink(stdout, &io));
        break;
    case ConsoleFormat::json:
        sinks.push_back(make_json_sink(stdout, &io));
        break;
    case ConsoleFormat::none:
        break;
    }
    for (const auto& opts : settings.syslog) {
        auto sink = make_syslog_sink(opts, io);
        if (settings.syslog_records != RecordTypes{})
            sink = make_filtered_sink(std::move(sink), settings.syslog_records);
        sinks.push_back(std::move(sink));
    }
    if (!settings.metrics.listen.empty())
        sinks.push_back(make_metrics_sink(settings.metrics, io));
    return sinks;
}

} // namespace pdtt
