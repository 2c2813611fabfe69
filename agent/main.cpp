// pdtt-agent (also installed as pdtt_xdp_user, the original tool's name).
#include "agent.hpp"
#include "config.hpp"

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    try {
        auto cfg = pdtt::parse_config(argc, argv, std::cout);
        if (!cfg)
            return pdtt::kExitOk; // --help, --version
        pdtt::Agent agent(*cfg);
        return agent.run();
    } catch (const pdtt::Error& e) {
        std::cerr << pdtt::error_line(e.what()) << '\n';
        return e.exit_code();
    } catch (const std::exception& e) {
        std::cerr << pdtt::error_line(e.what()) << '\n';
        return pdtt::kExitRuntime;
    }
}
