// Exit statuses, the one-line error they travel with, and the program name
// that stderr puts in front of every line (said here, once).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pdtt {

inline constexpr std::string_view kProgramName = "pdtt-agent";

// Exit statuses of the command-line contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitPrivilege = 3;

// A one-line, user-facing error (without the program name) and the exit
// status it maps to.
class Error : public std::runtime_error {
public:
    Error(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }

private:
    int exit_code_;
};

// The line stderr shows for a message: "pdtt-agent: MESSAGE".
inline std::string error_line(std::string_view message) {
    std::string s(kProgramName);
    s += ": ";
    s += message;
    return s;
}

} // namespace pdtt
