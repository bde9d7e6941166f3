/* kvtest.c - the single-threaded engine harness of the kv tests. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kvtest.h"

static uint32_t kvt_clock(void *arg)
{
	return ((struct kvt *)arg)->now;
}

static void kvt_run(struct kv_router *r, unsigned shard,
		    void (*fn)(struct kv_store *s, void *arg), void *arg)
{
	struct kvt *t = container_of(r, struct kvt, r);

	CHECK(shard < t->cfg.nshards);
	t->runs[shard]++;
	fn(t->st[shard], arg);
}

static int kvt_server_stats(struct kv_router *r, const char *group,
			    struct kv_buf *out)
{
	static const char line[] = "STAT pid 1\r\n";

	(void)r;
	if (group)
		return 0;
	CHECK_OK(kv_buf_reserve(out, sizeof(line) - 1));
	memcpy(out->p + out->len, line, sizeof(line) - 1);
	out->len += sizeof(line) - 1;
	return 0;
}

static void kvt_open(struct kvt *t)
{
	struct kv_session_config sc = {
		.item_max = t->cfg.item_max,
		.no_cas = t->cfg.no_cas,
	};

	for (unsigned i = 0; i < t->cfg.nshards; i++) {
		struct kv_store_config c = {
			.mem_limit = t->cfg.mem_limit,
			.item_max = t->cfg.item_max,
			.no_evict = t->cfg.no_evict,
			.no_cas = t->cfg.no_cas,
			.shard = i,
			.nshards = t->cfg.nshards,
			.now = kvt_clock,
			.clock_arg = t,
		};

		CHECK_OK(kv_store_create(&t->st[i], &c));
	}
	CHECK_OK(kv_session_create(&t->sess, &sc));
	memset(t->runs, 0, sizeof(t->runs));
	t->in_len = 0;
	t->out.len = 0;
	t->closed = false;
	t->last_err = 0;
}

static void kvt_close(struct kvt *t)
{
	kv_session_destroy(t->sess);
	t->sess = NULL;
	for (unsigned i = 0; i < t->cfg.nshards; i++) {
		kv_store_destroy(t->st[i]);
		t->st[i] = NULL;
	}
}

void kvt_init(struct kvt *t, const struct kvt_config *cfg)
{
	memset(t, 0, sizeof(*t));
	if (cfg)
		t->cfg = *cfg;
	if (t->cfg.nshards == 0)
		t->cfg.nshards = 1;
	CHECK(t->cfg.nshards <= KVT_MAX_SHARDS);
	if (t->cfg.mem_limit == 0)
		t->cfg.mem_limit = 64u << 20;
	if (t->cfg.item_max == 0)
		t->cfg.item_max = KV_ITEM_MAX_DEFAULT;
	t->r.nshards = t->cfg.nshards;
	t->r.run = kvt_run;
	t->r.stats = kvt_server_stats;
	t->now = KVT_CLOCK_START;
	kvt_open(t);
}

void kvt_fini(struct kvt *t)
{
	kvt_close(t);
	free(t->in);
	kv_buf_free(&t->out);
	memset(t, 0, sizeof(*t));
}

void kvt_reset(struct kvt *t)
{
	kvt_close(t);
	t->now = KVT_CLOCK_START;
	kvt_open(t);
}

/* One read as the server does it: append, feed, keep what is left. */
static void kvt_read(struct kvt *t, const char *in, size_t len)
{
	ssize_t n;
	size_t want;
	int want_close;

	if (t->closed || len == 0)
		return;
	if (t->in_cap - t->in_len < len) {
		size_t cap = t->in_cap ? t->in_cap : 4096;

		while (cap - t->in_len < len)
			cap *= 2;
		t->in = realloc(t->in, cap);
		CHECK(t->in);
		t->in_cap = cap;
	}
	memcpy(t->in + t->in_len, in, len);
	t->in_len += len;
	n = kv_session_feed(t->sess, &t->r, t->in, t->in_len, &t->out,
			    &want_close);
	if (n < 0) {
		CHECK(n == -EPROTO);
		t->last_err = n;
		t->closed = true;
		return;
	}
	CHECK((size_t)n <= t->in_len);
	memmove(t->in, t->in + n, t->in_len - (size_t)n);
	t->in_len -= (size_t)n;
	if (want_close) {
		t->closed = true;
		return;
	}
	/* whatever it waits for, it does not have yet */
	want = kv_session_want(t->sess);
	CHECK(want == 0 || want > t->in_len);
}

static const char *kvt_answer(struct kvt *t)
{
	CHECK_OK(kv_buf_reserve(&t->out, 1));
	t->out.p[t->out.len] = '\0';
	return t->out.p;
}

const char *kvt_feed_more(struct kvt *t, const void *in, size_t len)
{
	kvt_read(t, in, len);
	return kvt_answer(t);
}

const char *kvt_feed(struct kvt *t, const void *in, size_t len)
{
	t->out.len = 0;
	return kvt_feed_more(t, in, len);
}

const char *kvt_cmd(struct kvt *t, const char *in)
{
	return kvt_feed(t, in, strlen(in));
}

const char *kvt_feed_chunked(struct kvt *t, const void *in, size_t len,
			     size_t chunk)
{
	const char *p = in;

	t->out.len = 0;
	for (size_t off = 0; off < len; off += chunk)
		kvt_read(t, p + off, len - off < chunk ? len - off : chunk);
	return kvt_answer(t);
}

const char *kvt_cmdf(struct kvt *t, const char *fmt, ...)
{
	char *req;
	const char *got;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&req, fmt, ap);
	va_end(ap);
	CHECK(n >= 0);
	got = kvt_feed(t, req, (size_t)n);
	free(req);
	return got;
}

size_t kvt_out_len(const struct kvt *t)
{
	return t->out.len;
}

struct kv_store_stats kvt_stats(struct kvt *t)
{
	struct kv_store_stats sum = { 0 }, one;
	uint64_t *to = (uint64_t *)&sum, *from = (uint64_t *)&one;

	BUILD_ASSERT(sizeof(sum) % sizeof(uint64_t) == 0);
	for (unsigned i = 0; i < t->cfg.nshards; i++) {
		kv_store_get_stats(t->st[i], &one);
		for (size_t f = 0; f < sizeof(sum) / sizeof(uint64_t); f++)
			to[f] += from[f];
	}
	return sum;
}

static void print_escaped(const char *p, size_t len)
{
	for (size_t i = 0; i < len && i < 600; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\n')
			fputs("\\n", stderr);
		else if (isprint(c))
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	if (len > 600)
		fprintf(stderr, "...(%zu bytes)", len);
	fputc('\n', stderr);
}

void kvt_expect_eq(const char *file, int line, const char *what,
		   const char *got, size_t got_len, const char *want,
		   size_t want_len)
{
	if (got_len == want_len && memcmp(got, want, got_len) == 0)
		return;
	fprintf(stderr, "FAIL %s:%d: wrong answer to\n  ", file, line);
	print_escaped(what, strlen(what));
	fputs("got:\n  ", stderr);
	print_escaped(got, got_len);
	fputs("want:\n  ", stderr);
	print_escaped(want, want_len);
	exit(TEST_FAIL);
}
