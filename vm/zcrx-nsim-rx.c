// SPDX-License-Identifier: MIT
/*
 * zcrx-nsim-rx: receive one TCP connection into an io_uring zcrx area bound to
 * one rx queue, check the bytes, and report. A check for the zcrx variant of
 * netdevsim (vm/netdevsim.sh build KVER --variant zcrx), not part of the
 * harness. Raw syscalls, no liburing.
 *
 *   zcrx-nsim-rx IFNAME RXQ PORT BYTES
 *
 * Registers a zcrx ifq on IFNAME/RXQ (4096 buffers of one page, 4096 refill
 * queue entries), listens on PORT (IPv4, any address), accepts one connection
 * and posts a multishot RECV_ZC. Every completion's data must follow the
 * pattern byte[i] = i % 251; buffers go back through the refill queue. Ends at
 * EOF and exits 0 if exactly BYTES arrived in order. Prints "zcrx-nsim-rx:"
 * lines. Registration errors print the errno and exit 2.
 *
 * Build (the uapi headers of the target kernel are needed for zcrx):
 *   mkdir -p /tmp/zi/linux/io_uring
 *   cp <kbuild>/usr/src/linux-headers-<kv>-common/include/uapi/linux/io_uring.h /tmp/zi/linux/
 *   cp <...>/include/uapi/linux/io_uring/zcrx.h /tmp/zi/linux/io_uring/
 *   gcc -O2 -Wall -I/tmp/zi -o zcrx-nsim-rx vm/zcrx-nsim-rx.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AREA_PAGES 4096u
#define RQ_ENTRIES 4096u
#define CQ_ENTRIES 1024u

static long page_size;

static void die(const char *what, int err)
{
	printf("zcrx-nsim-rx: %s: %s (%d)\n", what, strerror(err), -err);
	fflush(stdout);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s IFNAME RXQ PORT BYTES\n", argv[0]);
		return 2;
	}
	unsigned int ifindex = if_nametoindex(argv[1]);
	unsigned int rxq = atoi(argv[2]);
	int port = atoi(argv[3]);
	unsigned long long want = strtoull(argv[4], NULL, 0);

	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!ifindex)
		die("if_nametoindex", errno);

	/* ring */
	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_CQE32 | IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	int ring = syscall(__NR_io_uring_setup, 16, &p);
	if (ring < 0)
		die("io_uring_setup", errno);
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(__u32);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * 2 * sizeof(struct io_uring_cqe);
	size_t ring_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
	char *sqr = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 ring, IORING_OFF_SQ_RING);
	if (sqr == MAP_FAILED)
		die("mmap rings", errno);
	char *cqr = sqr; /* IORING_FEAT_SINGLE_MMAP: one mapping for both */
	if (!(p.features & IORING_FEAT_SINGLE_MMAP))
		die("no IORING_FEAT_SINGLE_MMAP", EINVAL);
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
					 ring, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		die("mmap sqes", errno);
	unsigned *sq_tail = (unsigned *)(sqr + p.sq_off.tail);
	unsigned *sq_mask = (unsigned *)(sqr + p.sq_off.ring_mask);
	unsigned *sq_array = (unsigned *)(sqr + p.sq_off.array);
	unsigned *cq_head = (unsigned *)(cqr + p.cq_off.head);
	unsigned *cq_tail = (unsigned *)(cqr + p.cq_off.tail);
	unsigned cq_mask = *(unsigned *)(cqr + p.cq_off.ring_mask);
	char *cqes = cqr + p.cq_off.cqes; /* 32-byte entries */

	/* zcrx: area, refill queue region, registration */
	size_t area_len = (size_t)AREA_PAGES * page_size;
	char *area = mmap(NULL, area_len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	size_t rq_len = RQ_ENTRIES * sizeof(struct io_uring_zcrx_rqe) + page_size;
	char *rqmem = mmap(NULL, rq_len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (area == MAP_FAILED || rqmem == MAP_FAILED)
		die("mmap area", errno);
	struct io_uring_zcrx_area_reg area_reg = {
		.addr = (__u64)(uintptr_t)area,
		.len = area_len,
	};
	struct io_uring_region_desc region = {
		.user_addr = (__u64)(uintptr_t)rqmem,
		.size = rq_len,
		.flags = IORING_MEM_REGION_TYPE_USER,
	};
	struct io_uring_zcrx_ifq_reg reg = {
		.if_idx = ifindex,
		.if_rxq = rxq,
		.rq_entries = RQ_ENTRIES,
		.area_ptr = (__u64)(uintptr_t)&area_reg,
		.region_ptr = (__u64)(uintptr_t)&region,
	};
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_ZCRX_IFQ, &reg, 1)) {
		int e = errno;

		printf("zcrx-nsim-rx: register %s (ifindex %u) rxq %u: %s (%d)\n",
		       argv[1], ifindex, rxq, strerror(e), -e);
		return 2;
	}
	printf("zcrx-nsim-rx: registered zcrx id %u on %s rxq %u (area %u pages, rq %u)\n",
	       reg.zcrx_id, argv[1], rxq, AREA_PAGES, reg.rq_entries);
	unsigned *rq_tail = (unsigned *)(rqmem + reg.offsets.tail);
	struct io_uring_zcrx_rqe *rqes = (void *)(rqmem + reg.offsets.rqes);
	unsigned rq_mask = reg.rq_entries - 1, rq_local = *rq_tail;

	/* socket */
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (void *)&sa, sizeof(sa)) || listen(ls, 1))
		die("bind/listen", errno);
	printf("zcrx-nsim-rx: listening on port %d\n", port);
	int fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept", errno);

	unsigned long long got = 0, cqes_n = 0, rearm = 0;
	int armed = 0;
	for (;;) {
		unsigned submit = 0;

		if (!armed) {
			unsigned t = *sq_tail, i = t & *sq_mask;
			struct io_uring_sqe *sqe = &sqes[i];

			memset(sqe, 0, sizeof(*sqe));
			sqe->opcode = IORING_OP_RECV_ZC;
			sqe->fd = fd;
			sqe->ioprio = IORING_RECV_MULTISHOT;
			sqe->zcrx_ifq_idx = reg.zcrx_id;
			sqe->user_data = 1;
			sq_array[i] = i;
			__atomic_store_n(sq_tail, t + 1, __ATOMIC_RELEASE);
			submit = 1;
			armed = 1;
		}
		if (syscall(__NR_io_uring_enter, ring, submit, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0 &&
		    errno != EINTR)
			die("io_uring_enter", errno);

		unsigned h = *cq_head, t = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
		int done = 0;

		for (; h != t; h++) {
			struct io_uring_cqe *cqe = (void *)(cqes + (size_t)(h & cq_mask) * 32);
			struct io_uring_zcrx_cqe *z = (void *)(cqe + 1);

			cqes_n++;
			if (cqe->res > 0) {
				__u64 off = z->off & ~IORING_ZCRX_AREA_MASK;
				const unsigned char *d = (const unsigned char *)area + off;

				for (int k = 0; k < cqe->res; k++) {
					if (d[k] != (got + k) % 251) {
						printf("zcrx-nsim-rx: MISMATCH at byte %llu: %u != %llu\n",
						       got + k, d[k], (got + k) % 251);
						return 1;
					}
				}
				got += cqe->res;
				struct io_uring_zcrx_rqe *r = &rqes[rq_local++ & rq_mask];

				r->off = off | area_reg.rq_area_token;
				r->len = cqe->res;
				__atomic_store_n(rq_tail, rq_local, __ATOMIC_RELEASE);
			}
			if (!(cqe->flags & IORING_CQE_F_MORE)) {
				armed = 0;
				if (cqe->res == 0)
					done = 1;
				else if (cqe->res < 0 && cqe->res != -ENOSPC)
					die("RECV_ZC", -cqe->res);
				else
					rearm++;
			}
		}
		__atomic_store_n(cq_head, h, __ATOMIC_RELEASE);
		if (done)
			break;
	}
	printf("zcrx-nsim-rx: received %llu bytes in %llu CQEs (%llu re-arms), pattern ok\n",
	       got, cqes_n, rearm);
	return got == want ? 0 : 1;
}
