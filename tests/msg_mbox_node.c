/* msg_mbox_node.c - the same-node transport between processes (fork): the
 * UNIX-socket handshake that passes the memfd and the eventfd; per-sender
 * order and content from several sender processes (one of them with two
 * uthreads sharing a handle); a wrong capability and an unknown mailbox
 * refused; a revocation seen by a sender in another process; and a
 * receiver process killed while senders are blocked on its full mailbox:
 * they get -EPIPE, not a hang, and a new open is refused.
 *
 * Every child is forked before the parent starts any thread (the
 * sanitizers and fork() in a threaded process do not mix); children learn
 * what they need through pipes. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define NSEND 3          /* sender children; child 0 has two uthreads */
#define NWHO (NSEND + 1)
#define TYPE_DATA 1
#define TYPE_HELLO 9

struct target {
	struct mbox_addr addr;
	struct mbox_cap cap;
};

static uint32_t per_who;

static void xwrite(int fd, const void *p, size_t n)
{
	CHECK_EQ(write(fd, p, n), (ssize_t)n);
}

static void xread(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r > 0);
		got += (size_t)r;
	}
}

static size_t len_of(uint32_t who, uint32_t seq)
{
	return (seq + who) % 5 == 0 ? 200 : 8 + (seq % 30);
}

static void fill(unsigned char *b, uint32_t who, uint32_t seq, size_t len)
{
	memcpy(b, &who, 4);
	memcpy(b + 4, &seq, 4);
	for (size_t i = 8; i < len; i++)
		b[i] = (unsigned char)(who + seq * 3 + i);
}

/* ---- children ------------------------------------------------------------ */

struct share {
	struct mbox_sender *s;
	uint32_t who;
};

static void send_range(struct mbox_sender *s, uint32_t who)
{
	unsigned char b[256];

	for (uint32_t seq = 0; seq < per_who; seq++) {
		size_t len = len_of(who, seq);

		fill(b, who, seq, len);
		CHECK_OK(mbox_send(s, TYPE_DATA, b, len, 0));
	}
}

static void *share_main(void *arg)
{
	struct share *sh = arg;

	send_range(sh->s, sh->who);
	return NULL;
}

static struct target child_target;

static int child0_rt(void *arg)
{
	struct mbox_sender *s;
	struct share sh[2];
	struct uthread *u[2];

	(void)arg;
	CHECK_OK(mbox_open(&child_target.addr, &child_target.cap, NULL, &s));
	CHECK_EQ(mbox_sender_transport(s), MBOX_TRANSPORT_NODE);
	for (int i = 0; i < 2; i++) {
		sh[i].s = s;
		sh[i].who = (uint32_t)i;
		CHECK_OK(uthread_create(&u[i], NULL, share_main, &sh[i]));
	}
	for (int i = 0; i < 2; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	mbox_close(s);
	return 0;
}

static void child_sender(int idx, int rd)
{
	struct mbox_sender *s;

	xread(rd, &child_target, sizeof(child_target));
	if (idx == 0) {
		struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };

		CHECK_EQ(rt_main(&cfg, child0_rt, NULL), 0);
		_exit(0);
	}
	CHECK_OK(mbox_open(&child_target.addr, &child_target.cap, NULL, &s));
	send_range(s, (uint32_t)idx + 1);
	mbox_close(s);
	_exit(0);
}

/* Wrong capability, unknown mailbox, dead process. */
static void child_refused(int rd)
{
	struct target t;
	struct mbox_sender *s;
	struct mbox_cap bad;
	struct mbox_addr a;

	xread(rd, &t, sizeof(t));
	bad = t.cap;
	bad.b[0] ^= 1;
	CHECK_EQ(mbox_open(&t.addr, &bad, NULL, &s), -EACCES);
	a = t.addr;
	a.id += 1000;
	CHECK_EQ(mbox_open(&a, &t.cap, NULL, &s), -ENOENT);
	a = t.addr;
	a.incarnation ^= 1; /* no such listener */
	CHECK_EQ(mbox_open(&a, &t.cap, NULL, &s), -ECONNREFUSED);
	a = t.addr;
	CHECK_EQ(mbox_open(&a, &t.cap, &(struct mbox_open_opts){
			   .transport = MBOX_TRANSPORT_LOCAL }, &s), -EINVAL);
	_exit(0);
}

/* Sends hello, then keeps sending until the parent's revocation stops
 * it: exit 0 if that came as -EKEYREVOKED. */
