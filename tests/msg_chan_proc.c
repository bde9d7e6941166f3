/* msg_chan_proc.c - channels between processes (fork) over the RFcom
 * rendezvous: a checked stream and its orderly close, the peer killed
 * mid-stream or while we sleep (-ECONNRESET, never a hang), a writer
 * blocked on a full lane whose reader is killed, chan_map shared between
 * the processes, and refusals (nobody listening, a stale socket, a name in
 * use, the supervisor hook with $ATOLL_SOCKET set, bad names). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/chan.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

static char dir[64];

static size_t len_of(uint64_t seq)
{
	return seq % 13 == 0 ? 100 + (size_t)(seq % 900) : 8 + (size_t)(seq % 49);
}

static void make_msg(unsigned char *p, uint64_t seq)
{
	memcpy(p, &seq, 8);
	for (size_t i = 8; i < len_of(seq); i++)
		p[i] = (unsigned char)(seq + i);
}

static void check_msg(const unsigned char *p, ssize_t len, uint64_t want)
{
	uint64_t seq;

	CHECK(len >= 8);
	memcpy(&seq, p, 8);
	CHECK_EQ(seq, want);
	CHECK_EQ(len, (long long)len_of(seq));
	for (size_t i = 8; i < (size_t)len; i++)
		CHECK_EQ(p[i], (unsigned char)(seq + i));
}

/* fork(); in the child, close the inherited listener without unlinking
 * its path. */
static pid_t fork_child(struct chan_listener *l)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0 && l)
		close(chan_listener_fd(l));
	return pid;
}

