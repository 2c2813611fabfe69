// Which monitored interface counts a VLAN's traffic, from a fake sysfs tree.
#define BOOST_TEST_MODULE links
#include <boost/test/unit_test.hpp>

#include "netlink.hpp"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

struct FakeSysfs {
    fs::path root;
    FakeSysfs() {
        std::string t = (fs::temp_directory_path() / "pdtt-sysfs-XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(t.data()) != nullptr);
        root = t;
    }
    ~FakeSysfs() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
    void dev(const std::string& name, int ifindex, int iflink, const std::string& devtype = "") {
        fs::create_directories(root / name);
        std::ofstream(root / name / "ifindex") << ifindex << "\n";
        std::ofstream(root / name / "iflink") << iflink << "\n";
        std::ofstream(root / name / "uevent") << (devtype.empty() ? "" : "DEVTYPE=" + devtype + "\n")
                                              << "INTERFACE=" << name << "\nIFINDEX=" << ifindex << "\n";
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(a_vlan_names_its_parent_and_nothing_else_does) {
    FakeSysfs s;
    s.dev("eth0", 2, 2);
    s.dev("eth0.100", 5, 2, "vlan");
    s.dev("eth0.100.7", 6, 5, "vlan"); // QinQ: a VLAN on a VLAN
    s.dev("veth0", 7, 8);              // a veth's iflink is its peer: not a parent
    s.dev("br0", 9, 9, "bridge");
    BOOST_TEST(pdtt::vlan_parent("eth0.100", s.root.string()) == "eth0");
    BOOST_TEST(pdtt::vlan_parent("eth0.100.7", s.root.string()) == "eth0.100");
    BOOST_TEST(pdtt::vlan_parent("eth0", s.root.string()) == "");
    BOOST_TEST(pdtt::vlan_parent("veth0", s.root.string()) == "");
    BOOST_TEST(pdtt::vlan_parent("br0", s.root.string()) == "");
    BOOST_TEST(pdtt::vlan_parent("missing", s.root.string()) == "");
}