static void child_revoked(int rd)
{
	struct target t;
	struct mbox_sender *s;
	uint64_t i = 0;
	int r;

	xread(rd, &t, sizeof(t));
	CHECK_OK(mbox_open(&t.addr, &t.cap, NULL, &s));
	CHECK_OK(mbox_send(s, TYPE_HELLO, "hi", 2, 0));
	do {
		struct timespec ts = { 0, 100000 };

		r = mbox_send(s, TYPE_DATA, &i, sizeof(i), 0);
		i++;
		nanosleep(&ts, NULL);
	} while (r == 0);
	CHECK_EQ(r, -EKEYREVOKED);
	CHECK_EQ(mbox_sender_check(s), -EKEYREVOKED);
	mbox_close(s);
	/* The old capability is refused at open too. */
	CHECK_EQ(mbox_open(&t.addr, &t.cap, NULL, &s), -EKEYREVOKED);
	_exit(0);
}

/* A receiver that takes 10 messages, says so, and then hangs until it is
 * killed. */
static void child_receiver(int wr, int rd)
{
	struct mbox *mb;
	struct target t;
	struct mbox_opts o = { .conn_nslots = 128 };
	char c = 'r';

	CHECK_OK(mbox_create("victim", &o, &mb));
	mbox_addr(mb, &t.addr);
	mbox_cap(mb, &t.cap);
	xwrite(wr, &t, sizeof(t));
	for (int i = 0; i < 10; i++) {
		struct mbox_hdr h;
		unsigned char b[64];

		CHECK(mbox_recv(mb, &h, b, sizeof(b), 10000000000ull) >= 0);
	}
	xwrite(wr, &c, 1);
	xread(rd, &c, 1); /* never comes: killed */
	_exit(3);
}

/* ---- parent --------------------------------------------------------------- */

static struct mbox *mb;
static struct target victim;
static int victim_rd, victim_wr;
static pid_t victim_pid;

static int rt_receive(void *arg)
{
	uint32_t next[NWHO] = { 0 };
	uint32_t sid[NWHO] = { 0 };
	uint64_t total = (uint64_t)per_who * NWHO;
	unsigned char b[256];

	(void)arg;
	for (uint64_t k = 0; k < total; k++) {
		struct mbox_hdr h;
		uint32_t who, seq;
		int n = mbox_recv(mb, &h, b, sizeof(b), 20000000000ull);

		CHECK(n >= 8);
		CHECK_EQ(h.type, TYPE_DATA);
		memcpy(&who, b, 4);
		memcpy(&seq, b + 4, 4);
		CHECK(who < NWHO);
		CHECK_EQ(seq, next[who]);
		CHECK_EQ((size_t)n, len_of(who, seq));
		for (size_t i = 8; i < (size_t)n; i++)
			CHECK_EQ(b[i], (unsigned char)(who + seq * 3 + i));
		if (!sid[who])
			sid[who] = h.sender;
		CHECK_EQ(h.sender, sid[who]);
		next[who]++;
	}
	/* Child 0's two uthreads share one handle: one sender id. */
	CHECK_EQ(sid[0], sid[1]);
	CHECK(sid[1] != sid[2] && sid[2] != sid[3] && sid[1] != sid[3]);
	return 0;
}

struct killer_ctx {
	struct mbox_sender *s;
	int result;
	uint64_t sent;
};

static void *blocked_sender(void *arg)
{
	struct killer_ctx *k = arg;
	uint64_t v = 0;
	int r;

	while ((r = mbox_send(k->s, TYPE_DATA, &v, sizeof(v), 0)) == 0)
		v++;
	k->sent = v;
	k->result = r;
	return NULL;
}

static int rt_kill(void *arg)
{
	struct killer_ctx ku[2], kt;
	struct uthread *u[2];
	pthread_t th;
	struct mbox_sender *s, *s2;
	char c;
	int st;

	(void)arg;
	CHECK_OK(mbox_open(&victim.addr, &victim.cap, NULL, &s));
	CHECK_OK(mbox_open(&victim.addr, &victim.cap, NULL, &s2));
	for (uint64_t i = 0; i < 10; i++)
		CHECK_OK(mbox_send(s, TYPE_DATA, &i, sizeof(i), 0));
	xread(victim_rd, &c, 1);
	CHECK_EQ(c, 'r');
	/* The victim no longer receives: fill its rings, block. */
	ku[0].s = ku[1].s = s;
	kt.s = s2;
	for (int i = 0; i < 2; i++)
		CHECK_OK(uthread_create(&u[i], NULL, blocked_sender, &ku[i]));
	CHECK_EQ(pthread_create(&th, NULL, blocked_sender, &kt), 0);
	uthread_sleep_ns(50000000);
	CHECK_EQ(kill(victim_pid, SIGKILL), 0);
	CHECK_EQ(waitpid(victim_pid, &st, 0), victim_pid);
	CHECK(WIFSIGNALED(st));
	for (int i = 0; i < 2; i++) {
		CHECK_OK(uthread_join(u[i], NULL));
		CHECK_EQ(ku[i].result, -EPIPE);
	}
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(kt.result, -EPIPE);
	CHECK(ku[0].sent + ku[1].sent >= 128 - 10);
	CHECK_EQ(mbox_sender_check(s), -EPIPE);
	mbox_close(s);
	mbox_close(s2);
	CHECK_EQ(mbox_open(&victim.addr, &victim.cap, NULL, &s),
		 -ECONNREFUSED);
	return 0;
}

