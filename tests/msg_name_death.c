/* msg_name_death.c - registrations die with their process: three member
 * processes register mailboxes under one fleet name; one is killed, one
 * exits, one is killed last. Each time the server drops the member's
 * names (it sees the registration connection close), the generation bump
 * invalidates the client caches (a cached answer is not returned again),
 * fresh resolutions pick only live members, and at the end the name is
 * gone. A sender that finds its receiver dead (-EPIPE) drops the cached
 * name with name_invalidate(). The client runs in uthreads. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/name.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define NMEMBERS 3

static char path[108];

struct child {
	pid_t pid;
	int go;         /* parent -> child */
	int back;       /* child -> parent */
	struct name_reg reg;
	struct mbox_addr addr;
	struct mbox_cap cap;
};

static struct child kids[NMEMBERS];

struct report {
	struct name_reg reg;
	struct mbox_addr addr;
	struct mbox_cap cap;
};

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

static void member_main(int go, int back)
{
	struct name_client *nc;
	struct mbox *mb;
	struct report rep;
	char c;

	xread(go, &c, 1);
	CHECK_OK(name_client_open(path, NULL, &nc));
	CHECK_OK(mbox_create("member", NULL, &mb));
	CHECK_OK(name_register_mbox(nc, "/svc/fleet", mb, 0, &rep.reg));
	mbox_addr(mb, &rep.addr);
	mbox_cap(mb, &rep.cap);
	CHECK_EQ(write(back, &rep, sizeof(rep)), sizeof(rep));
	/* Wait for the word to exit (or to be killed). */
	if (read(go, &c, 1) != 1)
		_exit(5);
	_exit(0);
}

static int which(const struct name_entry *e)
{
	for (int i = 0; i < NMEMBERS; i++)
		if (!strcmp(e->member, kids[i].reg.member))
			return i;
	return -1;
}

static void reap(int i, bool killed)
{
	int st;

	if (killed)
		CHECK_EQ(kill(kids[i].pid, SIGKILL), 0);
	else
		CHECK_EQ(write(kids[i].go, "x", 1), 1);
	CHECK_EQ(waitpid(kids[i].pid, &st, 0), kids[i].pid);
	CHECK(killed ? WIFSIGNALED(st) : WIFEXITED(st) &&
	      WEXITSTATUS(st) == 0);
}

/* Resolve through the cache until the answer is not `gone` (or
 * -ENOENT when expect_enoent); at most ~5 s. */
static int wait_gone(struct name_client *nc, const char *name, int gone,
		     bool expect_enoent)
{
	struct name_entry e;

	for (int t = 0; t < 500; t++) {
		int r = name_resolve(nc, name, NULL, 0, 0, &e);

		if (expect_enoent && r == -ENOENT)
			return 0;
		if (!expect_enoent && r == 0 && which(&e) != gone)
			return which(&e);
		if (!expect_enoent)
			CHECK(r == 0 || r == -ENOENT);
		uthread_sleep_ns(10000000);
	}
	return -1;
}

static int body(void *arg)
{
	struct name_client *nc, *fresh;
	struct name_entry e;
	struct name_cache_stats st;
	struct mbox_sender *s;
	int first, k;

	(void)arg;
	CHECK_OK(name_client_open(path, NULL, &nc));
	CHECK_OK(name_client_open(path, &(struct name_client_opts){
				  .no_cache = true }, &fresh));
	for (int i = 0; i < NMEMBERS; i++)
		CHECK_EQ(write(kids[i].go, "g", 1), 1);
	for (int i = 0; i < NMEMBERS; i++) {
		struct report rep;

		xread(kids[i].back, &rep, sizeof(rep));
		kids[i].reg = rep.reg;
		kids[i].addr = rep.addr;
		kids[i].cap = rep.cap;
	}
	/* Everyone is there; the cache binds us to one of them. */
	for (int i = 0; i < 2 * NMEMBERS; i++) {
		CHECK_OK(name_resolve(fresh, "/svc/fleet", NULL, 0, 0, &e));
		CHECK(which(&e) >= 0);
	}
	CHECK_OK(name_resolve(nc, "/svc/fleet", NULL, 0, 0, &e));
	first = which(&e);
	CHECK(first >= 0);
	CHECK_OK(name_resolve(nc, "/svc/fleet", NULL, 0, 0, &e));
	CHECK_EQ(which(&e), first);
	name_cache_stats(nc, &st);
	CHECK_EQ(st.hits, 1);

	/* Kill the member we are bound to: the cache lets go of it. */
	reap(first, true);
	k = wait_gone(nc, "/svc/fleet", first, false);
	CHECK(k >= 0 && k != first);
	name_cache_stats(nc, &st);
	CHECK(st.stale >= 1);
	CHECK_EQ(name_resolve(nc, kids[first].reg.member, NULL, 0, 0, &e),
		 -ENOENT);
	for (int i = 0; i < 2 * NMEMBERS; i++) {
		CHECK_OK(name_resolve(fresh, "/svc/fleet", NULL, 0, 0, &e));
		CHECK(which(&e) >= 0 && which(&e) != first);
	}

	/* The next one exits normally. */
	reap(k, false);
	CHECK(wait_gone(nc, "/svc/fleet", k, false) >= 0);
	CHECK_EQ(name_resolve(fresh, kids[k].reg.member, NULL, 0, 0, &e),
		 -ENOENT);

	/* The last one: bound, opened, killed. -EPIPE -> invalidate. */
	CHECK_OK(name_resolve(nc, "/svc/fleet", NULL, 0, 0, &e));
	k = which(&e);
	CHECK(k >= 0);
	CHECK(e.has_cap);
	CHECK_OK(mbox_open(&e.addr, &e.cap, NULL, &s));
	CHECK_OK(mbox_send(s, 1, "x", 1, 0));
	reap(k, true);
	for (int t = 0; t < 500 && mbox_sender_check(s) == 0; t++)
		uthread_sleep_ns(10000000);
	CHECK_EQ(mbox_sender_check(s), -EPIPE);
	mbox_close(s);
	name_invalidate(nc, e.member);
	name_cache_stats(nc, &st);
	CHECK(st.invalidated >= 1);
	CHECK_EQ(wait_gone(nc, "/svc/fleet", -1, true), 0);
	CHECK_EQ(name_resolve(fresh, "/svc/fleet", NULL, 0, 0, &e), -ENOENT);
	name_client_close(nc);
	name_client_close(fresh);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct name_server *srv;

	snprintf(path, sizeof(path), "/tmp/atoll-names-death-%d.sock",
		 (int)getpid());
	alarm(100);
	/* Fork before any thread starts. */
	for (int i = 0; i < NMEMBERS; i++) {
		int a[2], b[2];

		CHECK_EQ(pipe(a), 0);
		CHECK_EQ(pipe(b), 0);
		kids[i].pid = fork();
		CHECK(kids[i].pid >= 0);
		if (kids[i].pid == 0) {
			close(a[1]);
			close(b[0]);
			alarm(60);
			member_main(a[0], b[1]);
		}
		close(a[0]);
		close(b[1]);
		kids[i].go = a[1];
		kids[i].back = b[0];
	}
	CHECK_OK(name_server_start(path, &srv));
	CHECK_EQ(rt_main(&cfg, body, NULL), 0);
	name_server_stop(srv);
	printf("ok\n");
	return 0;
}
