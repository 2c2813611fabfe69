#include "subuid.hpp"

#include <pwd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace pdtt {

namespace {

std::optional<uint32_t> number(std::string_view s) {
    uint32_t v = 0;
    if (s.empty())
        return std::nullopt;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size())
        return std::nullopt;
    return v;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

} // namespace

SubuidMap SubuidMap::parse(std::string_view text, const UidOf& uid_of, std::vector<std::string>* problems) {
    SubuidMap m;
    auto problem = [&](size_t line, const std::string& what) {
        if (problems)
            problems->push_back("line " + std::to_string(line) + ": " + what);
    };
    size_t lineno = 0;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        lineno++;
        if (line.empty() || line.front() == '#')
            continue;
        size_t c1 = line.find(':'), c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
        if (c2 == std::string_view::npos || line.find(':', c2 + 1) != std::string_view::npos) {
            problem(lineno, "not OWNER:FIRST:COUNT");
            continue;
        }
        std::string owner_s(line.substr(0, c1));
        auto first = number(line.substr(c1 + 1, c2 - c1 - 1)), count = number(line.substr(c2 + 1));
        if (!first || !count || *count == 0 || uint64_t(*first) + *count > (uint64_t(1) << 32)) {
            problem(lineno, "FIRST and COUNT must be numbers of a non-empty range of 32-bit uids");
            continue;
        }
        std::optional<uint32_t> owner = number(owner_s);
        if (!owner && !owner_s.empty() && uid_of)
            owner = uid_of(owner_s);
        if (!owner) {
            problem(lineno, "no user '" + owner_s + "'");
            continue;
        }
        SubuidRange r{*first, *count, *owner};
        auto at = std::lower_bound(m.ranges_.begin(), m.ranges_.end(), r.first,
                                   [](const SubuidRange& x, uint32_t v) { return x.first < v; });
        bool overlaps = (at != m.ranges_.end() && uint64_t(r.first) + r.count > at->first) ||
                        (at != m.ranges_.begin() && uint64_t(std::prev(at)->first) + std::prev(at)->count > r.first);
        if (overlaps) {
            problem(lineno, "overlaps an earlier range: left out");
            continue;
        }
        m.ranges_.insert(at, r);
    }
    return m;
}

uint32_t SubuidMap::owner(uint32_t uid) const {
    auto at = std::upper_bound(ranges_.begin(), ranges_.end(), uid,
                               [](uint32_t v, const SubuidRange& x) { return v < x.first; });
    if (at == ranges_.begin())
        return uid;
    --at;
    return uid - at->first < at->count ? at->owner : uid;
}

SubuidFile::Seen SubuidFile::stat_of(const std::string& path) {
    struct stat st {};
    Seen s;
    if (::stat(path.c_str(), &st) == 0) {
        s.exists = true;
        s.ino = st.st_ino;
        s.size = st.st_size;
        s.mtime = st.st_mtim;
    }
    return s;
}

bool SubuidFile::changed() const {
    Seen now = stat_of(path_);
    std::lock_guard lock(mu_);
    return now.exists != seen_.exists || now.ino != seen_.ino || now.size != seen_.size ||
           now.mtime.tv_sec != seen_.mtime.tv_sec || now.mtime.tv_nsec != seen_.mtime.tv_nsec;
}

std::shared_ptr<const SubuidMap> SubuidFile::load(const SubuidMap::UidOf& uid_of, std::vector<std::string>* problems) {
    Seen before = stat_of(path_);
    std::ifstream in(path_);
    std::ostringstream text;
    if (in)
        text << in.rdbuf();
    auto m = std::make_shared<const SubuidMap>(SubuidMap::parse(text.str(), uid_of, problems));
    std::lock_guard lock(mu_);
    seen_ = before; // a change while reading shows as changed() next time
    return m;
}

std::optional<uint32_t> uid_of_user(const std::string& name) {
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res)
        return std::nullopt;
    return pw.pw_uid;
}

struct SubuidWatcher::Shared {
    SubuidFile file;
    SubuidMap::UidOf uid_of;
    std::mutex mu;
    bool loading = false;
    std::shared_ptr<const SubuidMap> ready;
    std::vector<std::string> problems;
    Shared(std::string path, SubuidMap::UidOf u) : file(std::move(path)), uid_of(std::move(u)) {}
};

SubuidWatcher::SubuidWatcher(std::string path, SubuidMap::UidOf uid_of) :
    s_(std::make_shared<Shared>(std::move(path), std::move(uid_of))) {}

const std::string& SubuidWatcher::path() const { return s_->file.path(); }

std::shared_ptr<const SubuidMap> SubuidWatcher::load_now(std::vector<std::string>* problems) {
    return s_->file.load(s_->uid_of, problems);
}

std::shared_ptr<const SubuidMap> SubuidWatcher::poll(std::vector<std::string>* problems) {
    std::lock_guard lock(s_->mu);
    if (s_->ready) {
        if (problems)
            problems->insert(problems->end(), s_->problems.begin(), s_->problems.end());
        s_->problems.clear();
        return std::exchange(s_->ready, nullptr);
    }
    if (s_->loading || !s_->file.changed())
        return nullptr;
    s_->loading = true;
    std::thread([s = s_] {
        std::vector<std::string> found;
        auto m = s->file.load(s->uid_of, &found);
        std::lock_guard lock(s->mu);
        s->ready = std::move(m);
        s->problems = std::move(found);
        s->loading = false;
    }).detach();
    return nullptr;
}

} // namespace pdtt
