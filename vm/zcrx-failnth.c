// SPDX-License-Identifier: MIT
/*
 * zcrx-failnth: a fail-nth sweep of one zcrx registration, by hand (the
 * fault_sweep step of docs/fault-injection.md before the harness has it).
 * Not part of the harness. Raw syscalls, no liburing, no kernel headers
 * (the uapi structs of 7.3 are spelled out below).
 *
 *   zcrx-failnth [--nic IFNAME RXQ] [MAX_ROUNDS]
 *
 * Round N (N = 1, 2, ...), each in a forked child (its pid names the round
 * in kmemleak reports): a new ring (DEFER_TASKRUN, SINGLE_ISSUER, CQE32), a
 * new 16-page area and a user region for 64 RQ entries, all prefaulted;
 * /proc/thread-self/fail-nth opened, N written, IORING_REGISTER_ZCRX_IFQ
 * (ZCRX_REG_NODEV, or on IFNAME/RXQ with --nic), fail-nth read back (0: the
 * N-th fault point was failed) and reset. One line per round:
 *   round N pid P injected 0|1 ret R errno NAME
 * The sweep ends at the first round that injected nothing (the call passed
 * all its fault points); that round must succeed. Then a last plain
 * registration shows the state is usable ("after: ret 0"). Exit 0 when both
 * hold, 1 otherwise. The fault-injection knobs (failslab, fail_page_alloc,
 * their ignore-gfp-wait / min-order / stack-trace range) are the caller's.
 *
 * Build: gcc -O2 -Wall -o zcrx-failnth vm/zcrx-failnth.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct params { /* struct io_uring_params, 120 bytes */
	uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
	uint8_t offsets[80];
};
struct area_reg { uint64_t addr, len, rq_area_token; uint32_t flags, dmabuf_fd; uint64_t resv2[2]; };
struct region_desc { uint64_t user_addr, size; uint32_t flags, id; uint64_t mmap_offset, resv[4]; };
struct zcrx_offsets { uint32_t head, tail, rqes, resv2; uint64_t resv[2]; };
struct ifq_reg {
	uint32_t if_idx, if_rxq, rq_entries, flags;
	uint64_t area_ptr, region_ptr;
	struct zcrx_offsets offsets;
	uint32_t zcrx_id, rx_buf_len;
	uint64_t event_desc, resv[2];
};

#define SETUP_CQE32 (1U << 11)
#define SETUP_SINGLE_ISSUER (1U << 12)
#define SETUP_DEFER_TASKRUN (1U << 13)
#define REGISTER_ZCRX_IFQ 32
#define REGION_TYPE_USER 1
#define ZCRX_REG_NODEV 2
#define AREA_PAGES 16
#define RQ_ENTRIES 64

static unsigned ifindex, rxq;

static void *prefaulted(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		_exit(3);
	}
	memset(p, 0, len);
	return p;
}

/* One registration; fail-nth armed with n when n > 0. Prints its line, exits 0 on success. */
static int one_round(unsigned n)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct params p = { .flags = SETUP_CQE32 | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN };
	struct area_reg area = { .len = AREA_PAGES * pg };
	struct region_desc rd = { .size = 2 * pg, .flags = REGION_TYPE_USER };
	struct ifq_reg reg = { .rq_entries = RQ_ENTRIES };
	char buf[32] = "";
	int ring, fnth = -1, injected = 0, err = 0;
	long ret;

	ring = syscall(__NR_io_uring_setup, 8, &p);
	if (ring < 0) {
		perror("io_uring_setup");
		_exit(3);
	}
	area.addr = (uintptr_t)prefaulted(area.len);
	rd.user_addr = (uintptr_t)prefaulted(rd.size);
	reg.area_ptr = (uintptr_t)&area;
	reg.region_ptr = (uintptr_t)&rd;
	if (ifindex) {
		reg.if_idx = ifindex;
		reg.if_rxq = rxq;
	} else {
		reg.flags = ZCRX_REG_NODEV;
	}
	if (n) {
		fnth = open("/proc/thread-self/fail-nth", O_RDWR);
		if (fnth < 0) {
			perror("open /proc/thread-self/fail-nth");
			_exit(3);
		}
		snprintf(buf, sizeof(buf), "%u", n);
		if (write(fnth, buf, strlen(buf)) < 0) {
			perror("write fail-nth");
			_exit(3);
		}
	}
	ret = syscall(__NR_io_uring_register, ring, REGISTER_ZCRX_IFQ, &reg, 1);
	err = ret < 0 ? errno : 0;
	if (n) {
		memset(buf, 0, sizeof(buf));
		if (pread(fnth, buf, sizeof(buf) - 1, 0) > 0)
			injected = atoi(buf) == 0;
		if (pwrite(fnth, "0", 1, 0) < 0)
			perror("reset fail-nth");
	}
	printf("round %u pid %d injected %d ret %ld errno %s\n", n, getpid(), injected, ret,
	       err ? strerrorname_np(err) : "-");
	fflush(stdout);
	close(ring);
	_exit(ret == 0 ? (injected ? 10 : 0) : (injected ? 11 : 1));
}

static int run(unsigned n)
{
	int st;
	pid_t pid;

	fflush(stdout);
	pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(3);
	}
	if (pid == 0)
		one_round(n);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	unsigned max = 500, n, failed = 0;
	int i = 1, st;

	if (argc > 3 && !strcmp(argv[1], "--nic")) {
		ifindex = if_nametoindex(argv[2]);
		rxq = atoi(argv[3]);
		if (!ifindex) {
			fprintf(stderr, "zcrx-failnth: no interface %s\n", argv[2]);
			return 2;
		}
		i = 4;
	}
	if (argc > i)
		max = atoi(argv[i]);
	for (n = 1; n <= max; n++) {
		st = run(n);
		if (st == 3)	/* set-up error, printed by the child */
			return 3;
		if (st == 1 || st < 0)	/* failed with nothing injected, or died */
			failed++;
		if (st == 0 || st == 1 || st < 0)
			break;
	}
	printf("rounds %u%s\n", n > max ? max : n, n > max ? " (incomplete)" : "");
	st = run(0);
	printf("after: %s\n", st == 0 ? "ret 0" : "registration failed");
	return (failed || st != 0 || n > max) ? 1 : 0;
}
