/* msg_name_basic.c - the name service in one process (in-process server,
 * clients in uthreads and plain threads): name syntax; register, resolve
 * with each policy (round-robin, key hash, least loaded) and by member
 * name; the cache (hits, invalidation by a generation bump, by
 * name_invalidate, NAME_RESOLVE_FRESH); unregister, move, leases (a forged
 * one refused); who gets the capability; and a resolved name used to send
 * to a mailbox. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/name.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

static char path[108];

static void test_check(void)
{
	uint32_t idx = 0;
	char longseg[NAME_SEG_MAX + 3], longname[NAME_MAX_LEN + 2];

	CHECK_EQ(name_check("/svc", NULL), 0);
	CHECK_EQ(name_check("/svc/kv", NULL), 0);
	CHECK_EQ(name_check("/svc/kv-2.x_y", NULL), 0);
	CHECK_EQ(name_check("/svc/kv/3", &idx), 1);
	CHECK_EQ(idx, 3);
	CHECK_EQ(name_check("/svc/kv/0", &idx), 1);
	CHECK_EQ(idx, 0);
	CHECK_EQ(name_check("/svc/kv/4294967295", &idx), 1);
	CHECK_EQ(idx, 4294967295u);
	CHECK_EQ(name_check("/svc/kv/4294967296", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/kv/03", NULL), -EINVAL);
	CHECK_EQ(name_check("/3", NULL), -EINVAL);
	CHECK_EQ(name_check("", NULL), -EINVAL);
	CHECK_EQ(name_check("/", NULL), -EINVAL);
	CHECK_EQ(name_check("svc", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc//kv", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/./kv", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/../kv", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/k v", NULL), -EINVAL);
	CHECK_EQ(name_check("/svc/k\xc3\xa9", NULL), -EINVAL);
	CHECK_EQ(name_check(NULL, NULL), -EINVAL);
	longseg[0] = '/';
	memset(longseg + 1, 'a', NAME_SEG_MAX + 1);
	longseg[NAME_SEG_MAX + 2] = '\0';
	CHECK_EQ(name_check(longseg, NULL), -ENAMETOOLONG);
	longseg[NAME_SEG_MAX + 1] = '\0';
	CHECK_EQ(name_check(longseg, NULL), 0);
	for (size_t i = 0; i < sizeof(longname) - 1; i += 2) {
		longname[i] = '/';
		longname[i + 1] = 'a';
	}
	longname[NAME_MAX_LEN + 1] = '\0';
	CHECK_EQ(name_check(longname, NULL), -ENAMETOOLONG);
	CHECK_EQ(name_check("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", NULL), 0);
	CHECK_EQ(name_check("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", NULL),
		 -ENAMETOOLONG);
}

struct member {
	struct mbox *mb;
	struct mbox_addr addr;
	struct name_reg reg;
};

static int find_member(struct member *m, int n, const struct name_entry *e)
{
	for (int i = 0; i < n; i++)
		if (mbox_addr_same(&m[i].addr, &e->addr) &&
		    !strcmp(m[i].reg.member, e->member))
			return i;
	return -1;
}

static int body(void *arg)
{
	struct name_client *nc, *nc2;
	struct member m[3];
	struct name_entry e, e2;
	struct name_cache_stats st;
	struct name_reg forged;
	int seen[3] = { 0 };
	int k;

	(void)arg;
	CHECK_EQ(name_client_open("/nonexistent/dir/sock", NULL, &nc),
		 -ENOENT);
	CHECK_OK(name_client_open(path, NULL, &nc));
	CHECK_OK(name_client_open(path, &(struct name_client_opts){
				  .no_cache = true }, &nc2));
	CHECK_EQ(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e), -ENOENT);
	CHECK_EQ(name_resolve(nc, "/svc/kv/1", NULL, 0, 0, &e), -ENOENT);
	CHECK_EQ(name_resolve(nc, "bad", NULL, 0, 0, &e), -EINVAL);

	/* Three members of one fleet. */
	for (int i = 0; i < 3; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "kv%d", i);
		CHECK_OK(mbox_create(nm, NULL, &m[i].mb));
		mbox_addr(m[i].mb, &m[i].addr);
		CHECK_OK(name_register_mbox(nc, "/svc/kv", m[i].mb, 0,
					    &m[i].reg));
		CHECK_EQ(m[i].reg.index, (uint32_t)i + 1);
		snprintf(nm, sizeof(nm), "/svc/kv/%d", i + 1);
		CHECK(!strcmp(m[i].reg.member, nm));
	}
	CHECK_EQ(name_register_mbox(nc, "/svc/kv/7", m[0].mb, 0, &forged),
		 -EINVAL);

	/* Round-robin: fresh resolutions visit every member in turn. */
	for (int i = 0; i < 6; i++) {
		CHECK_OK(name_resolve(nc2, "/svc/kv", NULL, 0, 0, &e));
		k = find_member(m, 3, &e);
		CHECK(k >= 0);
		CHECK(e.has_cap);
		seen[k]++;
	}
	CHECK(seen[0] == 2 && seen[1] == 2 && seen[2] == 2);

	/* The cache: the same answer again, without asking. */
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 0);
	CHECK_EQ(st.misses, 2); /* the two -ENOENT above */
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e));
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e2));
	CHECK(!strcmp(e.member, e2.member));
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 1);
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, NAME_RESOLVE_FRESH,
			      &e2));
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 1);
	CHECK_EQ(st.misses, 4);

	/* By member name. */
	CHECK_OK(name_resolve(nc, "/svc/kv/2", NULL, 0, 0, &e));
	CHECK_EQ(find_member(m, 3, &e), 1);
	CHECK_EQ(e.index, 2);

	/* Hash: a key always lands on one member; keys spread. */
	CHECK_OK(name_set_policy(nc, &m[0].reg, NAME_POLICY_HASH));
	memset(seen, 0, sizeof(seen));
	for (int key = 0; key < 60; key++) {
		CHECK_OK(name_resolve(nc2, "/svc/kv", &key, sizeof(key), 0,
				      &e));
		CHECK_OK(name_resolve(nc2, "/svc/kv", &key, sizeof(key), 0,
				      &e2));
		CHECK(!strcmp(e.member, e2.member));
		k = find_member(m, 3, &e);
		CHECK(k >= 0);
		seen[k]++;
	}
	CHECK(seen[0] > 5 && seen[1] > 5 && seen[2] > 5);
	CHECK_EQ(name_resolve(nc2, "/svc/kv", "x", NAME_KEY_MAX + 1, 0, &e),
		 -EINVAL);
	{
		/* Rendezvous: when member 3 leaves, keys elsewhere stay. */
		int before[60];

		for (int key = 0; key < 60; key++) {
			CHECK_OK(name_resolve(nc2, "/svc/kv", &key,
					      sizeof(key), 0, &e));
			before[key] = find_member(m, 3, &e);
		}
		CHECK_OK(name_unregister(nc, &m[2].reg));
		for (int key = 0; key < 60; key++) {
			CHECK_OK(name_resolve(nc2, "/svc/kv", &key,
					      sizeof(key), 0, &e));
			k = find_member(m, 3, &e);
			CHECK(k == 0 || k == 1);
			if (before[key] != 2)
				CHECK_EQ(k, before[key]);
		}
		CHECK_OK(name_register_mbox(nc, "/svc/kv", m[2].mb, 0,
					    &m[2].reg));
		CHECK_EQ(m[2].reg.index, 4); /* indices are not reused */
	}

	/* Least loaded. */
	CHECK_OK(name_set_policy(nc, &m[1].reg, NAME_POLICY_LEAST));
	CHECK_OK(name_set_load(nc, &m[0].reg, 50));
	CHECK_OK(name_set_load(nc, &m[1].reg, 7));
	CHECK_OK(name_set_load(nc, &m[2].reg, 20));
	for (int i = 0; i < 4; i++) {
		CHECK_OK(name_resolve(nc2, "/svc/kv", NULL, 0, 0, &e));
		CHECK_EQ(find_member(m, 3, &e), 1);
	}
	CHECK_OK(name_set_load(nc, &m[1].reg, 100));
	CHECK_OK(name_resolve(nc2, "/svc/kv", NULL, 0, 0, &e));
	CHECK_EQ(find_member(m, 3, &e), 2);
	CHECK_OK(name_set_load(nc, &m[0].reg, 20));
	memset(seen, 0, sizeof(seen)); /* ties go round-robin */
	for (int i = 0; i < 4; i++) {
		CHECK_OK(name_resolve(nc2, "/svc/kv", NULL, 0, 0, &e));
		seen[find_member(m, 3, &e)]++;
	}
	CHECK(seen[0] == 2 && seen[2] == 2);

	/* A policy change bumped the generation: the cached answer of nc is
	 * stale now. */
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e));
	name_cache_stats(nc, &st);
	CHECK(st.stale >= 1);
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e2));
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 2);
	name_invalidate(nc, "/svc/kv");
	CHECK_OK(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e2));
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 2);
	CHECK(st.invalidated >= 1);
	name_invalidate(nc, e2.member);
	name_cache_stats(nc, &st);
	CHECK(st.invalidated >= 2);

	/* Leases: forged ones are refused, nothing changes. */
	forged = m[0].reg;
	forged.lease.b[0] ^= 0x80;
	CHECK_EQ(name_unregister(nc, &forged), -EACCES);
	CHECK_EQ(name_set_policy(nc, &forged, NAME_POLICY_RR), -EACCES);
	CHECK_EQ(name_set_load(nc, &forged, 1), -EACCES);
	CHECK_EQ(name_move(nc, &forged, &m[1].addr, NULL), -EACCES);
	strcpy(forged.member, "/svc/kv/99");
	CHECK_EQ(name_unregister(nc, &forged), -ENOENT);
	CHECK_OK(name_resolve(nc, "/svc/kv/1", NULL, 0, NAME_RESOLVE_FRESH,
			      &e));
	CHECK_EQ(find_member(m, 3, &e), 0);

	/* A member moves: the name follows, cached answers are dropped. */
	CHECK_OK(name_resolve(nc, "/svc/kv/1", NULL, 0, 0, &e));
	CHECK_OK(name_move(nc2, &m[0].reg, &m[1].addr, NULL));
	CHECK_OK(name_resolve(nc, "/svc/kv/1", NULL, 0, 0, &e));
	CHECK(mbox_addr_same(&e.addr, &m[1].addr));
	CHECK_OK(name_move(nc2, &m[0].reg, &m[0].addr, NULL));

	/* Who gets the capability. */
	{
		struct name_reg r1, r2;
		struct mbox_cap c;

		mbox_cap(m[0].mb, &c);
		CHECK_OK(name_register(nc, "/svc/nocap", &m[0].addr, &c,
				       NAME_F_NOCAP, &r1));
		CHECK_OK(name_resolve(nc, "/svc/nocap", NULL, 0, 0, &e));
		CHECK(!e.has_cap);
		CHECK_OK(name_register(nc, "/svc/pub", &m[0].addr, &c,
				       NAME_F_PUBLIC, &r2));
		CHECK_OK(name_resolve(nc, "/svc/pub", NULL, 0, 0, &e));
		CHECK(e.has_cap && mbox_cap_equal(&e.cap, &c));
		CHECK_EQ(name_register(nc, "/svc/x", &m[0].addr, &c,
				       NAME_F_NOCAP | NAME_F_PUBLIC, &r2),
			 -EINVAL);
		CHECK_EQ(name_register(nc, "/svc/x", &m[0].addr, NULL, 0,
				       &r2), -EINVAL);
	}

	/* End to end: resolve, open, send, receive. */
	{
		struct mbox_sender *s;
		struct mbox_hdr h;
		char b[8];

		CHECK_OK(name_resolve(nc, "/svc/kv/2", NULL, 0, 0, &e));
		CHECK_OK(mbox_open(&e.addr, &e.cap, NULL, &s));
		CHECK_OK(mbox_send(s, 4, "hey", 3, 0));
		CHECK_EQ(mbox_recv(m[1].mb, &h, b, sizeof(b), 1000000000), 3);
		mbox_close(s);
	}

	/* Closing the registering connection drops its names; /svc/kv/1
	 * was last moved by nc2, so it stays until nc2 goes. */
	name_client_close(nc);
	for (int i = 0; i < 3; i++) {
		CHECK_OK(name_resolve(nc2, "/svc/kv", NULL, 0, 0, &e));
		CHECK(!strcmp(e.member, "/svc/kv/1"));
	}
	CHECK_EQ(name_resolve(nc2, "/svc/kv/2", NULL, 0, 0, &e), -ENOENT);
	CHECK_EQ(name_resolve(nc2, "/svc/pub", NULL, 0, 0, &e), -ENOENT);
	name_client_close(nc2);
	CHECK_OK(name_client_open(path, NULL, &nc));
	CHECK_EQ(name_resolve(nc, "/svc/kv", NULL, 0, 0, &e), -ENOENT);
	name_client_close(nc);
	for (int i = 0; i < 3; i++)
		mbox_destroy(m[i].mb);
	return 0;
}

