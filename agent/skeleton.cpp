#include "skeleton.hpp"

#include "errors.hpp"
#include "pdtt.skel.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pdtt {

void SkeletonDeleter::operator()(pdtt_bpf* s) const { pdtt_bpf__destroy(s); }
void BpfLinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }
void RingBufferDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

int exit_code_for(int err) {
    err = std::abs(err);
    return (err == EPERM || err == EACCES) ? kExitPrivilege : kExitRuntime;
}

Skeleton load_skeleton(const std::function<void(pdtt_bpf&)>& configure) {
    Skeleton skel(pdtt_bpf__open());
    if (!skel)
        throw Error(kExitRuntime, std::string("cannot open the BPF object: ") + std::strerror(errno));
    configure(*skel);
    if (int err = pdtt_bpf__load(skel.get()))
        throw Error(exit_code_for(err), "cannot load the BPF programs (" + std::string(std::strerror(std::abs(err))) +
                                            "); run with -v for the verifier log");
    return skel;
}

} // namespace pdtt
