/* msg_name_badinput.c - bad input to the name server gets an error line
 * and changes nothing: malformed requests, wrong argument counts, bad
 * names (syntax, overlong, too deep), bad addresses, capabilities, flags,
 * keys, forged leases, control and non-ASCII bytes, NUL bytes, overlong
 * lines (and resynchronisation after them), pipelining, random bytes, a
 * client that never reads its answers, many connections. The server still
 * answers correctly afterwards. Then the same against the atoll-names
 * daemon, started as a process, including its command line and SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/name.h>

#include "harness.h"

extern char **environ;

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void put(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t r = send(fd, c, n, MSG_NOSIGNAL);

		CHECK(r > 0);
		c += r;
		n -= (size_t)r;
	}
}

/* One answer line (without the newline) into buf. */
static void get_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char c;

		CHECK_EQ(poll(&p, 1, 5000), 1);
		CHECK_EQ(recv(fd, &c, 1, 0), 1);
		if (c == '\n')
			break;
		CHECK(n + 1 < size);
		buf[n++] = c;
	}
	buf[n] = '\0';
}

static void expect(int fd, const char *req, size_t len, const char *prefix)
{
	char ans[4096];

	put(fd, req, len);
	get_line(fd, ans, sizeof(ans));
	if (strncmp(ans, prefix, strlen(prefix))) {
		fprintf(stderr, "request '%.60s': answer '%s', expected '%s'\n",
			req, ans, prefix);
		exit(TEST_FAIL);
	}
}

#define EXPECT(fd, lit, prefix) expect((fd), (lit), sizeof(lit) - 1, (prefix))

static void expects(int fd, const char *req, const char *prefix)
{
	expect(fd, req, strlen(req), prefix);
}

