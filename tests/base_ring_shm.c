/* base_ring_shm.c - the rings between processes over a shared memfd.
 *
 * The parent creates a memfd, maps it MAP_SHARED and initialises the rings
 * in it; each forked child maps the memfd again (at another address),
 * attaches, and checks the header. SPSC: the parent sends on one ring, the
 * child echoes every message back on a second ring. MPSC: two producer
 * processes, the parent consumes. Order, loss, content and the children's
 * exit status are checked, and no file descriptor is left open.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/ring.h>

#include "harness.h"

#define SPSC_SLOTS 64u
#define MPSC_SLOTS 64u
#define MPSC_PRODUCERS 2
#define BATCH_MAX 8u
#define STALL_SECONDS 20

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t checksum(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

struct msg_hdr {
	uint64_t id;
	uint64_t seq;
	uint64_t csum;
};

static void msg_make(unsigned char *m, size_t size, uint64_t id,
		     uint64_t seq)
{
	struct msg_hdr h = { .id = id, .seq = seq };
	unsigned char *pl = m + sizeof(h);
	size_t plen = size - sizeof(h);
	uint64_t x = mix64(seq ^ (id << 56));

	for (size_t i = 0; i < plen; i += 8) {
		memcpy(pl + i, &x, plen - i < 8 ? plen - i : 8);
		x = mix64(x);
	}
	h.csum = checksum(pl, plen);
	memcpy(m, &h, sizeof(h));
}

/* The message must be number seq from id, intact. */
static void msg_expect(const unsigned char *m, size_t size, uint64_t id,
		       uint64_t seq)
{
	struct msg_hdr h;

	memcpy(&h, m, sizeof(h));
	CHECK_EQ(h.id, id);
	CHECK_EQ(h.seq, seq);
	CHECK(checksum(m + sizeof(h), size - sizeof(h)) == h.csum);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Spin politely; fail rather than hang if nothing moved for a long time
 * (a peer process died or is stuck). fails counts attempts since the last
 * progress and is reset by the caller. */
static void backoff(unsigned int *fails, double *since)
{
	if (*fails == 0)
		*since = now_s();
	if (++*fails < 256) {
		cpu_relax();
		return;
	}
	sched_yield();
	if (*fails % 4096 == 0 && now_s() - *since > STALL_SECONDS) {
		fprintf(stderr, "FAIL: no progress for %d s\n",
			STALL_SECONDS);
		exit(TEST_FAIL);
	}
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Create a memfd of size bytes and map it shared. */
static void *shm_create(size_t size, int *fd)
{
	void *p;

	*fd = memfd_create("atoll-ring-test", MFD_CLOEXEC);
	if (*fd < 0) {
		if (errno == ENOSYS)
			test_skip("memfd_create is not available");
		CHECK_OK(*fd);
	}
	CHECK_OK(ftruncate(*fd, (off_t)size));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	CHECK(p != MAP_FAILED);
	return p;
}

/* In a child: map the memfd again, at an address of the kernel's choice. */
static void *shm_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* Fork a child that runs fn(fd, size, arg) and exits with its result.
 * The child dies with the parent, so a failing parent leaves no spinner. */
static pid_t spawn(int (*fn)(int, size_t, uint64_t), int fd, size_t size,
		   uint64_t arg)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK_OK(pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		exit(fn(fd, size, arg));
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	CHECK_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "FAIL: child %d: status 0x%x\n", (int)pid,
			status);
		exit(TEST_FAIL);
	}
}

/* ---- SPSC, both directions ---------------------------------------------- */

/* The memfd holds two SPSC rings: down (parent -> child) at offset 0 and
 * up (child -> parent) right after it. */
static size_t spsc_ring_bytes(void)
{
	return ring_spsc_size(SPSC_SLOTS);
}

static uint64_t spsc_total;

