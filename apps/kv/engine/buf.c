/* buf.c - growable output buffers and decimal formatting for responses. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int kv_buf_reserve(struct kv_buf *b, size_t more)
{
	size_t need, cap;
	char *p;

	if (likely(b->cap - b->len >= more))
		return 0;
	if (more > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	need = b->len + more;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void kv_buf_free(struct kv_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

int kv_buf_append(struct kv_buf *b, const void *p, size_t len)
{
	int err = kv_buf_reserve(b, len);

	if (err)
		return err;
	kv_buf_put(b, p, len);
	return 0;
}

/* Two digits at a time: responses format flags, lengths and CAS values on
 * every hit, and division is the cost. */
static const char digit_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233"
	"34353637383940414243444546474849505152535455565758596061626364656667"
	"6869707172737475767778798081828384858687888990919293949596979899";

size_t kv_u64_to_dec(char *dst, uint64_t x)
{
	char tmp[KV_U64_DIGITS];
	char *end = tmp + sizeof(tmp), *p = end;
	size_t n;

	while (x >= 100) {
		unsigned pair = (unsigned)(x % 100) * 2;

		x /= 100;
		p -= 2;
		p[0] = digit_pairs[pair];
		p[1] = digit_pairs[pair + 1];
	}
	if (x >= 10) {
		p -= 2;
		p[0] = digit_pairs[x * 2];
		p[1] = digit_pairs[x * 2 + 1];
	} else {
		*--p = (char)('0' + x);
	}
	n = (size_t)(end - p);
	memcpy(dst, p, n);
	return n;
}
