/* req.c - validating the fields of a control request, and refusing it
 * with a code and a sentence (struct req_ctx, internal.h). */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int req_fail(struct req_ctx *c, const char *code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int req_check_keys(const struct json *obj, const char *const *allowed,
		   const char *where, struct req_ctx *c)
{
	for (size_t i = 0; i < obj->len; i++) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(obj->keys[i], *a);
		if (!ok)
			return req_fail(c, PROTO_E_BADREQ,
				    "unknown field \"%.40s\" in %s",
				    obj->keys[i], where);
	}
	return 0;
}

int req_get_int(const struct json *req, const char *key, int64_t lo,
		int64_t hi, struct req_ctx *c, int64_t *out, bool *present)
{
	const struct json *v = json_get(req, key);

	*present = false;
	if (!v)
		return 0;
	if (v->type != JSON_NUM || !v->is_int)
		return req_fail(c, v->type == JSON_NUM ? PROTO_E_RANGE : PROTO_E_BADREQ,
			    "the field \"%s\" must be an integer", key);
	if (v->i < lo || v->i > hi)
		return req_fail(c, PROTO_E_RANGE,
			    "the field \"%s\" is %lld; it must be between %lld and %lld",
			    key, (long long)v->i, (long long)lo, (long long)hi);
	*out = v->i;
	*present = true;
	return 0;
}
