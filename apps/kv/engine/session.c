/* session.c - one connection's memcached text protocol: parse, route, answer.
 *
 * Design note. Requests are parsed in place in the caller's input: a line
 * is found with memchr, split into tokens on spaces (memcached's rules),
 * and a storage command is executed only once its whole value is in the
 * input, so the value is copied once, from the input into the item. If it
 * is not all there yet nothing is consumed and kv_session_want() says how
 * much is needed; the next call parses the line again (a few hundred bytes
 * at most), which keeps the session free of half-parsed state. The one
 * state kept across calls is the count of value bytes still to swallow
 * after a value refused as too large, which need not fit any buffer.
 *
 * Every key goes to its shard through the router. A multi-key get runs
 * once per shard involved: with one shard the answers are appended
 * straight to the output; with several, each shard appends to its own
 * scratch buffer and records where each key's answer ends, and the
 * answers are then copied out in key order. The key and scratch arrays
 * live in the session and are reused, so a warm session does not malloc
 * on the get path.
 *
 * Answers follow memcached 1.6.18's process_command_ascii() byte for byte
 * (kv.h lists the deliberate differences): the same token-count checks
 * (ERROR), the same messages, `noreply` taken from the last token by the
 * commands that take it, and which errors it silences.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

/* The most tokens a command other than the get family uses (cas with
 * noreply: 7), plus one to notice extras. */
#define MAX_TOKENS 8

/* memcached's connection close for a long line spares get lines that
 * start after at most this many spaces. */
#define LONG_GET_MAX_SPACES 100

/* Scratch buffers and key arrays bigger than this are freed after a get,
 * so one huge get does not pin memory for the life of the connection. */
#define SCRATCH_KEEP (256 * 1024)
#define KEYS_KEEP 4096

struct token {
	const char *p;
	size_t len;
};

struct kv_session {
	struct kv_session_config cfg;
	size_t long_line_max;   /* longest get-family line accepted */
	size_t want;            /* see kv_session_want() */
	uint64_t swallow;       /* bytes of a refused value still to skip */
	/* a get's keys and, for multi-shard gets, where each answer ends */
	struct kv_key *keys;
	size_t *key_end;
	size_t keys_cap;
	/* per shard, multi-shard gets only */
	struct kv_buf *scratch;
	size_t *scratch_pos;
	unsigned nscratch;
};

struct request;

struct command {
	const char *name;
	uint8_t len;
	uint8_t min_tokens, max_tokens; /* counting the command; max 0 = any */
	ssize_t (*run)(struct request *rq);
	int arg;                         /* the variant, per command */
};

/* One command line being executed. */
struct request {
	struct kv_session *s;
	struct kv_router *r;
	struct kv_buf *out;
	const struct command *cmd;
	struct token tok[MAX_TOKENS];
	size_t ntok;            /* tokens found, at most MAX_TOKENS */
	const char *args;       /* the line after the command token */
	const char *end;        /* end of the line (before "\r\n") */
	size_t line_bytes;      /* the line with its newline */
	const char *data;       /* what follows the line */
	size_t data_len;
	bool noreply;
	int *want_close;
};

/* A handler's "not all there yet": consume nothing, s->want says how much
 * is needed. */
#define NEED_MORE (-EAGAIN)

/* ---- tokens and replies ---------------------------------------------------- */

/* The next space-separated token in [*p, end), advancing *p. */
static bool next_token(const char **p, const char *end, struct token *t)
{
	const char *q = *p;

	while (q < end && *q == ' ')
		q++;
	if (q == end) {
		*p = q;
		return false;
	}
	t->p = q;
	while (q < end && *q != ' ')
		q++;
	t->len = (size_t)(q - t->p);
	*p = q;
	return true;
}

static bool token_is(const struct token *t, const char *s, size_t len)
{
	return t->len == len && memcmp(t->p, s, len) == 0;
}

#define token_is_lit(t, s) token_is((t), (s), sizeof(s) - 1)

/* memcached's set_noreply_maybe(): the last token says noreply. */
static void take_noreply(struct request *rq)
{
	rq->noreply = token_is_lit(&rq->tok[rq->ntok - 1], "noreply");
}

