/* mcproto.c - memcached text requests and a strict reply reader. */
#include "mcproto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
	MC_RD_LINE,		/* expecting a reply line */
	MC_RD_DATA,		/* skipping a VALUE's data bytes */
	MC_RD_DATA_END,		/* expecting the empty line after them */
};

/* ---- requests ----------------------------------------------------------- */

static char *put(char *d, const char *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

/* Decimal digits of v, no NUL. */
static char *put_u32(char *d, uint32_t v)
{
	char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*d++ = tmp[--n];
	return d;
}

size_t mc_format_get(char *dst, const char *key, unsigned key_len)
{
	char *d = put(dst, "get ", 4);

	d = put(d, key, key_len);
	d = put(d, "\r\n", 2);
	return (size_t)(d - dst);
}

size_t mc_format_set(char *dst, const char *key, unsigned key_len,
		     const char *value, uint32_t vlen)
{
	char *d = put(dst, "set ", 4);

	d = put(d, key, key_len);
	d = put(d, " 0 0 ", 5);
	d = put_u32(d, vlen);
	d = put(d, "\r\n", 2);
	d = put(d, value, vlen);
	d = put(d, "\r\n", 2);
	return (size_t)(d - dst);
}

size_t mc_format_version(char *dst)
{
	return (size_t)(put(dst, "version\r\n", 9) - dst);
}

/* ---- replies ------------------------------------------------------------ */

void mc_reader_start(struct mc_reader *r)
{
	r->state = MC_RD_LINE;
	r->hit = false;
	r->data_left = 0;
	r->why[0] = '\0';
}

static const char *const op_name[] = {
	[MC_GET] = "get", [MC_SET] = "set", [MC_VERSION] = "version",
};

/* The start of line[0..len) as printable text, for messages. */
static void quote(char *dst, size_t cap, const char *line, size_t len)
{
	size_t n = len < cap - 4 ? len : cap - 4;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	strcpy(dst + n, len > n ? "..." : "");
}

static long garbage(struct mc_reader *r, const struct mc_expect *ex,
		    const char *line, size_t len, const char *what)
{
	char q[80];

	quote(q, sizeof(q), line, len);
	snprintf(r->why, sizeof(r->why), "%s to a %s: \"%s\"", what,
		 op_name[ex->op], q);
	return -EPROTO;
}

static bool starts(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	return len >= n && !memcmp(line, word, n);
}

/* ERROR, CLIENT_ERROR <text>, SERVER_ERROR <text>. */
static bool is_error_line(const char *line, size_t len)
{
	return (len == 5 && !memcmp(line, "ERROR", 5)) ||
	       starts(line, len, "CLIENT_ERROR ") ||
	       starts(line, len, "SERVER_ERROR ");
}

/* One space-separated token of line[*pos..len); advances *pos past it
 * and the space after it. Returns its length (0: none). */
static size_t token(const char *line, size_t len, size_t *pos,
		    const char **tok)
{
	size_t s = *pos, e = s;

	while (e < len && line[e] != ' ')
		e++;
	*tok = line + s;
	*pos = e < len ? e + 1 : e;
	return e - s;
}

/* An unsigned decimal of at most 20 digits that fits in max. */
static bool number(const char *t, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(t[i] - '0');

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* "VALUE <key> <flags> <bytes> [<cas>]" for the key asked for. */
static long value_line(struct mc_reader *r, const struct mc_expect *ex,
		       const char *line, size_t len)
{
	size_t pos = 6, n;
	const char *t;
	uint64_t v;

	if (r->hit)
		return garbage(r, ex, line, len, "a second VALUE in the reply");
	n = token(line, len, &pos, &t);
	if (n != ex->key_len || memcmp(t, ex->key, n))
		return garbage(r, ex, line, len, "a VALUE for another key");
	n = token(line, len, &pos, &t);
	if (!number(t, n, UINT32_MAX, &v))
		return garbage(r, ex, line, len, "bad flags in VALUE");
	n = token(line, len, &pos, &t);
	if (!number(t, n, UINT32_MAX, &v))
		return garbage(r, ex, line, len, "bad length in VALUE");
	if (v < ex->vmin || v > ex->vmax)
		return garbage(r, ex, line, len, "a value of a size never set");
	r->data_left = (uint32_t)v;
	if (pos < len) {
		uint64_t cas;

		n = token(line, len, &pos, &t);
		if (!number(t, n, UINT64_MAX, &cas) || pos < len)
			return garbage(r, ex, line, len, "bad VALUE line");
	}
	r->hit = true;
	r->state = MC_RD_DATA;
	return 0;
}

/* One complete line (CRLF stripped). Returns 0, or -EPROTO. */
static long reply_line(struct mc_reader *r, const struct mc_expect *ex,
		       const char *line, size_t len, bool *done,
		       enum mc_status *st)
{
	if (r->state == MC_RD_DATA_END) {
		if (len)
			return garbage(r, ex, line, len,
				       "a value longer than announced");
		r->state = MC_RD_LINE;
		return 0;
	}
	if (is_error_line(line, len) && ex->op != MC_VERSION) {
		quote(r->why, sizeof(r->why), line, len);
		*st = MC_FAILED;
		*done = true;
		return 0;
	}
	switch (ex->op) {
	case MC_GET:
		if (len == 3 && !memcmp(line, "END", 3)) {
			*st = r->hit ? MC_HIT : MC_MISS;
			*done = true;
			return 0;
		}
		if (starts(line, len, "VALUE "))
			return value_line(r, ex, line, len);
		break;
	case MC_SET:
		if (len == 6 && !memcmp(line, "STORED", 6)) {
			*st = MC_STORED;
			*done = true;
			return 0;
		}
		if (len == 10 && !memcmp(line, "NOT_STORED", 10)) {
			*st = MC_NOT_STORED;
			*done = true;
			return 0;
		}
		break;
	case MC_VERSION:
		if (starts(line, len, "VERSION ")) {
			*st = MC_VERSION_OK;
			*done = true;
			return 0;
		}
		break;
	}
	return garbage(r, ex, line, len, "an unexpected reply");
}

long mc_reader_feed(struct mc_reader *r, const struct mc_expect *ex,
		    const char *buf, size_t len, bool *done,
		    enum mc_status *st)
{
	size_t pos = 0;

	*done = false;
	while (pos < len && !*done) {
		const char *nl;
		size_t n;
		long err;

		if (r->state == MC_RD_DATA) {
			n = len - pos < r->data_left ? len - pos : r->data_left;
			pos += n;
			r->data_left -= (uint32_t)n;
			if (!r->data_left)
				r->state = MC_RD_DATA_END;
			continue;
		}
		nl = memchr(buf + pos, '\n', len - pos);
		if (!nl) {
			if (len - pos >= MC_LINE_MAX)
				return garbage(r, ex, buf + pos, len - pos,
					       "a reply line too long");
			break;		/* the caller keeps the partial line */
		}
		n = (size_t)(nl - (buf + pos));
		if (n + 1 > MC_LINE_MAX)
			return garbage(r, ex, buf + pos, n,
				       "a reply line too long");
		if (n == 0 || buf[pos + n - 1] != '\r')
			return garbage(r, ex, buf + pos, n,
				       "a line not ending in CRLF");
		err = reply_line(r, ex, buf + pos, n - 1, done, st);
		if (err)
			return err;
		pos += n + 1;
	}
	return (long)pos;
}
