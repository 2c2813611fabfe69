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
    for (const auto& opts : settings.syslog)
        sinks.push_back(make_syslog_sink(opts, io));
    return sinks;
}

} // namespace pdtt