static int append(struct request *rq, const char *p, size_t len)
{
	return kv_buf_append(rq->out, p, len);
}

/* Answer a line, unless the command said noreply. Returns 0 or -ENOMEM. */
static int reply(struct request *rq, const char *p, size_t len)
{
	return rq->noreply ? 0 : append(rq, p, len);
}

#define reply_lit(rq, s) reply((rq), (s), sizeof(s) - 1)

#define BAD_FORMAT "CLIENT_ERROR bad command line format\r\n"
#define BAD_EXPTIME "CLIENT_ERROR invalid exptime argument\r\n"

/* Keys are 1..250 bytes of anything but a space (the token separator),
 * control bytes included: memcached stores them, and clients use them
 * (memcaslap's keys start with eight 0x10 bytes). */
static bool key_ok(const struct token *t)
{
	return t->len && t->len <= KV_KEY_MAX;
}

static struct kv_key make_key(const struct request *rq, const struct token *t)
{
	struct kv_key k = {
		.p = t->p,
		.len = (uint8_t)t->len,
		.hash = kv_key_hash(t->p, t->len),
	};

	k.shard = kv_shard_of_hash(k.hash, rq->r->nshards);
	return k;
}

/* ---- single-key operations on a shard -------------------------------------- */

enum op_kind { OP_UPDATE, OP_REFUSE, OP_DELETE, OP_DELTA, OP_TOUCH };

struct op_job {
	enum op_kind kind;
	const struct kv_key *key;
	const struct kv_update *update;   /* OP_UPDATE */
	bool flag;          /* OP_DELTA: incr; OP_REFUSE: drop the old value */
	uint64_t delta;     /* OP_DELTA */
	int32_t exptime;    /* OP_TOUCH */
	uint64_t value;     /* OP_DELTA's result */
	enum kv_store_result res;
};

static void op_on_shard(struct kv_store *st, void *arg)
{
	struct op_job *j = arg;

	switch (j->kind) {
	case OP_UPDATE:
		j->res = kv_store_update(st, j->key, j->update);
		break;
	case OP_REFUSE:
		kv_store_refuse_too_large(st, j->key, j->flag);
		break;
	case OP_DELETE:
		j->res = kv_store_delete(st, j->key);
		break;
	case OP_DELTA:
		j->res = kv_store_delta(st, j->key, j->flag, j->delta,
					&j->value);
		break;
	case OP_TOUCH:
		j->res = kv_store_touch(st, j->key, j->exptime);
		break;
	}
}

static void run_op(struct request *rq, struct op_job *j)
{
	rq->r->run(rq->r, j->key->shard, op_on_shard, j);
}

/* The answer memcached gives for a store result. */
static int reply_result(struct request *rq, enum kv_store_result res)
{
	static const struct {
		const char *p;
		size_t len;
	} text[] = {
#define T(s) { s "\r\n", sizeof(s "\r\n") - 1 }
		[KV_STORED] = T("STORED"),
		[KV_NOT_STORED] = T("NOT_STORED"),
		[KV_EXISTS] = T("EXISTS"),
		[KV_NOT_FOUND] = T("NOT_FOUND"),
		[KV_DELETED] = T("DELETED"),
		[KV_TOUCHED] = T("TOUCHED"),
		[KV_NON_NUMERIC] = T("CLIENT_ERROR cannot increment or "
				     "decrement non-numeric value"),
		[KV_TOO_LARGE] = T("SERVER_ERROR object too large for cache"),
		[KV_NO_MEMORY] = T("SERVER_ERROR out of memory storing object"),
#undef T
	};

	BUG_ON(res >= ARRAY_SIZE(text) || !text[res].p);
	return reply(rq, text[res].p, text[res].len);
}

/* ---- storage commands ------------------------------------------------------ */