static void attack(const char *path)
{
	int fd = dial(path);
	char addr[MBOX_ADDR_STR_MAX], req[8192], ans[4096], lease[40];
	struct mbox_addr a = { .node = 1, .pid = 2, .incarnation = 3,
			       .id = 4 };
	char *tok;

	CHECK(fd >= 0);
	mbox_addr_format(&a, addr, sizeof(addr));

	EXPECT(fd, "ping\n", "ok pong");
	EXPECT(fd, "\n", "err EINVAL");
	EXPECT(fd, "hello\n", "err EINVAL");
	EXPECT(fd, "ping extra\n", "err EINVAL");
	EXPECT(fd, "PING\n", "err EINVAL");
	EXPECT(fd, "resolve\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/x\n", "err ENOENT");
	EXPECT(fd, "resolve /svc/x/4\n", "err ENOENT");
	EXPECT(fd, "resolve  /svc/x\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/x \n", "err EINVAL");
	EXPECT(fd, " resolve /svc/x\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/\n", "err EINVAL");
	EXPECT(fd, "resolve svc\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/../x\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/x zz\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/x abc\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/x 00 11\n", "err EINVAL");
	EXPECT(fd, "resolve /a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q\n",
	       "err ENAMETOOLONG");
	strcpy(req, "resolve /");
	memset(req + 9, 'a', 300);
	strcpy(req + 309, "\n");
	expects(fd, req, "err ENAMETOOLONG");
	strcpy(req, "resolve /svc/x ");
	memset(req + 15, 'a', 2 * NAME_KEY_MAX + 2);
	strcpy(req + 15 + 2 * NAME_KEY_MAX + 2, "\n");
	expects(fd, req, "err EINVAL");
	EXPECT(fd, "register /svc/x notanaddr - 0\n", "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x/3 %s - 0\n", addr);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x %s nothex 0\n", addr);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x %s - 9\n", addr);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x %s - 3\n", addr);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x %s - 99999999999\n",
		 addr);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "register /svc/x %s - -1\n", addr);
	expects(fd, req, "err EINVAL");
	EXPECT(fd, "register a b c d e f g h i\n", "err EINVAL");
	EXPECT(fd, "register /svc/x\n", "err EINVAL");
	EXPECT(fd, "list /svc/x\n", "err ENOENT");

	/* A legitimate registration, then forged leases against it. */
	snprintf(req, sizeof(req), "register /svc/x %s - 0\n", addr);
	put(fd, req, strlen(req));
	get_line(fd, ans, sizeof(ans));
	CHECK(!strncmp(ans, "ok /svc/x/1 1 ", 14));
	tok = ans + 14;
	memcpy(lease, tok, 32);
	lease[32] = '\0';
	EXPECT(fd, "unregister /svc/x/1 00000000000000000000000000000000\n",
	       "err EACCES");
	EXPECT(fd, "unregister /svc/x/1 short\n", "err EINVAL");
	EXPECT(fd, "unregister /svc/x/2 00000000000000000000000000000000\n",
	       "err ENOENT");
	EXPECT(fd, "unregister /svc/x 00000000000000000000000000000000\n",
	       "err EINVAL");
	snprintf(req, sizeof(req), "move /svc/x/1 %s %s -\n",
		 "ffffffffffffffffffffffffffffffff", addr);
	expects(fd, req, "err EACCES");
	snprintf(req, sizeof(req), "move /svc/x/1 %s garbage -\n", lease);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "policy /svc/x/1 %s bogus\n", lease);
	expects(fd, req, "err EINVAL");
	EXPECT(fd, "policy /svc/x/1 0123456789abcdef0123456789abcdef rr\n",
	       "err EACCES");
	snprintf(req, sizeof(req), "load /svc/x/1 %s -5\n", lease);
	expects(fd, req, "err EINVAL");
	snprintf(req, sizeof(req), "load /svc/x/1 %s 4294967296\n", lease);
	expects(fd, req, "err EINVAL");
	/* Nothing changed: still there, the real lease still works. */
	snprintf(req, sizeof(req), "resolve /svc/x\n");
	snprintf(ans, sizeof(ans), "ok /svc/x/1 1 %s - ", addr);
	expects(fd, req, ans);
	snprintf(req, sizeof(req), "policy /svc/x/1 %s hash\n", lease);
	expects(fd, req, "ok ");
	EXPECT(fd, "list /svc/x\n", "ok hash ");

	/* Bytes that do not belong in a line. */
	EXPECT(fd, "ping\x01\n", "err EINVAL");
	EXPECT(fd, "resolve /svc/\xff\n", "err EINVAL");
	EXPECT(fd, "pi\0ng\n", "err EINVAL");
	EXPECT(fd, "ping\r\n", "ok pong");
	/* An overlong line: one E2BIG, then back in step. */
	memset(req, 'z', 5000);
	req[5000] = '\n';
	expect(fd, req, 5001, "err E2BIG");
	EXPECT(fd, "ping\n", "ok pong");
	/* Pipelined: answers in order. */
	put(fd, "ping\nresolve /svc/none\nping\n", 29);
	get_line(fd, ans, sizeof(ans));
	CHECK(!strcmp(ans, "ok pong"));
	get_line(fd, ans, sizeof(ans));
	CHECK(!strncmp(ans, "err ENOENT", 10));
	get_line(fd, ans, sizeof(ans));
	CHECK(!strcmp(ans, "ok pong"));
	/* Random bytes. */
	{
		uint64_t x = 0x9e3779b97f4a7c15ull;
		unsigned rounds = (unsigned)test_scale(200);

		for (unsigned r = 0; r < rounds; r++) {
			char junk[300];
			size_t n = 1 + r % sizeof(junk);

			for (size_t i = 0; i < n; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				junk[i] = (char)x;
				if (junk[i] == '\n')
					junk[i] = 'n';
			}
			junk[n - 1] = '\n';
			put(fd, junk, n);
			get_line(fd, ans, sizeof(ans));
			CHECK(!strncmp(ans, "err ", 4) ||
			      !strncmp(ans, "ok", 2));
		}
	}
	EXPECT(fd, "ping\n", "ok pong");
	/* Our registration goes with the connection. */
	close(fd);
	fd = dial(path);
	CHECK(fd >= 0);
	for (int i = 0; i < 100; i++) {
		put(fd, "resolve /svc/x\n", 15);
		get_line(fd, ans, sizeof(ans));
		if (!strncmp(ans, "err ENOENT", 10))
			break;
		usleep(10000);
	}
	CHECK(!strncmp(ans, "err ENOENT", 10));
	close(fd);

	/* A client that never reads: cut off; the server goes on. */
	fd = dial(path);
	CHECK(fd >= 0);
	{
		static char flood[65536];
		size_t total = 0;

		for (size_t i = 0; i + 5 <= sizeof(flood); i += 5)
			memcpy(flood + i, "ping\n", 5);
		fcntl(fd, F_SETFL, O_NONBLOCK);
		for (int t = 0; t < 2000; t++) {
			ssize_t n = send(fd, flood, sizeof(flood) -
					 sizeof(flood) % 5, MSG_NOSIGNAL);

			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				usleep(1000);
				continue;
			}
			if (n <= 0)
				break;  /* reset: we were dropped */
			total += (size_t)n;
		}
		CHECK(total > 65536);
		/* Take what was answered; then the end of the stream. */
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t n;

			CHECK_EQ(poll(&p, 1, 5000), 1);
			n = recv(fd, flood, sizeof(flood), 0);
			if (n <= 0)
				break;
		}
	}
	close(fd);

	/* Many connections at once. */
	{
		int fds[200];

		for (int i = 0; i < 200; i++) {
			fds[i] = dial(path);
			CHECK(fds[i] >= 0);
		}
		for (int i = 0; i < 200; i += 2)
			close(fds[i]);
		for (int i = 1; i < 200; i += 2) {
			put(fds[i], "ping\n", 5);
			get_line(fds[i], ans, sizeof(ans));
			CHECK(!strcmp(ans, "ok pong"));
			close(fds[i]);
		}
	}

	/* Still fully working through the client library. */
	{
		struct name_client *nc;
		struct name_reg reg;
		struct name_entry e;
		struct mbox_cap c = { { 1, 2, 3 } };

		CHECK_OK(name_client_open(path, NULL, &nc));
		CHECK_OK(name_register(nc, "/svc/after", &a, &c, 0, &reg));
		CHECK_OK(name_resolve(nc, "/svc/after", NULL, 0, 0, &e));
		CHECK(mbox_addr_same(&e.addr, &a));
		CHECK(e.has_cap && mbox_cap_equal(&e.cap, &c));
		name_client_close(nc);
	}
}

