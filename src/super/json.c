/* json.c - strict, bounded JSON parser and writer (see json.h). */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_doc {
	struct json *root;
};

struct parser {
	const char *p, *end;
	int nodes;
	char *err;
	size_t errlen;
	bool failed;
};

static void perr(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->failed)
		return;
	ps->failed = true;
	va_start(ap, fmt);
	vsnprintf(ps->err, ps->errlen, fmt, ap);
	va_end(ap);
}

static void node_free(struct json *v)
{
	if (!v)
		return;
	if (v->type == JSON_ARR || v->type == JSON_OBJ) {
		for (size_t i = 0; i < v->len; i++) {
			node_free(v->kids[i]);
			if (v->keys)
				free(v->keys[i]);
		}
		free(v->kids);
		free(v->keys);
	}
	free(v->s);
	free(v);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static size_t offset(const struct parser *ps, const char *start)
{
	return (size_t)(ps->p - start);
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp, min;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Parse a string at ps->p (on the opening quote) into a fresh buffer. */
static char *parse_string(struct parser *ps, size_t *lenp, const char *start)
{
	const char *q = ps->p + 1;
	size_t cap = 0;
	char *out;
	size_t n = 0;

	/* The decoded string is never longer than its source. */
	while (q < ps->end && *q != '"') {
		if (*q == '\\')
			q++;
		q++;
	}
	if (q >= ps->end) {
		perr(ps, "unterminated string at byte %zu", offset(ps, start));
		return NULL;
	}
	cap = (size_t)(q - ps->p);
	out = malloc(cap + 1);
	if (!out) {
		perr(ps, "out of memory");
		return NULL;
	}
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;

		if (c < 0x20) {
			perr(ps, "control character in string at byte %zu",
			     offset(ps, start));
			goto fail;
		}
		if (c == '\\') {
			char e;

			if (ps->p + 1 >= ps->end)
				goto bad_escape;
			e = ps->p[1];
			ps->p += 2;
			switch (e) {
			case '"': out[n++] = '"'; break;
			case '\\': out[n++] = '\\'; break;
			case '/': out[n++] = '/'; break;
			case 'b': out[n++] = '\b'; break;
			case 'f': out[n++] = '\f'; break;
			case 'n': out[n++] = '\n'; break;
			case 'r': out[n++] = '\r'; break;
			case 't': out[n++] = '\t'; break;
			case 'u': {
				unsigned cp, lo;

				if (ps->end - ps->p < 4 || hex4(ps->p, &cp))
					goto bad_escape;
				ps->p += 4;
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (ps->end - ps->p < 6 || ps->p[0] != '\\' ||
					    ps->p[1] != 'u' || hex4(ps->p + 2, &lo) ||
					    lo < 0xdc00 || lo > 0xdfff)
						goto bad_escape;
					ps->p += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					goto bad_escape;
				}
				if (cp == 0) {
					perr(ps, "\\u0000 in string at byte %zu",
					     offset(ps, start));
					goto fail;
				}
				n += put_utf8(out + n, cp);
				break;
			}
			default:
				goto bad_escape;
			}
			continue;
		}
		{
			size_t l = utf8_len((const unsigned char *)ps->p,
					    (size_t)(ps->end - ps->p));

			if (!l) {
				perr(ps, "invalid UTF-8 in string at byte %zu",
				     offset(ps, start));
				goto fail;
			}
			memcpy(out + n, ps->p, l);
			n += l;
			ps->p += l;
		}
	}
	if (ps->p >= ps->end) {
		perr(ps, "unterminated string at byte %zu", offset(ps, start));
		goto fail;
	}
	ps->p++; /* closing quote */
	out[n] = '\0';
	*lenp = n;
	return out;
bad_escape:
	perr(ps, "invalid escape in string at byte %zu", offset(ps, start));
fail:
	free(out);
	return NULL;
}

static struct json *new_node(struct parser *ps, enum json_type t)
{
	struct json *v;

	if (++ps->nodes > JSON_NODES_MAX) {
		perr(ps, "too many values (more than %d)", JSON_NODES_MAX);
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		perr(ps, "out of memory");
		return NULL;
	}
	v->type = t;
	return v;
}

static int push_kid(struct parser *ps, struct json *v, struct json *kid,
		    char *key, size_t *cap)
{
	if (v->len == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct json **k = realloc(v->kids, nc * sizeof(*k));

		if (!k)
			goto oom;
		v->kids = k;
		if (v->type == JSON_OBJ) {
			char **ks = realloc(v->keys, nc * sizeof(*ks));

			if (!ks)
				goto oom;
			v->keys = ks;
		}
		*cap = nc;
	}
	v->kids[v->len] = kid;
	if (v->type == JSON_OBJ)
		v->keys[v->len] = key;
	v->len++;
	return 0;
oom:
	perr(ps, "out of memory");
	return -ENOMEM;
}

