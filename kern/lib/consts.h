/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* uapi constants that vmlinux.h cannot carry: it holds types, not macros. */
#ifndef PDTT_LIB_CONSTS_H
#define PDTT_LIB_CONSTS_H

#define ETH_P_IP	 0x0800
#define ETH_P_IPV6	 0x86DD
#define ETH_P_8021Q	 0x8100
#define ETH_P_8021AD	 0x88A8
#define AF_INET		 2
#define AF_INET6	 10
#define EEXIST		 17
#define TC_ACT_UNSPEC	 (-1)	    /* tcx: TCX_NEXT; clsact: continue */
#define PF_KTHREAD	 0x00200000 /* task_struct.flags: a kernel thread */
#define IP_MF		 0x2000
#define IP_OFFSET	 0x1FFF
/* IPv6 extension headers */
#define NEXTHDR_HOP	 0
#define NEXTHDR_ROUTING	 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH	 51
#define NEXTHDR_DEST	 60

#endif /* PDTT_LIB_CONSTS_H */