/* set add replace append prepend cas: the line, then vlen bytes and CRLF. */
static ssize_t cmd_update(struct request *rq)
{
	struct kv_session *s = rq->s;
	struct kv_update u = { .mode = (enum kv_update_mode)rq->cmd->arg };
	struct op_job j = { .update = &u };
	struct kv_key key;
	int32_t vlen;
	int err;

	take_noreply(rq);
	if (!key_ok(&rq->tok[1]) ||
	    !kv_parse_u32(rq->tok[2].p, rq->tok[2].len, &u.flags) ||
	    !kv_parse_i32(rq->tok[3].p, rq->tok[3].len, &u.exptime) ||
	    !kv_parse_i32(rq->tok[4].p, rq->tok[4].len, &vlen) ||
	    (u.mode == KV_CAS &&
	     !kv_parse_u64(rq->tok[5].p, rq->tok[5].len, &u.cas)) ||
	    vlen < 0 || vlen > INT_MAX - 2)
		return reply_lit(rq, BAD_FORMAT);
	key = make_key(rq, &rq->tok[1]);
	j.key = &key;
	if (kv_item_too_large(key.len, u.flags, (uint64_t)vlen,
			      !s->cfg.no_cas, s->cfg.item_max)) {
		j.kind = OP_REFUSE;
		j.flag = u.mode == KV_SET;
		run_op(rq, &j);
		s->swallow = (uint64_t)vlen + 2;
		return reply_result(rq, KV_TOO_LARGE);
	}
	if (rq->data_len < (size_t)vlen + 2) {
		s->want = rq->line_bytes + (size_t)vlen + 2;
		return NEED_MORE;
	}
	if (rq->data[vlen] != '\r' || rq->data[vlen + 1] != '\n') {
		err = reply_lit(rq, "CLIENT_ERROR bad data chunk\r\n");
		return err ?: vlen + 2;
	}
	u.val = rq->data;
	u.vlen = (size_t)vlen;
	j.kind = OP_UPDATE;
	run_op(rq, &j);
	err = reply_result(rq, j.res);
	return err ?: vlen + 2;
}

/* ---- the get family -------------------------------------------------------- */

struct get_job {
	const struct kv_key *keys;
	size_t nkeys;
	unsigned shard;
	bool with_cas, touch;
	int32_t exptime;
	struct kv_buf *out;
	size_t *key_end;    /* multi-shard: where each key's answer ends */
	int err;
};

static void get_on_shard(struct kv_store *st, void *arg)
{
	struct get_job *j = arg;

	for (size_t i = 0; i < j->nkeys; i++) {
		int r;

		if (j->keys[i].shard != j->shard)
			continue;
		r = kv_store_get(st, &j->keys[i], j->with_cas, j->touch,
				 j->exptime, j->out);
		if (r < 0) {
			j->err = r;
			return;
		}
		if (j->key_end)
			j->key_end[i] = j->out->len;
	}
}

static void keys_free(struct kv_session *s)
{
	free(s->keys);
	free(s->key_end);
	s->keys = NULL;
	s->key_end = NULL;
	s->keys_cap = 0;
}

