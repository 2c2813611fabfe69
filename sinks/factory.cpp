#include "factory.hpp"

namespace pdtt {

SinkList make_sinks(const Config& cfg, boost::asio::io_context& io) {
    SinkList sinks;
    if (cfg.files)
        sinks.push_back(make_file_sink(cfg.log_prefix));
    switch (cfg.stdout_mode) {
    case StdoutMode::text:
        sinks.push_back(make_text_sink(stdout));
        break;
    case StdoutMode::json:
        sinks.push_back(make_json_sink(stdout));
        break;
    case StdoutMode::none:
        break;
    }
    for (const auto& url : cfg.syslog)
        sinks.push_back(make_syslog_sink({url, cfg.syslog_facility, cfg.syslog_app_name}, io));
    return sinks;
}

} // namespace pdtt