/* The daemon's path next to this test in the build tree. */
static bool daemon_path(char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	if ((size_t)(slash - self) + 32 > size)
		return false;
	strcpy(buf, self);
	strcat(buf, "/../src/msg/atoll-names");
	return access(buf, X_OK) == 0;
}

static int run_status(char *const argv[])
{
	pid_t pid;
	int st;

	CHECK_EQ(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_daemon(void)
{
	char exe[PATH_MAX], sock[108], notsock[108];
	pid_t pid;
	int st, fd = -1;

	if (!daemon_path(exe, sizeof(exe))) {
		printf("atoll-names not found next to the test: daemon part "
		       "skipped\n");
		return;
	}
	snprintf(sock, sizeof(sock), "/tmp/atoll-names-daemon-%d.sock",
		 (int)getpid());
	snprintf(notsock, sizeof(notsock), "/tmp/atoll-names-file-%d",
		 (int)getpid());
	{
		char a_help[] = "--help", a_bogus[] = "--bogus";
		char a_sock[] = "--socket";
		char *help[] = { exe, a_help, NULL };
		char *bogus[] = { exe, a_bogus, NULL };
		char *file[] = { exe, a_sock, notsock, NULL };
		int f = open(notsock, O_CREAT | O_WRONLY, 0600);

		CHECK(f >= 0);
		close(f);
		CHECK_EQ(run_status(help), 0);
		CHECK_EQ(run_status(bogus), 2);
		CHECK_EQ(run_status(file), 1);   /* not a socket: refused */
		CHECK_EQ(access(notsock, F_OK), 0); /* and left alone */
		unlink(notsock);
	}
	{
		char a_sock[] = "--socket";
		char *argv[] = { exe, a_sock, sock, NULL };

		CHECK_EQ(posix_spawn(&pid, exe, NULL, NULL, argv, environ), 0);
	}
	for (int i = 0; i < 500 && fd < 0; i++) {
		fd = dial(sock);
		if (fd < 0)
			usleep(10000);
	}
	CHECK(fd >= 0);
	close(fd);
	attack(sock);
	CHECK_EQ(kill(pid, SIGTERM), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(access(sock, F_OK) != 0);
}

int main(void)
{
	struct name_server *srv;
	char path[108];

	signal(SIGPIPE, SIG_IGN);
	alarm(100);
	snprintf(path, sizeof(path), "/tmp/atoll-names-bad-%d.sock",
		 (int)getpid());
	CHECK_EQ(name_server_start("", &srv), -EINVAL);
	CHECK_OK(name_server_start(path, &srv));
	attack(path);
	name_server_stop(srv);
	test_daemon();
	printf("ok\n");
	return 0;
}