static int wait_child(pid_t pid)
{
	int st;

	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

/* ---- 1. a stream, then an orderly close (child: uthreads) ------------------- */

#define STREAM_CFG { .nslots = 64, .data_size = 16384 }

static uint64_t stream_n;

static int stream_child_main(void *arg)
{
	struct chan_config cfg = STREAM_CFG;
	unsigned char buf[1024];
	struct chan *c;
	uint64_t sum = 0, ack;

	(void)arg;
	CHECK_OK(chan_open(&c, "peer", &cfg));
	for (uint64_t s = 0; s < stream_n; s++) {
		make_msg(buf, s);
		CHECK_EQ(chan_write(c, buf, len_of(s), 0), (long long)len_of(s));
		sum += s;
	}
	CHECK_EQ(chan_read(c, &ack, sizeof(ack), 0), (long long)sizeof(ack));
	CHECK_EQ(ack, sum);
	CHECK_OK(chan_close(c));
	return 0;
}

static void test_stream(void)
{
	struct rt_config rc = { .nr_vcores = 1, .no_pin = 1 };
	unsigned char buf[1024];
	struct chan_listener *l;
	struct chan_info info;
	struct chan *c;
	uint64_t sum = 0;
	pid_t pid;
	int st;

	stream_n = test_scale(1000000);
	CHECK_OK(chan_listen(&l, "peer"));
	pid = fork_child(l);
	if (pid == 0) {
		setenv("ATOLL_CELL", "kvcell", 1);
		_exit(rt_main(&rc, stream_child_main, NULL) ? 1 : 0);
	}
	CHECK_OK(chan_accept(l, &c, NULL));
	chan_info(c, &info);
	CHECK_EQ(info.id, 1);
	CHECK_EQ(info.peer_pid, pid);
	CHECK(strcmp(info.peer_cell, "kvcell") == 0);
	CHECK_EQ(info.nslots, 64);
	CHECK_EQ(info.data_size, 16384);
	for (uint64_t s = 0; s < stream_n; s++) {
		check_msg(buf, chan_read(c, buf, sizeof(buf), 0), s);
		sum += s;
	}
	CHECK_EQ(chan_write(c, &sum, sizeof(sum), 0), (long long)sizeof(sum));
	/* The child closes after reading the ack: an orderly close. */
	CHECK_EQ(chan_read(c, buf, sizeof(buf), 0), -EPIPE);
	CHECK_EQ(chan_write(c, buf, 8, 0), -EPIPE);
	st = wait_child(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	chan_close(c);
	chan_listener_close(l);
	printf("stream: %llu messages across processes\n",
	       (unsigned long long)stream_n);
}

/* A thread that kills pid once the reader (or writer) role of c has slept
 * once more than sleeps0 times, i.e. the party is asleep. */
struct killer {
	struct chan *c;
	pid_t pid;
	uint64_t sleeps0;
	bool reader;
};

static void *killer_th(void *arg)
{
	struct killer *k = arg;
	struct chan_stats st;
	uint64_t t0 = now_ns();

	for (;;) {
		usleep(1000);
		chan_stats(k->c, &st);
		if ((k->reader ? st.rx_sleeps : st.tx_sleeps) > k->sleeps0)
			break;
		CHECK(now_ns() - t0 < 10 * NSEC_PER_SEC);
	}
	usleep(5000);
	CHECK_EQ(kill(k->pid, SIGKILL), 0);
	return NULL;
}

/* ---- 2. the writer is killed: mid-stream, and while we sleep ------------------- */

struct killed {
	struct chan_listener *l;
	pid_t pid;
	uint64_t read_before_kill;
	bool asleep;            /* kill while the reader sleeps */
	struct killer kc;
	pthread_t kth;
};

static void child_write_forever(uint64_t limit)
{
	unsigned char buf[1024];
	struct chan *c;

	CHECK_OK(chan_open(&c, "peer", NULL));
	for (uint64_t s = 0; s < limit; s++) {
		make_msg(buf, s);
		if (chan_write(c, buf, len_of(s), 0) < 0)
			_exit(2);
	}
	pause(); /* until killed */
	_exit(3);
}

static int killed_main(void *arg)
{
	struct killed *k = arg;
	unsigned char buf[1024];
	struct chan_stats st;
	struct chan *c;
	uint64_t s = 0, t0;
	ssize_t r;

	CHECK_OK(chan_accept(k->l, &c, NULL));
	chan_set_poll_ns(c, 2000);
	for (; s < k->read_before_kill; s++)
		check_msg(buf, chan_read(c, buf, sizeof(buf), 0), s);
	if (k->asleep) {
		/* The child wrote exactly that many and waits; a thread
		 * kills it once we are asleep in io_uring. */
		CHECK_EQ(chan_read(c, buf, sizeof(buf), CHAN_DONTWAIT), -EAGAIN);
		chan_stats(c, &st);
		k->kc.c = c;
		k->kc.pid = k->pid;
		k->kc.sleeps0 = st.rx_sleeps;
		k->kc.reader = true;
		CHECK_EQ(pthread_create(&k->kth, NULL, killer_th, &k->kc), 0);
	} else {
		CHECK_EQ(kill(k->pid, SIGKILL), 0);
	}
	t0 = now_ns();
	while ((r = chan_read(c, buf, sizeof(buf), 0)) >= 0)
		check_msg(buf, r, s++);
	/* Everything completely written arrived, then the error. */
	CHECK_EQ(r, -ECONNRESET);
	CHECK(now_ns() - t0 < 5 * NSEC_PER_SEC);
	CHECK_EQ(chan_write(c, buf, 8, 0), -ECONNRESET);
	if (k->asleep)
		pthread_join(k->kth, NULL);
	chan_stats(c, &st);
	printf("writer killed %s: %llu messages read, then -ECONNRESET "
	       "after %.1f ms (reader slept %llu times)\n",
	       k->asleep ? "while we sleep" : "mid-stream",
	       (unsigned long long)s, (double)(now_ns() - t0) / 1e6,
	       (unsigned long long)st.rx_sleeps);
	chan_close(c);
	return 0;
}

static void test_writer_killed(bool asleep)
{
	struct rt_config rc = { .nr_vcores = 2, .no_pin = 1 };
	struct killed k = { .read_before_kill = test_scale(50000),
			    .asleep = asleep };
	int st;

	CHECK_OK(chan_listen(&k.l, "peer"));
	k.pid = fork_child(k.l);
	if (k.pid == 0)
		child_write_forever(asleep ? k.read_before_kill : UINT64_MAX);
	CHECK_EQ(rt_main(&rc, killed_main, &k), 0);
	st = wait_child(k.pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	chan_listener_close(k.l);
}

/* ---- 3. the reader is killed while our writer sleeps on a full lane ---------- */

static void test_reader_killed(void)
{
	struct chan_config cfg = { .nslots = 8, .poll_ns = 1000 };
	struct chan_listener *l;
	struct killer k = { .reader = false };
	pthread_t th;
	uint64_t v = 0;
	ssize_t r;
	int st;

	CHECK_OK(chan_listen(&l, "peer"));
	k.pid = fork_child(l);
	if (k.pid == 0) {
		struct chan *c;

		CHECK_OK(chan_open(&c, "peer", &cfg));
		pause(); /* never reads */
		_exit(3);
	}
	CHECK_OK(chan_accept(l, &k.c, NULL));
	chan_set_poll_ns(k.c, 1000);
	CHECK_EQ(pthread_create(&th, NULL, killer_th, &k), 0);
	while ((r = chan_write(k.c, &v, sizeof(v), 0)) == sizeof(v))
		v++;
	CHECK_EQ(r, -ECONNRESET);
	CHECK_EQ(v, 8);
	pthread_join(th, NULL);
	st = wait_child(k.pid);
	CHECK(WIFSIGNALED(st));
	chan_close(k.c);
	chan_listener_close(l);
	printf("reader killed: the sleeping writer got -ECONNRESET\n");
}

/* ---- 4. chan_map across processes ------------------------------------------------ */

static void test_map(void)
{
	struct chan_config cfg = { .map_size = 3 * 4096 };
	struct chan_listener *l;
	struct chan *c;
	unsigned char *p;
	size_t size;
	uint64_t v;
	pid_t pid;
	int st;

	CHECK_OK(chan_listen(&l, "peer"));
	pid = fork_child(l);
	if (pid == 0) {
		CHECK_OK(chan_open(&c, "peer", &cfg));
		CHECK_OK(chan_map(c, (void **)&p, &size));
		CHECK_EQ(size, 3 * 4096);
		for (size_t i = 0; i < size; i++)
			p[i] = (unsigned char)(i * 7);
		v = size;
		CHECK_EQ(chan_write(c, &v, sizeof(v), 0), (long long)sizeof(v));
		/* Wait for the parent's answer in the map. */
		CHECK_EQ(chan_read(c, &v, sizeof(v), 0), (long long)sizeof(v));
		CHECK_EQ(p[size - 1], 0xee);
		CHECK_OK(chan_unmap(c));
		chan_close(c);
		_exit(0);
	}
	CHECK_OK(chan_accept(l, &c, NULL));
	CHECK_OK(chan_map(c, (void **)&p, &size));
	CHECK_EQ(size, 3 * 4096);
	CHECK_EQ(chan_read(c, &v, sizeof(v), 0), (long long)sizeof(v));
	CHECK_EQ(v, size);
	for (size_t i = 0; i < size; i++)
		CHECK_EQ(p[i], (unsigned char)(i * 7));
	p[size - 1] = 0xee;
	CHECK_EQ(chan_write(c, &v, sizeof(v), 0), (long long)sizeof(v));
	st = wait_child(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	chan_close(c);
	chan_listener_close(l);
}

/* ---- 5. refusals -------------------------------------------------------------------- */

static void test_refusals(void)
{
	char path[128], longname[CHAN_NAME_MAX + 2];
	struct chan_listener *l, *l2;
	struct chan *c;
	pid_t pid;
	int st;

	/* Names. */
	CHECK_EQ(chan_rendezvous_path(path, sizeof(path), ""), -EINVAL);
	CHECK_EQ(chan_rendezvous_path(path, sizeof(path), ".hidden"), -EINVAL);
	CHECK_EQ(chan_rendezvous_path(path, sizeof(path), "a b"), -EINVAL);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(chan_rendezvous_path(path, sizeof(path), longname), -EINVAL);
	CHECK_OK(chan_rendezvous_path(path, sizeof(path), "kv-0.shard_1"));
	CHECK(strncmp(path, dir, strlen(dir)) == 0);
	CHECK_EQ(chan_rendezvous_path(path, 8, "kv"), -ENAMETOOLONG);
	CHECK_EQ(chan_open(&c, "a b", NULL), -EINVAL);

	/* Nobody listens. */
	CHECK_EQ(chan_open(&c, "nobody", NULL), -ENOENT);

	/* A stale socket left by a dead listener: refused, then replaced. */
	pid = fork_child(NULL);
	if (pid == 0) {
		CHECK_OK(chan_listen(&l, "stale"));
		_exit(0); /* without chan_listener_close */
	}
	st = wait_child(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ(chan_open(&c, "stale", NULL), -ECONNREFUSED);
	CHECK_OK(chan_listen(&l, "stale"));
	/* A live one: in use. */
	CHECK_EQ(chan_listen(&l2, "stale"), -EADDRINUSE);
	chan_listener_close(l);

	/* The supervisor hook, opener side: $ATOLL_SOCKET names something
	 * that exists (so a supervisor is assumed) and $ATOLL_CELL is unset:
	 * refused. (tests/super_chan_allow.c asks a real atolld.) */
	CHECK_OK(chan_listen(&l, "peer"));
	setenv("ATOLL_SOCKET", dir, 1);
	CHECK_EQ(chan_open(&c, "peer", NULL), -EACCES);
	/* Acceptor side: the opener (child) has no supervisor, the
	 * acceptor does: it refuses and tells the opener why. */
	pid = fork_child(l);
	if (pid == 0) {
		unsetenv("ATOLL_SOCKET");
		_exit(chan_open(&c, "peer", NULL) == -EACCES ? 0 : 1);
	}
	CHECK_EQ(chan_accept(l, &c, NULL), -EACCES);
	st = wait_child(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unsetenv("ATOLL_SOCKET");
	chan_listener_close(l);
}

int main(void)
{
	char tmpl[] = "/tmp/atoll-chan-test-XXXXXX";

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(dir, sizeof(dir), "%s", tmpl);
	setenv("ATOLL_CHAN_DIR", dir, 1);
	unsetenv("ATOLL_SOCKET");
	/* A hang is a failure, not a timeout of the whole suite. */
	alarm(50);

	test_stream();
	test_writer_killed(false);
	test_writer_killed(true);
	test_reader_killed();
	test_map();
	test_refusals();
	rmdir(dir);
	printf("msg_chan_proc: ok\n");
	return TEST_PASS;
}