static struct json *parse_value(struct parser *ps, int depth,
				const char *start);

static struct json *parse_number(struct parser *ps, const char *start)
{
	const char *b = ps->p, *q = ps->p;
	bool integral = true;
	char tmp[64];
	struct json *v;

	if (q < ps->end && *q == '-')
		q++;
	if (q >= ps->end || *q < '0' || *q > '9')
		goto bad;
	if (*q == '0') {
		q++;
	} else {
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && *q == '.') {
		integral = false;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9')
			goto bad;
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		integral = false;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9')
			goto bad;
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if ((size_t)(q - b) >= sizeof(tmp)) {
		perr(ps, "number too long at byte %zu", offset(ps, start));
		return NULL;
	}
	memcpy(tmp, b, (size_t)(q - b));
	tmp[q - b] = '\0';
	v = new_node(ps, JSON_NUM);
	if (!v)
		return NULL;
	v->d = strtod(tmp, NULL);
	if (integral) {
		char *endp;

		errno = 0;
		long long ll = strtoll(tmp, &endp, 10);
		if (errno == 0 && *endp == '\0') {
			v->is_int = true;
			v->i = ll;
		}
	}
	ps->p = q;
	return v;
bad:
	perr(ps, "malformed number at byte %zu", offset(ps, start));
	return NULL;
}

static bool match_lit(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n))
		return false;
	ps->p += n;
	return true;
}

static struct json *parse_container(struct parser *ps, int depth,
				    const char *start, bool obj)
{
	struct json *v = new_node(ps, obj ? JSON_OBJ : JSON_ARR);
	size_t cap = 0;
	char close = obj ? '}' : ']';

	if (!v)
		return NULL;
	if (depth >= JSON_DEPTH_MAX) {
		perr(ps, "nesting deeper than %d at byte %zu", JSON_DEPTH_MAX,
		     offset(ps, start));
		goto fail;
	}
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct json *kid;

		skip_ws(ps);
		if (obj) {
			size_t klen;

			if (ps->p >= ps->end || *ps->p != '"') {
				perr(ps, "expected a string key at byte %zu",
				     offset(ps, start));
				goto fail;
			}
			key = parse_string(ps, &klen, start);
			if (!key)
				goto fail;
			for (size_t i = 0; i < v->len; i++) {
				if (!strcmp(v->keys[i], key)) {
					perr(ps, "duplicate key \"%.40s\"", key);
					free(key);
					goto fail;
				}
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				perr(ps, "expected ':' at byte %zu",
				     offset(ps, start));
				free(key);
				goto fail;
			}
			ps->p++;
		}
		kid = parse_value(ps, depth + 1, start);
		if (!kid) {
			free(key);
			goto fail;
		}
		if (push_kid(ps, v, kid, key, &cap)) {
			node_free(kid);
			free(key);
			goto fail;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return v;
		}
		perr(ps, "expected ',' or '%c' at byte %zu", close,
		     offset(ps, start));
		goto fail;
	}
fail:
	node_free(v);
	return NULL;
}

static struct json *parse_value(struct parser *ps, int depth,
				const char *start)
{
	struct json *v;

	skip_ws(ps);
	if (ps->p >= ps->end) {
		perr(ps, "unexpected end of input");
		return NULL;
	}
	switch (*ps->p) {
	case '{':
		return parse_container(ps, depth, start, true);
	case '[':
		return parse_container(ps, depth, start, false);
	case '"':
		v = new_node(ps, JSON_STR);
		if (!v)
			return NULL;
		v->s = parse_string(ps, &v->len, start);
		if (!v->s) {
			free(v);
			return NULL;
		}
		return v;
	case 't':
	case 'f':
	case 'n':
		if (match_lit(ps, "true") || match_lit(ps, "false")) {
			v = new_node(ps, JSON_BOOL);
			if (v)
				v->b = ps->p[-1] == 'e' && ps->p[-2] == 'u';
			return v;
		}
		if (match_lit(ps, "null"))
			return new_node(ps, JSON_NULL);
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, start);
		break;
	}
	perr(ps, "unexpected character at byte %zu", offset(ps, start));
	return NULL;
}