static pid_t fork_child(int *wr_out, void (*fn)(int rd, int wr_back),
			int *rd_back)
{
	int p[2], q[2];
	pid_t pid;

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(pipe(q), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[1]);
		close(q[0]);
		alarm(60);
		fn(p[0], q[1]);
		_exit(4);
	}
	close(p[0]);
	close(q[1]);
	*wr_out = p[1];
	if (rd_back)
		*rd_back = q[0];
	else
		close(q[0]);
	return pid;
}

static int sender_idx;
static void run_sender(int rd, int wr)
{
	(void)wr;
	child_sender(sender_idx, rd);
}

static void run_refused(int rd, int wr)
{
	(void)wr;
	child_refused(rd);
}

static void run_revoked(int rd, int wr)
{
	(void)wr;
	child_revoked(rd);
}

static void run_receiver(int rd, int wr)
{
	child_receiver(wr, rd);
}

static void expect_exit0(pid_t pid)
{
	int st;

	CHECK_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "child %d: status 0x%x\n", (int)pid, st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	pid_t senders[NSEND], refused, revoked;
	int wr_send[NSEND], wr_refused, wr_revoked;
	struct target t;
	struct mbox_stats st;
	struct mbox_cap newcap;

	per_who = (uint32_t)test_scale(10000);
	signal(SIGPIPE, SIG_IGN);
	alarm(100); /* a hang is a failure, not a timeout of the suite */
	for (int i = 0; i < NSEND; i++) {
		sender_idx = i;
		senders[i] = fork_child(&wr_send[i], run_sender, NULL);
	}
	refused = fork_child(&wr_refused, run_refused, NULL);
	revoked = fork_child(&wr_revoked, run_revoked, NULL);
	victim_pid = fork_child(&victim_wr, run_receiver, &victim_rd);
	xread(victim_rd, &victim, sizeof(victim));

	/* Now threads may start. */
	CHECK_OK(mbox_create("node", NULL, &mb));
	mbox_addr(mb, &t.addr);
	mbox_cap(mb, &t.cap);
	for (int i = 0; i < NSEND; i++)
		xwrite(wr_send[i], &t, sizeof(t));
	xwrite(wr_refused, &t, sizeof(t));
	CHECK_EQ(rt_main(&cfg, rt_receive, NULL), 0);
	for (int i = 0; i < NSEND; i++)
		expect_exit0(senders[i]);
	expect_exit0(refused);

	/* Revocation reaches another process (plain-thread receiver). */
	xwrite(wr_revoked, &t, sizeof(t));
	{
		struct mbox_hdr h;
		char b[16];

		CHECK_EQ(mbox_recv(mb, &h, b, sizeof(b), 10000000000ull), 2);
		CHECK_EQ(h.type, TYPE_HELLO);
		CHECK_OK(mbox_revoke(mb, &newcap));
		/* Drain whatever was taken before the cut. */
		while (mbox_recv(mb, &h, b, sizeof(b), 0) >= 0)
			CHECK_EQ(h.type, TYPE_DATA);
	}
	expect_exit0(revoked);
	mbox_stats(mb, &st);
	CHECK_EQ(st.bad, 0);
	CHECK_EQ(st.revocations, 1);

	/* The receiver dies while senders block on it. */
	CHECK_EQ(rt_main(&cfg, rt_kill, NULL), 0);

	/* Connections of exited senders are let go. */
	for (int i = 0; i < 200; i++) {
		struct mbox_hdr h;
		char b[16];

		mbox_recv(mb, &h, b, sizeof(b), 0);
		mbox_stats(mb, &st);
		if (st.senders_remote == 0)
			break;
		usleep(10000);
	}
	CHECK_EQ(st.senders_remote, 0);
	mbox_destroy(mb);
	printf("ok\n");
	return 0;
}