/* Many uthreads share one client: requests serialise, answers match. */
static struct name_client *shared;

static void *hammer(void *arg)
{
	struct name_entry e;
	char want[32];

	snprintf(want, sizeof(want), "/svc/h%d/1", (int)(uintptr_t)arg);
	for (int i = 0; i < 200; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "/svc/h%d", (int)(uintptr_t)arg);
		CHECK_OK(name_resolve(shared, nm, NULL, 0,
				      i % 3 ? 0 : NAME_RESOLVE_FRESH, &e));
		CHECK(!strcmp(e.member, want));
	}
	return NULL;
}

static int shared_body(void *arg)
{
	struct mbox *mb;
	struct mbox_addr a;
	struct mbox_cap c;
	struct name_reg r;
	struct uthread *u[6];
	pthread_t th;

	(void)arg;
	CHECK_OK(name_client_open(path, NULL, &shared));
	CHECK_OK(mbox_create("h", NULL, &mb));
	mbox_addr(mb, &a);
	mbox_cap(mb, &c);
	for (int i = 0; i < 7; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "/svc/h%d", i);
		CHECK_OK(name_register(shared, nm, &a, &c, 0, &r));
	}
	for (int i = 0; i < 6; i++)
		CHECK_OK(uthread_create(&u[i], NULL, hammer,
					(void *)(uintptr_t)i));
	CHECK_EQ(pthread_create(&th, NULL, hammer, (void *)(uintptr_t)6), 0);
	for (int i = 0; i < 6; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK_EQ(pthread_join(th, NULL), 0);
	name_client_close(shared);
	mbox_destroy(mb);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct name_server *srv;

	snprintf(path, sizeof(path), "/tmp/atoll-names-basic-%d.sock",
		 (int)getpid());
	test_check();
	CHECK_OK(name_server_start(path, &srv));
	/* From a plain thread, then from uthreads. */
	CHECK_EQ(body(NULL), 0);
	CHECK_EQ(rt_main(&cfg, body, NULL), 0);
	CHECK_EQ(rt_main(&cfg, shared_body, NULL), 0);
	name_server_stop(srv);
	CHECK(access(path, F_OK) != 0);
	printf("ok\n");
	return 0;
}
