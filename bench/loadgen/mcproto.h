/* mcproto.h - the part of memcached's text protocol (doc/protocol.txt in
 * memcached's source) that loadgen speaks: get, set and version requests,
 * and a strict reader of their replies from a byte stream.
 *
 * Owns: nothing global. A struct mc_reader belongs to one connection.
 *
 * The reader is strict on purpose: a load generator that skipped what it
 * did not understand would report a fast server that answers nonsense.
 * Every reply must be exactly what the request calls for (a get: at most
 * one "VALUE <the key> <flags> <bytes> [<cas>]" block of a plausible size,
 * then "END"; a set: "STORED" or "NOT_STORED"; version: "VERSION ...") or
 * one of the protocol's error lines (ERROR, CLIENT_ERROR ...,
 * SERVER_ERROR ...), which complete the request as failed. Anything else
 * is garbage (-EPROTO with a sentence saying what was wrong).
 */
#ifndef LOADGEN_MCPROTO_H
#define LOADGEN_MCPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest reply line accepted, CRLF included. */
#define MC_LINE_MAX 1024
/* Longest key memcached accepts. */
#define MC_KEY_MAX 250
/* Largest value loadgen sets (memcached's default item limit is 1 MiB,
 * header included). */
#define MC_VALUE_MAX 1000000u
/* Longest request loadgen formats, beyond the value's bytes. */
#define MC_REQ_OVERHEAD (MC_KEY_MAX + 48)

enum mc_op { MC_GET, MC_SET, MC_VERSION };

enum mc_status {
	MC_HIT,			/* get: a VALUE, then END */
	MC_MISS,		/* get: END alone */
	MC_STORED,		/* set */
	MC_NOT_STORED,		/* set refused (NOT_STORED) */
	MC_FAILED,		/* ERROR, CLIENT_ERROR or SERVER_ERROR */
	MC_VERSION_OK,		/* version */
};

/* What the reply being read must look like. */
struct mc_expect {
	enum mc_op op;
	const char *key;	/* MC_GET: the key asked for */
	unsigned key_len;
	uint32_t vmin, vmax;	/* MC_GET: plausible value sizes */
};

struct mc_reader {
	uint8_t state;		/* MC_RD_* (mcproto.c) */
	bool hit;		/* MC_GET: a VALUE block was read */
	uint32_t data_left;	/* value bytes still to skip */
	char why[200];		/* garbage: what was wrong; MC_FAILED: the
				 * server's error line */
};

/* Format requests into dst (room for MC_REQ_OVERHEAD + vlen bytes).
 * Return the length written. value points to vlen bytes. */
size_t mc_format_get(char *dst, const char *key, unsigned key_len);
size_t mc_format_set(char *dst, const char *key, unsigned key_len,
		     const char *value, uint32_t vlen);
size_t mc_format_version(char *dst);

/* Get ready to read the reply to one request. */
void mc_reader_start(struct mc_reader *r);

/*
 * Feed buf[0..len) to the reply being read. Returns how many bytes were
 * consumed (>= 0): the reply's bytes, or all of them when it is still
 * incomplete, except an incomplete line at the end, which the caller keeps
 * and feeds again with what follows (it is never longer than MC_LINE_MAX).
 * *done is set when the reply is complete, with its status in *st.
 * Returns -EPROTO on garbage, with a sentence in r->why.
 */
long mc_reader_feed(struct mc_reader *r, const struct mc_expect *ex,
		    const char *buf, size_t len, bool *done,
		    enum mc_status *st);

#endif /* LOADGEN_MCPROTO_H */