/* Child: echo every message from down to up, renumbered as from id 1. */
static int spsc_echo_child(int fd, size_t size, uint64_t unused)
{
	unsigned char *base = shm_map(fd, size);
	struct ring_spsc *down = (struct ring_spsc *)base;
	struct ring_spsc *up = (struct ring_spsc *)(base + spsc_ring_bytes());
	unsigned char buf[BATCH_MAX][RING_SPSC_MSG_SIZE];
	unsigned int fails = 0;
	double since = 0;
	uint64_t seq = 0;

	(void)unused;
	CHECK_EQ(ring_spsc_attach(down, spsc_ring_bytes()), 0);
	CHECK_EQ(ring_spsc_attach(up, spsc_ring_bytes()), 0);
	CHECK_EQ(ring_spsc_nslots(down), SPSC_SLOTS);
	/* The header names its kind. */
	CHECK_EQ(ring_mpsc_attach((struct ring_mpsc *)down,
				  spsc_ring_bytes()), -EPROTO);
	while (seq < spsc_total) {
		unsigned int got = ring_spsc_pop_batch(down, buf, BATCH_MAX);

		if (!got) {
			backoff(&fails, &since);
			continue;
		}
		fails = 0;
		for (unsigned int i = 0; i < got; i++) {
			msg_expect(buf[i], RING_SPSC_MSG_SIZE, 0, seq + i);
			msg_make(buf[i], RING_SPSC_MSG_SIZE, 1, seq + i);
		}
		/* Send the echoes back, one by one or as a batch. */
		for (unsigned int sent = 0; sent < got;) {
			unsigned int k = (seq & 1) ?
				ring_spsc_push_batch(up, buf[sent],
						     got - sent) :
				(ring_spsc_push(up, buf[sent]) == 0);

			sent += k;
			if (k)
				fails = 0;
			else
				backoff(&fails, &since);
		}
		seq += got;
	}
	CHECK_OK(munmap(base, size));
	return TEST_PASS;
}

static void test_spsc(void)
{
	size_t size = 2 * spsc_ring_bytes();
	int fd;
	unsigned char *base = shm_create(size, &fd);
	struct ring_spsc *down = (struct ring_spsc *)base;
	struct ring_spsc *up = (struct ring_spsc *)(base + spsc_ring_bytes());
	unsigned char buf[BATCH_MAX][RING_SPSC_MSG_SIZE];
	uint64_t sent = 0, recvd = 0;
	unsigned int fails = 0;
	double since = 0;
	pid_t pid;

	spsc_total = test_scale(1000000);
	CHECK_EQ(ring_spsc_init(down, spsc_ring_bytes(), SPSC_SLOTS), 0);
	CHECK_EQ(ring_spsc_init(up, spsc_ring_bytes(), SPSC_SLOTS), 0);
	pid = spawn(spsc_echo_child, fd, size, 0);

	while (recvd < spsc_total) {
		unsigned int moved = 0, n;

		if (sent < spsc_total) {
			/* Zero-copy send of up to BATCH_MAX. */
			n = BATCH_MAX;
			if (n > spsc_total - sent)
				n = (unsigned int)(spsc_total - sent);
			struct ring_slot *s = ring_spsc_reserve(down, &n);

			for (unsigned int i = 0; i < n; i++)
				msg_make(s[i].data, RING_SLOT_SIZE, 0,
					 sent + i);
			if (n)
				ring_spsc_commit(down, n);
			sent += n;
			moved += n;
		}
		/* Zero-copy receive of the echoes. */
		n = BATCH_MAX;
		const struct ring_slot *s = ring_spsc_peek(up, &n);

		for (unsigned int i = 0; i < n; i++)
			msg_expect(s[i].data, RING_SLOT_SIZE, 1, recvd + i);
		if (n)
			ring_spsc_release(up, n);
		recvd += n;
		moved += n;
		if (moved)
			fails = 0;
		else
			backoff(&fails, &since);
	}
	reap(pid);
	CHECK_EQ(ring_spsc_pop(up, buf[0]), -EAGAIN);
	CHECK(ring_spsc_empty(down));
	printf("spsc: %" PRIu64 " messages each way, full %" PRIu64
	       " down, %" PRIu64 " up\n", spsc_total,
	       ring_spsc_full_count(down), ring_spsc_full_count(up));
	CHECK_OK(munmap(base, size));
	CHECK_OK(close(fd));
}

