// The config reader fed any bytes: the part before the first NUL is the
// config file, each NUL-separated part after it one command-line argument.
// Anything malformed must be an Error (exit 2 with one line), never a
// crash, a hang or another exception.
#include "config.hpp"
#include "errors.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    const size_t nul = in.find('\0');
    const std::string file = in.substr(0, nul);

    // A memfd: no file system to clean up, and a path the reader opens as any file.
    static const int fd = ::memfd_create("pdtt-fuzz.conf", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, file.data(), file.size(), 0) != ssize_t(file.size()))
        std::abort();
    const std::string path = "/proc/self/fd/" + std::to_string(fd);

    std::vector<std::string> args{"pdtt-agent", "--config", path};
    for (size_t pos = nul; pos != std::string::npos && pos < in.size();) {
        size_t next = in.find('\0', pos + 1);
        args.push_back(in.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1));
        pos = next;
    }
    bool multiline_arg = false;
    for (size_t i = 3; i < args.size(); ++i) {
        // Another file named on the command line (--config /dev/zero) is the
        // administrator's own doing, not input this target is about.
        if (args[i].find("/dev") != std::string::npos || args[i].find("/proc") != std::string::npos ||
            args[i].find("/sys") != std::string::npos)
            return 0;
        multiline_arg = multiline_arg || args[i].find('\n') != std::string::npos;
    }
    std::vector<const char*> argv;
    for (const auto& a : args)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);

    std::ostringstream out;
    try {
        pdtt::parse_config(int(args.size()), argv.data(), out, "/nonexistent/pdtt.conf");
    } catch (const pdtt::Error& e) {
        if (e.exit_code() != pdtt::kExitUsage) {
            std::fprintf(stderr, "config error with exit status %d: %s\n", e.exit_code(), e.what());
            std::abort();
        }
        // One line: the message is what stderr shows (an argument with a
        // newline in it may be quoted back as it is).
        if (!multiline_arg && std::string(e.what()).find('\n') != std::string::npos) {
            std::fprintf(stderr, "config error of more than one line: %s\n", e.what());
            std::abort();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "config reader threw something else than Error: %s\n", e.what());
        std::abort();
    }
    return 0;
}
