/* num.c - numbers on the command line, read exactly as memcached reads them.
 *
 * memcached parses with strtoul/strtol/strtoull and then checks the byte
 * after the digits (safe_strtoul etc. in its util.c). Clients depend on
 * the quirks that follow, and answers must match byte for byte, so they
 * are kept: leading whitespace and a sign are accepted, the digits may be
 * followed by whitespace and anything after it, "-0" is 0, a negated
 * unsigned number that wraps to a small positive one is accepted, and the
 * 32-bit fields keep only the low 32 bits of what strtol(l) returned.
 * Unlike strto*, these stop at len, so they never read past a token.
 */
#include "internal.h"

static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

struct strto {
	uint64_t mag;   /* magnitude of the digits */
	bool neg;
	bool range;     /* magnitude did not fit 64 bits */
};

/* strto*'s scan of p[0..len): whitespace, sign, digits. Returns false if
 * there are no digits or what follows them is neither the end, whitespace
 * nor a NUL (memcached's endptr check). */
static bool strto_scan(const char *p, size_t len, struct strto *r)
{
	size_t i = 0, digits_at;

	r->mag = 0;
	r->neg = false;
	r->range = false;
	while (i < len && is_space(p[i]))
		i++;
	if (i < len && (p[i] == '+' || p[i] == '-'))
		r->neg = p[i++] == '-';
	digits_at = i;
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (r->mag > (UINT64_MAX - d) / 10)
			r->range = true;
		r->mag = r->mag * 10 + d;
	}
	if (i == digits_at)
		return false;
	/* strto* also stop at a NUL, which memcached accepts as the end */
	return i == len || is_space(p[i]) || p[i] == '\0';
}

bool kv_parse_u64(const char *p, size_t len, uint64_t *out)
{
	struct strto r;
	uint64_t v;

	if (!strto_scan(p, len, &r) || r.range)
		return false;
	v = r.neg ? -r.mag : r.mag;
	/* strtoull negates; memcached refuses what then looks negative */
	if (r.neg && (int64_t)v < 0)
		return false;
	*out = v;
	return true;
}

bool kv_parse_u32(const char *p, size_t len, uint32_t *out)
{
	uint64_t v;

	if (!kv_parse_u64(p, len, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

bool kv_parse_i32(const char *p, size_t len, int32_t *out)
{
	struct strto r;
	uint64_t limit;

	if (!strto_scan(p, len, &r))
		return false;
	limit = r.neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (r.range || r.mag > limit)
		return false;
	*out = (int32_t)(uint32_t)(r.neg ? -r.mag : r.mag);
	return true;
}
