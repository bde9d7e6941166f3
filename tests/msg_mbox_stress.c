/* msg_mbox_stress.c - many senders, one receiver, a small mailbox so it is
 * full much of the time: uthread and plain-thread LOCAL senders, NODE
 * senders (forced, within the process), blocking and MBOX_NONBLOCK
 * senders, single- and multi-slot messages. Every message carries its
 * sender's index and sequence number and a pattern derived from both; the
 * receiver checks per-sender order (no gap, no duplicate), content, the
 * sender id's consistency per sender, and the total. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <atoll/mbox.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define UTH_SENDERS 4
#define NODE_SENDERS 2
#define THREAD_SENDERS 2
#define NSENDERS (UTH_SENDERS + NODE_SENDERS + THREAD_SENDERS)

struct msg {
	uint32_t who;
	uint32_t seq;
	unsigned char pattern[];
};

static struct mbox *mb;
static struct mbox_addr addr;
static struct mbox_cap cap;
static uint32_t per_sender;
static uint64_t eagain_seen;

static size_t msg_len(uint32_t who, uint32_t seq)
{
	switch ((seq * 7 + who) % 11) {
	case 0:
		return 300;     /* 6 slots */
	case 1:
		return 56;      /* 2 slots */
	case 2:
		return MBOX_MSG_MAX / 8;
	default:
		return 8 + (seq % 40); /* 1 slot */
	}
}

static void make(unsigned char *buf, uint32_t who, uint32_t seq, size_t len)
{
	struct msg *m = (struct msg *)buf;

	m->who = who;
	m->seq = seq;
	for (size_t i = 8; i < len; i++)
		buf[i] = (unsigned char)(who * 131 + seq * 17 + i);
}

static void send_all(uint32_t who, enum mbox_transport t, bool nonblock)
{
	struct mbox_open_opts oo = { .transport = t };
	struct mbox_sender *s;
	unsigned char buf[MBOX_MSG_MAX];

	CHECK_OK(mbox_open(&addr, &cap, &oo, &s));
	for (uint32_t seq = 0; seq < per_sender; seq++) {
		size_t len = msg_len(who, seq);

		make(buf, who, seq, len);
		if (!nonblock) {
			CHECK_OK(mbox_send(s, (uint16_t)who, buf, len, 0));
			continue;
		}
		for (;;) {
			int r = mbox_send(s, (uint16_t)who, buf, len,
					  MBOX_NONBLOCK);

			if (r == 0)
				break;
			CHECK_EQ(r, -EAGAIN);
			__atomic_fetch_add(&eagain_seen, 1, __ATOMIC_RELAXED);
			if (uthread_self())
				uthread_yield();
		}
	}
	mbox_close(s);
}

static void *uth_sender(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;

	send_all(who, who < NODE_SENDERS + UTH_SENDERS && who >= UTH_SENDERS ?
		 MBOX_TRANSPORT_NODE : MBOX_TRANSPORT_AUTO, who == 1);
	return NULL;
}

static void *thread_sender(void *arg)
{
	uint32_t who = (uint32_t)(uintptr_t)arg;

	send_all(who, MBOX_TRANSPORT_AUTO, who == NSENDERS - 1);
	return NULL;
}

static int rt_body(void *arg)
{
	struct uthread *u[UTH_SENDERS + NODE_SENDERS];
	pthread_t th[THREAD_SENDERS];
	uint32_t next[NSENDERS] = { 0 };
	uint32_t sid[NSENDERS] = { 0 };
	unsigned char buf[MBOX_MSG_MAX];
	uint64_t total = (uint64_t)per_sender * NSENDERS;
	struct mbox_stats st;

	(void)arg;
	for (uint32_t i = 0; i < UTH_SENDERS + NODE_SENDERS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, uth_sender,
					(void *)(uintptr_t)i));
	for (uint32_t i = 0; i < THREAD_SENDERS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, thread_sender,
					(void *)(uintptr_t)(UTH_SENDERS +
							    NODE_SENDERS + i)),
			 0);
	for (uint64_t k = 0; k < total; k++) {
		struct mbox_hdr h;
		const struct msg *m = (const struct msg *)buf;
		int n = mbox_recv(mb, &h, buf, sizeof(buf), 20000000000ull);
		size_t want;

		if (n < 0)
			fprintf(stderr, "after %llu of %llu messages: %d\n",
				(unsigned long long)k,
				(unsigned long long)total, n);
		CHECK(n >= 8);
		CHECK(m->who < NSENDERS);
		CHECK_EQ(h.type, m->who);
		CHECK_EQ(m->seq, next[m->who]);
		want = msg_len(m->who, m->seq);
		CHECK_EQ((size_t)n, want);
		for (size_t i = 8; i < want; i++)
			CHECK_EQ(buf[i], (unsigned char)(m->who * 131 +
							 m->seq * 17 + i));
		if (!sid[m->who])
			sid[m->who] = h.sender;
		CHECK_EQ(h.sender, sid[m->who]);
		next[m->who]++;
	}
	for (uint32_t i = 0; i < NSENDERS; i++) {
		CHECK_EQ(next[i], per_sender);
		for (uint32_t j = 0; j < i; j++)
			CHECK(sid[i] != sid[j]);
	}
	for (uint32_t i = 0; i < UTH_SENDERS + NODE_SENDERS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	for (uint32_t i = 0; i < THREAD_SENDERS; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	{
		struct mbox_hdr h;

		CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 0), -EAGAIN);
	}
	mbox_stats(mb, &st);
	CHECK_EQ(st.received, total);
	CHECK_EQ(st.bad, 0);
	CHECK_EQ(st.dropped, 0);
	printf("%llu messages, local ring full %llu times, %llu EAGAIN\n",
	       (unsigned long long)total, (unsigned long long)st.full,
	       (unsigned long long)eagain_seen);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct mbox_opts o = { .nslots = 128, .conn_nslots = 128,
			       .poll_ns = 5000 };

	per_sender = (uint32_t)test_scale(20000);
	CHECK_OK(mbox_create("stress", &o, &mb));
	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	CHECK_EQ(rt_main(&cfg, rt_body, NULL), 0);
	mbox_destroy(mb);
	printf("ok\n");
	return 0;
}
