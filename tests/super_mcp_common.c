/* super_mcp_common.c - helpers of the super_mcp_* tests, included (not
 * linked): run tests/mcp_client in a cell with its stdout on a pipe and
 * wait for the lines it prints. argv[3] is the client's path. */
#include "super_common.c"

static const char *g_client;

struct mcp_kid {
	pid_t pid;
	int out;            /* read end of the client's stdout */
	char buf[4096];
	size_t len;
};

static inline void mcp_init(int argc, char **argv)
{
	super_init(argc, argv, false);
	if (argc < 4) {
		fprintf(stderr, "usage: %s ATOLLD ATOLL MCP_CLIENT\n", argv[0]);
		exit(TEST_FAIL);
	}
	g_client = argv[3];
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		test_skip("needs 2 online cpus");
}

/* atoll run --cell cell -- mcp_client mode, registered with in (with
 * register false, ATOLL_CELL is unset: the runtime must stay standalone). */
static inline void mcp_spawn_opt(struct inst *in, const char *cell,
				 const char *mode, bool do_register,
				 struct mcp_kid *k)
{
	int p[2];

	CHECK_OK(pipe(p));
	memset(k, 0, sizeof(*k));
	k->pid = fork();
	CHECK(k->pid >= 0);
	if (k->pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		setenv("ATOLL_SOCKET", in->sock, 1);
		if (do_register)
			setenv("ATOLL_CELL", cell, 1);
		else
			unsetenv("ATOLL_CELL");
		execl(g_atoll, "atoll", "run", "--cell", cell, "--", g_client,
		      mode, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	k->out = p[0];
	g_kids[g_nkids++] = k->pid;
}

static inline void mcp_spawn(struct inst *in, const char *cell,
			     const char *mode, struct mcp_kid *k)
{
	mcp_spawn_opt(in, cell, mode, true, k);
}

/* Wait up to ms for a line equal to want; false on timeout or EOF. */
static inline bool mcp_wait_line(struct mcp_kid *k, const char *want, int ms)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char *nl;
		struct timespec t;
		long left;
		struct pollfd pf = { k->out, POLLIN, 0 };
		ssize_t n;

		while ((nl = memchr(k->buf, '\n', k->len))) {
			size_t ll = (size_t)(nl - k->buf);
			bool hit;

			*nl = '\0';
			hit = !strcmp(k->buf, want);
			memmove(k->buf, nl + 1, k->len - ll - 1);
			k->len -= ll + 1;
			if (hit)
				return true;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
			     (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return false;
		n = read(k->out, k->buf + k->len, sizeof(k->buf) - 1 - k->len);
		if (n <= 0)
			return false;
		k->len += (size_t)n;
	}
}

#define EXPECT_LINE(k, want, ms)                                            \
	do {                                                                \
		if (!mcp_wait_line((k), (want), (ms))) {                    \
			fprintf(stderr, "FAIL %s:%d: no line \"%s\" from the MCP within %d ms\n", \
				__FILE__, __LINE__, (want), (ms));          \
			exit(TEST_FAIL);                                    \
		}                                                           \
	} while (0)

/* The "allocated" count atolld reports for the MCPs of cell (-1: none). */
static inline int mcp_allocated(struct inst *in, const char *cell)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.list\"}");
	const struct json *cells = json_get(json_root(d), "cells");
	int r = -1;

	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i];
		const struct json *mc = json_get(c, "mcps");

		if (strcmp(json_get(c, "name")->s, cell) || !mc || !mc->len)
			continue;
		r = (int)json_get(mc->kids[0], "allocated")->i;
	}
	json_free(d);
	return r;
}

/* Whether the cell's MCP holds `want` vcores (-1: no MCP) within ms:
 * atolld completes a revocation (granted = 0) on its tick after the vcore
 * parks, a moment after the MCP already counts one vcore less, and
 * deregisters an MCP once it sees its connection close. */
static inline bool mcp_wait_allocated(struct inst *in, const char *cell,
				      int want, int ms)
{
	for (int waited = 0; mcp_allocated(in, cell) != want; waited += 20) {
		if (waited >= ms)
			return false;
		sleep_ms(20);
	}
	return true;
}

static inline void mcp_reap(struct mcp_kid *k)
{
	kill(k->pid, SIGKILL);
	reap(k->pid);
	close(k->out);
}
