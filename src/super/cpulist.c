/* cpulist.c - cpu lists and sizes (see cpulist.h). */
#include "cpulist.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int parse_num(const char **pp, unsigned *out)
{
	const char *p = *pp;
	unsigned long v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v >= CPU_SETSIZE)
			return -ERANGE;
		p++;
	}
	*pp = p;
	*out = (unsigned)v;
	return 0;
}

int cpulist_parse(const char *s, cpu_set_t *out)
{
	const char *p = s;
	cpu_set_t set;

	CPU_ZERO(&set);
	if (*p == '\0' || !strcmp(p, "\n")) {
		*out = set;
		return 0;
	}
	for (;;) {
		unsigned lo, hi;
		int r = parse_num(&p, &lo);

		if (r)
			return r;
		hi = lo;
		if (*p == '-') {
			p++;
			r = parse_num(&p, &hi);
			if (r)
				return r;
			if (hi < lo)
				return -EINVAL;
		}
		for (unsigned c = lo; c <= hi; c++)
			CPU_SET(c, &set);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\n' && p[1] == '\0')
			break;
		if (*p != '\0')
			return -EINVAL;
		break;
	}
	*out = set;
	return 0;
}

int cpulist_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t n = 0;
	bool first = true;

	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		int e = c;
		int w;

		if (!CPU_ISSET(c, set))
			continue;
		while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
			e++;
		if (e == c)
			w = snprintf(buf + n, len - n, "%s%d", first ? "" : ",",
				     c);
		else
			w = snprintf(buf + n, len - n, "%s%d-%d",
				     first ? "" : ",", c, e);
		if (w < 0 || (size_t)w >= len - n) {
			buf[0] = '\0';
			return -ENOSPC;
		}
		n += (size_t)w;
		first = false;
		c = e;
	}
	return 0;
}

int size_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	switch (*p) {
	case '\0': break;
	case 'b': case 'B': p++; break;
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	default: return -EINVAL;
	}
	if (mult > 1 && (!strcmp(p, "iB") || !strcmp(p, "B")))
		p += strlen(p);
	if (*p != '\0')
		return -EINVAL;
	if (v && mult > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

void size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char suf[] = "KMGT";

	for (int i = 3; i >= 0; i--) {
		uint64_t unit = 1ull << (10 * (i + 1));

		if (bytes && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(bytes / unit), suf[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}
