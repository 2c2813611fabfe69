// The loaded BPF object and libbpf's handles into it, each with exactly one
// move-only owner that frees it: nothing leaks on any failure path. The
// agent and the tests that load the object share these.
#pragma once

#include <functional>
#include <memory>

struct pdtt_bpf;
struct bpf_link;
struct ring_buffer;

namespace pdtt {

struct SkeletonDeleter {
    void operator()(pdtt_bpf* s) const;
};
struct BpfLinkDeleter {
    void operator()(bpf_link* l) const; // detaches
};
struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const;
};

using Skeleton = std::unique_ptr<pdtt_bpf, SkeletonDeleter>;
using BpfLink = std::unique_ptr<bpf_link, BpfLinkDeleter>;
using RingBuffer = std::unique_ptr<ring_buffer, RingBufferDeleter>;

// Opens the object, lets configure set rodata, map sizes and autoload
// between open and load, and loads it. Throws Error; whatever was opened
// is freed again.
Skeleton load_skeleton(const std::function<void(pdtt_bpf&)>& configure);

// Exit status for a failed bpf() or libbpf call: missing privilege for
// EPERM and EACCES, a runtime failure otherwise. err: errno or -errno.
int exit_code_for(int err);

} // namespace pdtt