/* ---- MPSC, two producer processes --------------------------------------- */

static uint64_t mpsc_per_producer;

static int mpsc_producer_child(int fd, size_t size, uint64_t id)
{
	struct ring_mpsc *r = shm_map(fd, size);
	unsigned char buf[BATCH_MAX][RING_MPSC_MSG_SIZE];
	unsigned int fails = 0;
	double since = 0;
	uint64_t seq = 0;

	CHECK_EQ(ring_mpsc_attach(r, size), 0);
	CHECK_EQ(ring_mpsc_nslots(r), MPSC_SLOTS);
	CHECK_EQ(ring_spsc_attach((struct ring_spsc *)r, size), -EPROTO);
	while (seq < mpsc_per_producer) {
		unsigned int n = 1 + (unsigned int)(mix64(seq) % BATCH_MAX);
		unsigned int done;

		if (n > mpsc_per_producer - seq)
			n = (unsigned int)(mpsc_per_producer - seq);
		for (unsigned int i = 0; i < n; i++)
			msg_make(buf[i], RING_MPSC_MSG_SIZE, id, seq + i);
		if ((seq >> 8) % 2)
			done = ring_mpsc_push_batch(r, buf, n);
		else
			done = ring_mpsc_push(r, buf[0]) == 0;
		seq += done;
		if (done)
			fails = 0;
		else
			backoff(&fails, &since);
	}
	CHECK_OK(munmap(r, size));
	return TEST_PASS;
}

static void test_mpsc(void)
{
	size_t size = ring_mpsc_size(MPSC_SLOTS);
	int fd;
	struct ring_mpsc *r = shm_create(size, &fd);
	unsigned char buf[BATCH_MAX][RING_MPSC_MSG_SIZE];
	uint64_t next[MPSC_PRODUCERS] = { 0 };
	uint64_t total, got_all = 0;
	unsigned int fails = 0;
	double since = 0;
	pid_t pid[MPSC_PRODUCERS];

	mpsc_per_producer = test_scale(500000);
	total = MPSC_PRODUCERS * mpsc_per_producer;
	CHECK_EQ(ring_mpsc_init(r, size, MPSC_SLOTS), 0);
	for (int i = 0; i < MPSC_PRODUCERS; i++)
		pid[i] = spawn(mpsc_producer_child, fd, size, (uint64_t)i);

	while (got_all < total) {
		unsigned int got = ring_mpsc_pop_batch(r, buf, BATCH_MAX);

		for (unsigned int i = 0; i < got; i++) {
			struct msg_hdr h;

			memcpy(&h, buf[i], sizeof(h));
			CHECK(h.id < MPSC_PRODUCERS);
			msg_expect(buf[i], RING_MPSC_MSG_SIZE, h.id,
				   next[h.id]);
			next[h.id]++;
		}
		got_all += got;
		if (got)
			fails = 0;
		else
			backoff(&fails, &since);
	}
	for (int i = 0; i < MPSC_PRODUCERS; i++) {
		reap(pid[i]);
		CHECK_EQ(next[i], mpsc_per_producer);
	}
	CHECK_EQ(ring_mpsc_pop(r, buf[0]), -EAGAIN);
	CHECK(ring_mpsc_empty(r));
	printf("mpsc: %d processes x %" PRIu64 " messages, full %" PRIu64
	       "\n", MPSC_PRODUCERS, mpsc_per_producer,
	       ring_mpsc_full_count(r));
	CHECK_OK(munmap(r, size));
	CHECK_OK(close(fd));
}

int main(void)
{
	int fds = count_fds();

	CHECK(fds > 0);
	test_spsc();
	test_mpsc();
	CHECK_EQ(count_fds(), fds);
	return TEST_PASS;
}