static int keys_reserve(struct kv_session *s, size_t n)
{
	size_t cap = s->keys_cap ? s->keys_cap * 2 : 16;
	struct kv_key *keys;
	size_t *ends;

	if (n <= s->keys_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	keys = realloc(s->keys, cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	s->keys = keys;
	ends = realloc(s->key_end, cap * sizeof(*ends));
	if (!ends)
		return -ENOMEM;
	s->key_end = ends;
	s->keys_cap = cap;
	return 0;
}

static int scratch_reserve(struct kv_session *s, unsigned nshards)
{
	struct kv_buf *bufs;
	size_t *pos;

	if (nshards <= s->nscratch)
		return 0;
	bufs = realloc(s->scratch, nshards * sizeof(*bufs));
	if (!bufs)
		return -ENOMEM;
	memset(bufs + s->nscratch, 0,
	       (nshards - s->nscratch) * sizeof(*bufs));
	s->scratch = bufs;
	pos = realloc(s->scratch_pos, nshards * sizeof(*pos));
	if (!pos)
		return -ENOMEM;
	s->scratch_pos = pos;
	s->nscratch = nshards;
	return 0;
}

/* Several shards: each answers into its scratch buffer (in the order the
 * shards first appear among the keys), then the answers are copied out in
 * key order. scratch_pos[shard] is SIZE_MAX until the shard has run. */
static int get_from_shards(struct request *rq, struct get_job *j)
{
	struct kv_session *s = rq->s;
	unsigned nshards = rq->r->nshards;
	size_t total = 0;
	int err = scratch_reserve(s, nshards);

	if (err)
		return err;
	for (unsigned sh = 0; sh < nshards; sh++)
		s->scratch_pos[sh] = SIZE_MAX;
	j->key_end = s->key_end;
	for (size_t i = 0; i < j->nkeys && !j->err; i++) {
		unsigned sh = j->keys[i].shard;

		if (s->scratch_pos[sh] != SIZE_MAX)
			continue;
		s->scratch_pos[sh] = 0;
		s->scratch[sh].len = 0;
		j->shard = sh;
		j->out = &s->scratch[sh];
		rq->r->run(rq->r, sh, get_on_shard, j);
		total += s->scratch[sh].len;
	}
	err = j->err ?: kv_buf_reserve(rq->out, total);
	for (size_t i = 0; i < j->nkeys && !err; i++) {
		unsigned sh = j->keys[i].shard;
		size_t from = s->scratch_pos[sh];

		if (s->key_end[i] == from)
			continue; /* a miss */
		kv_buf_put(rq->out, s->scratch[sh].p + from,
			   s->key_end[i] - from);
		s->scratch_pos[sh] = s->key_end[i];
	}
	for (unsigned sh = 0; sh < nshards; sh++)
		if (s->scratch[sh].cap > SCRATCH_KEEP)
			kv_buf_free(&s->scratch[sh]);
	return err;
}

static bool one_shard(const struct kv_key *keys, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (keys[i].shard != keys[0].shard)
			return false;
	return true;
}

#define GET_CAS 1
#define GET_TOUCH 2

/* get gets gat gats bget: [exptime] key... -> VALUE blocks in key order,
 * END. A bad key answers only the error. */
static ssize_t cmd_get(struct request *rq)
{
	struct kv_session *s = rq->s;
	struct get_job j = {
		.with_cas = rq->cmd->arg & GET_CAS,
		.touch = rq->cmd->arg & GET_TOUCH,
	};
	const char *p = rq->args;
	struct token t;
	size_t n = 0;
	int err;

	if (j.touch) {
		if (!kv_parse_i32(rq->tok[1].p, rq->tok[1].len, &j.exptime))
			return reply_lit(rq, BAD_EXPTIME);
		p = rq->tok[1].p + rq->tok[1].len;
	}
	while (next_token(&p, rq->end, &t)) {
		if (!key_ok(&t))
			return reply_lit(rq, BAD_FORMAT);
		err = keys_reserve(s, n + 1);
		if (err)
			return err;
		s->keys[n++] = make_key(rq, &t);
	}
	j.keys = s->keys;
	j.nkeys = n;
	if (n > 0 && one_shard(s->keys, n)) {
		j.shard = s->keys[0].shard;
		j.out = rq->out;
		rq->r->run(rq->r, j.shard, get_on_shard, &j);
		err = j.err;
	} else {
		err = get_from_shards(rq, &j);
	}
	if (s->keys_cap > KEYS_KEEP)
		keys_free(s);
	return err ?: append(rq, "END\r\n", 5);
}

/* ---- other key commands ---------------------------------------------------- */

/* delete key [0] [noreply]: memcached still accepts the old hold time 0. */
static ssize_t cmd_delete(struct request *rq)
{
	struct kv_key key;
	struct op_job j = { .kind = OP_DELETE, .key = &key };

	if (rq->ntok > 2) {
		bool hold_zero = token_is_lit(&rq->tok[2], "0");
		bool valid;

		take_noreply(rq);
		valid = (rq->ntok == 3 && (hold_zero || rq->noreply)) ||
			(rq->ntok == 4 && hold_zero && rq->noreply);
		if (!valid)
			return reply_lit(rq, "CLIENT_ERROR bad command line "
					 "format.  Usage: delete <key> "
					 "[noreply]\r\n");
	}
	if (!key_ok(&rq->tok[1]))
		return reply_lit(rq, BAD_FORMAT);
	key = make_key(rq, &rq->tok[1]);
	run_op(rq, &j);
	return reply_result(rq, j.res);
}

/* incr/decr key delta [noreply] -> the new value. */
static ssize_t cmd_delta(struct request *rq)
{
	struct kv_key key;
	struct op_job j = { .kind = OP_DELTA, .key = &key,
			    .flag = rq->cmd->arg };
	char line[KV_U64_DIGITS + 2];
	size_t n;

	take_noreply(rq);
	if (!key_ok(&rq->tok[1]))
		return reply_lit(rq, BAD_FORMAT);
	if (!kv_parse_u64(rq->tok[2].p, rq->tok[2].len, &j.delta))
		return reply_lit(rq, "CLIENT_ERROR invalid numeric delta "
				 "argument\r\n");
	key = make_key(rq, &rq->tok[1]);
	run_op(rq, &j);
	if (j.res == KV_NO_MEMORY)
		return reply_lit(rq, "SERVER_ERROR out of memory\r\n");
	if (j.res != KV_DELTA_OK)
		return reply_result(rq, j.res);
	n = kv_u64_to_dec(line, j.value);
	memcpy(line + n, "\r\n", 2);
	return reply(rq, line, n + 2);
}

/* touch key exptime [noreply] */
static ssize_t cmd_touch(struct request *rq)
{
	struct kv_key key;
	struct op_job j = { .kind = OP_TOUCH, .key = &key };

	take_noreply(rq);
	if (!key_ok(&rq->tok[1]))
		return reply_lit(rq, BAD_FORMAT);
	if (!kv_parse_i32(rq->tok[2].p, rq->tok[2].len, &j.exptime))
		return reply_lit(rq, BAD_EXPTIME);
	key = make_key(rq, &rq->tok[1]);
	run_op(rq, &j);
	return reply_result(rq, j.res);
}

/* ---- every-shard commands -------------------------------------------------- */

struct flush_job {
	int32_t delay;
	bool count;
};

static void flush_on_shard(struct kv_store *st, void *arg)
{
	struct flush_job *j = arg;

	kv_store_flush(st, j->delay, j->count);
}

/* flush_all [delay] [noreply] */
static ssize_t cmd_flush_all(struct request *rq)
{
	struct flush_job j = { 0 };

	take_noreply(rq);
	if (rq->ntok != (rq->noreply ? 2u : 1u) &&
	    !kv_parse_i32(rq->tok[1].p, rq->tok[1].len, &j.delay))
		return reply_lit(rq, BAD_EXPTIME);
	for (unsigned sh = 0; sh < rq->r->nshards; sh++) {
		j.count = sh == 0;
		rq->r->run(rq->r, sh, flush_on_shard, &j);
	}
	return reply_lit(rq, "OK\r\n");
}

/* One line per counter, summed over shards, in memcached's order. */
static const struct {
	const char *name;
	size_t off;
} shard_stats[] = {
#define S(f) { #f, offsetof(struct kv_store_stats, f) }
	S(cmd_get), S(cmd_set), S(cmd_flush), S(cmd_touch),
	S(get_hits), S(get_misses), S(get_expired), S(get_flushed),
	S(delete_misses), S(delete_hits), S(incr_misses), S(incr_hits),
	S(decr_misses), S(decr_hits), S(cas_misses), S(cas_hits),
	S(cas_badval), S(touch_hits), S(touch_misses),
	S(store_too_large), S(store_no_memory), S(limit_maxbytes),
	S(bytes), S(curr_items), S(total_items), S(expired_unfetched),
	S(evicted_unfetched), S(evictions), S(reclaimed),
#undef S
};

struct stats_job {
	struct kv_store_stats sum;
	size_t item_max;
	bool cas, evicts;
	bool reset;
};

static void stats_on_shard(struct kv_store *st, void *arg)
{
	struct stats_job *j = arg;
	struct kv_store_stats one;

	if (j->reset) {
		kv_store_reset_stats(st);
		return;
	}
	kv_store_get_stats(st, &one);
	for (size_t i = 0; i < ARRAY_SIZE(shard_stats); i++)
		*(uint64_t *)((char *)&j->sum + shard_stats[i].off) +=
			*(uint64_t *)((char *)&one + shard_stats[i].off);
	j->item_max = kv_store_item_max(st);
	j->cas = kv_store_uses_cas(st);
	j->evicts = kv_store_evicts(st);
}

static void stats_collect(struct request *rq, struct stats_job *j)
{
	for (unsigned sh = 0; sh < rq->r->nshards; sh++)
		rq->r->run(rq->r, sh, stats_on_shard, j);
}

static int stat_line(struct request *rq, const char *name, const char *text,
		     uint64_t num)
{
	size_t nlen = strlen(name), tlen = text ? strlen(text) : 0;
	struct kv_buf *out = rq->out;

	if (kv_buf_reserve(out, 5 + nlen + 1 + tlen + KV_U64_DIGITS + 2))
		return -ENOMEM;
	kv_buf_put_lit(out, "STAT ");
	kv_buf_put(out, name, nlen);
	out->p[out->len++] = ' ';
	if (text)
		kv_buf_put(out, text, tlen);
	else
		kv_buf_put_u64(out, num);
	kv_buf_put_lit(out, "\r\n");
	return 0;
}

static int stats_general(struct request *rq, const struct stats_job *j)
{
	int err = 0;

	for (size_t i = 0; i < ARRAY_SIZE(shard_stats) && !err; i++)
		err = stat_line(rq, shard_stats[i].name, NULL,
				*(const uint64_t *)((const char *)&j->sum +
						    shard_stats[i].off));
	return err;
}

static int stats_settings(struct request *rq, const struct stats_job *j)
{
	return stat_line(rq, "maxbytes", NULL, j->sum.limit_maxbytes) ?:
	       stat_line(rq, "evictions", j->evicts ? "on" : "off", 0) ?:
	       stat_line(rq, "cas_enabled", j->cas ? "yes" : "no", 0) ?:
	       stat_line(rq, "item_size_max", NULL, j->item_max);
}

/* One pseudo slab class holds every item. */
static int stats_items(struct request *rq, const struct stats_job *j)
{
	if (j->sum.curr_items == 0)
		return 0;
	return stat_line(rq, "items:1:number", NULL, j->sum.curr_items) ?:
	       stat_line(rq, "items:1:evicted", NULL, j->sum.evictions) ?:
	       stat_line(rq, "items:1:outofmemory", NULL,
			 j->sum.store_no_memory) ?:
	       stat_line(rq, "items:1:reclaimed", NULL, j->sum.reclaimed) ?:
	       stat_line(rq, "items:1:expired_unfetched", NULL,
			 j->sum.expired_unfetched) ?:
	       stat_line(rq, "items:1:evicted_unfetched", NULL,
			 j->sum.evicted_unfetched);
}

static int stats_slabs(struct request *rq, const struct stats_job *j)
{
	return stat_line(rq, "active_slabs", NULL, j->sum.curr_items != 0) ?:
	       stat_line(rq, "total_malloced", NULL, j->sum.bytes);
}

static int stats_sizes(struct request *rq, const struct stats_job *j)
{
	(void)j;
	return stat_line(rq, "sizes_status", "disabled", 0);
}

/* stats [group]: the server's lines for the group, the engine's, END. */
static ssize_t cmd_stats(struct request *rq)
{
	static const struct {
		const char *name;     /* NULL: plain "stats" */
		int (*lines)(struct request *rq, const struct stats_job *j);
		bool server;          /* the router adds lines first */
	} groups[] = {
		{ NULL, stats_general, true },
		{ "settings", stats_settings, true },
		{ "items", stats_items, false },
		{ "slabs", stats_slabs, false },
		{ "sizes", stats_sizes, false },
		{ "conns", NULL, true },
	};
	struct stats_job j = { 0 };
	const struct token *sub = rq->ntok > 1 ? &rq->tok[1] : NULL;
	int err = 0;

	if (sub && token_is_lit(sub, "reset")) {
		j.reset = true;
		stats_collect(rq, &j);
		return append(rq, "RESET\r\n", 7);
	}
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		const char *name = groups[i].name;
		bool match = sub ? name && token_is(sub, name, strlen(name))
				 : !name;

		if (!match)
			continue;
		if (groups[i].server && rq->r->stats)
			err = rq->r->stats(rq->r, name, rq->out);
		if (!err && groups[i].lines) {
			stats_collect(rq, &j);
			err = groups[i].lines(rq, &j);
		}
		return err ?: append(rq, "END\r\n", 5);
	}
	return append(rq, "ERROR\r\n", 7);
}

/* ---- connection-level commands --------------------------------------------- */

static ssize_t cmd_version(struct request *rq)
{
	const char *v = rq->s->cfg.version;
	size_t vlen = strlen(v);

	if (kv_buf_reserve(rq->out, 8 + vlen + 2))
		return -ENOMEM;
	kv_buf_put_lit(rq->out, "VERSION ");
	kv_buf_put(rq->out, v, vlen);
	kv_buf_put_lit(rq->out, "\r\n");
	return 0;
}

static ssize_t cmd_verbosity(struct request *rq)
{
	uint32_t level;

	take_noreply(rq);
	if (!kv_parse_u32(rq->tok[1].p, rq->tok[1].len, &level))
		return reply_lit(rq, BAD_FORMAT);
	if (rq->r->verbosity)
		rq->r->verbosity(rq->r, level);
	return reply_lit(rq, "OK\r\n");
}

static ssize_t cmd_quit(struct request *rq)
{
	*rq->want_close = 1;
	return 0;
}

/* Constant answers: mn, and shutdown (never enabled, as memcached without
 * -A). */
static ssize_t cmd_fixed(struct request *rq)
{
	static const char *const text[] = {
		"MN\r\n",
		"ERROR: shutdown not enabled\r\n",
	};
	const char *t = text[rq->cmd->arg];

	return append(rq, t, strlen(t));
}

#define CMD(n, lo, hi, fn, a) { n, sizeof(n) - 1, lo, hi, fn, a }

/* Token counts as memcached's WANT_TOKENS* checks (which answer ERROR),
 * without its end marker. Most frequent first. */
static const struct command commands[] = {
	CMD("get", 2, 0, cmd_get, 0),
	CMD("set", 5, 6, cmd_update, KV_SET),
	CMD("gets", 2, 0, cmd_get, GET_CAS),
	CMD("delete", 2, 4, cmd_delete, 0),
	CMD("incr", 3, 4, cmd_delta, 1),
	CMD("decr", 3, 4, cmd_delta, 0),
	CMD("add", 5, 6, cmd_update, KV_ADD),
	CMD("replace", 5, 6, cmd_update, KV_REPLACE),
	CMD("append", 5, 6, cmd_update, KV_APPEND),
	CMD("prepend", 5, 6, cmd_update, KV_PREPEND),
	CMD("cas", 6, 7, cmd_update, KV_CAS),
	CMD("touch", 3, 4, cmd_touch, 0),
	CMD("gat", 2, 0, cmd_get, GET_TOUCH),
	CMD("gats", 2, 0, cmd_get, GET_TOUCH | GET_CAS),
	CMD("bget", 2, 0, cmd_get, 0),
	CMD("mn", 1, 0, cmd_fixed, 0),
	CMD("flush_all", 1, 3, cmd_flush_all, 0),
	CMD("version", 1, 0, cmd_version, 0),
	CMD("stats", 1, 0, cmd_stats, 0),
	CMD("verbosity", 2, 3, cmd_verbosity, 0),
	CMD("quit", 1, 0, cmd_quit, 0),
	CMD("shutdown", 1, 0, cmd_fixed, 1),
};

static const struct command *command_find(const struct token *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (token_is(t, commands[i].name, commands[i].len))
			return &commands[i];
	return NULL;
}

/* memcached closes on an unknown command whose last token starts with
 * "HTTP/" (a web client), except where it has already answered ERROR: a
 * one-byte command, or a dispatch on the first letter. */
static bool is_http(const struct request *rq)
{
	const struct token *cmd = &rq->tok[0], *last = &rq->tok[rq->ntok - 1];

	if (cmd->len < 2 || strchr("gsacidt", cmd->p[0]) ||
	    (cmd->p[0] == 'm' && cmd->len == 2))
		return false;
	return last->len >= 5 && memcmp(last->p, "HTTP/", 5) == 0;
}

/* ---- lines ------------------------------------------------------------------ */

static bool starts_with(const char *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(p, prefix, n) == 0;
}

/* Whether a line may grow past KV_LINE_MAX: only the get family after few
 * spaces (memcached leaves multi-gets unbounded; it allows get and gets
 * only, but gat and gats lines get as long for the same reason). */
static bool may_be_long(const char *p, size_t len)
{
	size_t i = 0;

	while (i < len && p[i] == ' ')
		i++;
	if (i > LONG_GET_MAX_SPACES)
		return false;
	p += i;
	len -= i;
	return starts_with(p, len, "get ") || starts_with(p, len, "gets ") ||
	       starts_with(p, len, "gat ") || starts_with(p, len, "gats ");
}

/* Execute one command line at in[0..len). Returns the bytes consumed (> 0),
 * NEED_MORE, or a negative errno that closes the connection. */
static ssize_t do_line(struct request *rq, const char *in, size_t len)
{
	struct kv_session *s = rq->s;
	size_t limit = may_be_long(in, len) ? s->long_line_max : KV_LINE_MAX;
	const char *nl = memchr(in, '\n', len < limit + 1 ? len : limit + 1);
	const char *p, *end;
	ssize_t extra;

	if (!nl) {
		/* memcached closes without a word (tests/kvconf checks it
		 * against the real one). */
		if (len > limit)
			return -EPROTO;
		s->want = len >= KV_LINE_MAX ? len + 1 : 0;
		return NEED_MORE;
	}
	rq->line_bytes = (size_t)(nl - in) + 1;
	end = nl;
	if (end - in > 1 && end[-1] == '\r')
		end--;
	rq->end = end;
	rq->data = nl + 1;
	rq->data_len = len - rq->line_bytes;
	p = in;
	rq->ntok = 0;
	while (rq->ntok < MAX_TOKENS && next_token(&p, end, &rq->tok[rq->ntok]))
		if (rq->ntok++ == 0)
			rq->args = p;
	if (rq->ntok == 0)
		return append(rq, "ERROR\r\n", 7) ?: (ssize_t)rq->line_bytes;
	rq->cmd = command_find(&rq->tok[0]);
	if (!rq->cmd) {
		if (is_http(rq))
			return -EPROTO;
		return append(rq, "ERROR\r\n", 7) ?: (ssize_t)rq->line_bytes;
	}
	/* a full token array may hide more tokens: count them as one more */
	if (rq->ntok == MAX_TOKENS && next_token(&p, end, &(struct token){ 0 }))
		rq->ntok++;
	if (rq->ntok < rq->cmd->min_tokens ||
	    (rq->cmd->max_tokens && rq->ntok > rq->cmd->max_tokens))
		return append(rq, "ERROR\r\n", 7) ?: (ssize_t)rq->line_bytes;
	rq->noreply = false;
	extra = rq->cmd->run(rq);
	if (extra < 0)
		return extra;
	return (ssize_t)rq->line_bytes + extra;
}

ssize_t kv_session_feed(struct kv_session *s, struct kv_router *r,
			const char *in, size_t len, struct kv_buf *out,
			int *want_close)
{
	struct request rq = { .s = s, .r = r, .out = out,
			      .want_close = want_close };
	size_t pos = 0;

	*want_close = 0;
	if (r->nshards == 0)
		return -EINVAL;
	s->want = 0;
	while (pos < len && !*want_close) {
		ssize_t n;

		if (s->swallow) {
			n = (ssize_t)(s->swallow < len - pos ? s->swallow
							     : len - pos);
			s->swallow -= (uint64_t)n;
		} else {
			n = do_line(&rq, in + pos, len - pos);
			if (n == NEED_MORE)
				break;
			if (n < 0)
				return n;
		}
		pos += (size_t)n;
	}
	return (ssize_t)pos;
}

size_t kv_session_want(const struct kv_session *s)
{
	return s->want;
}

int kv_session_create(struct kv_session **out,
		      const struct kv_session_config *cfg)
{
	struct kv_session *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (s->cfg.item_max == 0)
		s->cfg.item_max = KV_ITEM_MAX_DEFAULT;
	if (!s->cfg.version)
		s->cfg.version = KV_VERSION;
	s->long_line_max = KV_LINE_MAX + s->cfg.item_max + 2;
	*out = s;
	return 0;
}

void kv_session_destroy(struct kv_session *s)
{
	if (!s)
		return;
	for (unsigned sh = 0; sh < s->nscratch; sh++)
		kv_buf_free(&s->scratch[sh]);
	free(s->scratch);
	free(s->scratch_pos);
	keys_free(s);
	free(s);
}