struct json_doc *json_parse(const char *text, size_t len, char *err,
			    size_t errlen)
{
	struct parser ps = { .p = text, .end = text + len, .err = err,
			     .errlen = errlen };
	struct json_doc *doc;
	struct json *root;

	if (errlen)
		err[0] = '\0';
	root = parse_value(&ps, 0, text);
	if (!root)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		perr(&ps, "trailing characters at byte %zu",
		     (size_t)(ps.p - text));
		node_free(root);
		return NULL;
	}
	doc = malloc(sizeof(*doc));
	if (!doc) {
		perr(&ps, "out of memory");
		node_free(root);
		return NULL;
	}
	doc->root = root;
	return doc;
}

const struct json *json_root(const struct json_doc *doc)
{
	return doc->root;
}

void json_free(struct json_doc *doc)
{
	if (!doc)
		return;
	node_free(doc->root);
	free(doc);
}

const struct json *json_get(const struct json *o, const char *key)
{
	if (!o || o->type != JSON_OBJ)
		return NULL;
	for (size_t i = 0; i < o->len; i++)
		if (!strcmp(o->keys[i], key))
			return o->kids[i];
	return NULL;
}

/* ---- writer ---- */

static void jw_raw(struct json_w *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t nc = w->cap ? w->cap : 256;
		char *b;

		while (nc < w->len + n + 1)
			nc *= 2;
		b = realloc(w->buf, nc);
		if (!b) {
			w->oom = true;
			return;
		}
		w->buf = b;
		w->cap = nc;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

void jw_init(struct json_w *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = true;
}

void jw_free(struct json_w *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Comma before a value unless it is the first of its container or follows
 * a key. */
static void jw_sep(struct json_w *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		jw_raw(w, ",", 1);
	w->first[w->depth] = false;
}

static void jw_open(struct json_w *w, char c)
{
	jw_sep(w);
	jw_raw(w, &c, 1);
	if (w->depth >= JSON_DEPTH_MAX) {
		w->oom = true; /* a writer bug; reported as failure */
		return;
	}
	w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct json_w *w, char c)
{
	jw_raw(w, &c, 1);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj(struct json_w *w) { jw_open(w, '{'); }
void jw_obj_end(struct json_w *w) { jw_close(w, '}'); }
void jw_arr(struct json_w *w) { jw_open(w, '['); }
void jw_arr_end(struct json_w *w) { jw_close(w, ']'); }

static void jw_quoted(struct json_w *w, const char *s)
{
	jw_raw(w, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			jw_raw(w, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			jw_raw(w, esc, 6);
		} else {
			jw_raw(w, (const char *)p, 1);
		}
	}
	jw_raw(w, "\"", 1);
}

void jw_key(struct json_w *w, const char *key)
{
	jw_sep(w);
	jw_quoted(w, key);
	jw_raw(w, ":", 1);
	w->after_key = true;
}

void jw_str(struct json_w *w, const char *s)
{
	jw_sep(w);
	jw_quoted(w, s ? s : "");
}

void jw_int(struct json_w *w, int64_t v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);

	jw_sep(w);
	jw_raw(w, b, (size_t)n);
}

void jw_double(struct json_w *w, double v)
{
	char b[40];
	int n;

	if (!isfinite(v)) {
		jw_null(w);
		return;
	}
	n = snprintf(b, sizeof(b), "%.15g", v);
	jw_sep(w);
	jw_raw(w, b, (size_t)n);
}

void jw_bool(struct json_w *w, bool v)
{
	jw_sep(w);
	jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct json_w *w)
{
	jw_sep(w);
	jw_raw(w, "null", 4);
}

void jw_kstr(struct json_w *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kint(struct json_w *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_kbool(struct json_w *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}

void jw_kdouble(struct json_w *w, const char *key, double v)
{
	jw_key(w, key);
	jw_double(w, v);
}

void jw_json(struct json_w *w, const struct json *v)
{
	switch (v->type) {
	case JSON_NULL:
		jw_null(w);
		break;
	case JSON_BOOL:
		jw_bool(w, v->b);
		break;
	case JSON_NUM:
		if (v->is_int)
			jw_int(w, v->i);
		else
			jw_double(w, v->d);
		break;
	case JSON_STR:
		jw_str(w, v->s);
		break;
	case JSON_ARR:
		jw_arr(w);
		for (size_t i = 0; i < v->len; i++)
			jw_json(w, v->kids[i]);
		jw_arr_end(w);
		break;
	case JSON_OBJ:
		jw_obj(w);
		for (size_t i = 0; i < v->len; i++) {
			jw_key(w, v->keys[i]);
			jw_json(w, v->kids[i]);
		}
		jw_obj_end(w);
		break;
	}
}

void jw_members(struct json_w *w, const char *obj, size_t len)
{
	if (len <= 2)
		return; /* "{}" */
	jw_sep(w);
	jw_raw(w, obj + 1, len - 2);
}
