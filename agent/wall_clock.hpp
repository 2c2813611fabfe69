// Converts CLOCK_MONOTONIC nanoseconds (kernel timestamps) to wall time.
#pragma once

#include "records.hpp"

#include <time.h>

#include <chrono>
#include <cstdint>

namespace pdtt {

class WallClock {
public:
    WallClock() { resync(); }
    // After the wall clock was stepped.
    void resync() { offset_us_ = clock_us(CLOCK_REALTIME) - clock_us(CLOCK_MONOTONIC); }
    Timestamp from_mono(uint64_t mono_ns) const {
        return Timestamp(std::chrono::microseconds(int64_t(mono_ns / 1000) + offset_us_));
    }
    static uint64_t mono_now_ns() {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        return uint64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }

private:
    static int64_t clock_us(clockid_t id) {
        timespec ts{};
        ::clock_gettime(id, &ts);
        return int64_t(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
    }

    int64_t offset_us_ = 0; // wall - monotonic
};

} // namespace pdtt
