/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the packet parser tells XDP and tc about one frame. */
#ifndef PDTT_LIB_PKT_H
#define PDTT_LIB_PKT_H

#include "vmlinux.h"

struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 has_ports; /* first (or only) fragment with an L4 header */
	__u8 syn;	/* TCP: a handshake segment (SYN or SYN-ACK) */
	__u64 payload;	/* transport payload bytes */
};

enum { PKT_IGNORE = 0, PKT_IP = 1 };

#endif /* PDTT_LIB_PKT_H */
