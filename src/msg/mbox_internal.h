/* mbox_internal.h - private seams between mbox.c (mailboxes, LOCAL and
 * NODE transports) and proxy.c (the TCP transport and the proxy).
 */
#ifndef ATOLL_MSG_MBOX_INTERNAL_H
#define ATOLL_MSG_MBOX_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <atoll/mbox.h>

struct mbox_tcp;

/* The value of hex digit c (either case), or -1. */
static inline int msg__hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode n bytes from the 2n hex digits at s into out. 0, or -EINVAL at
 * the first non-hex character (out is then partly written). */
static inline int msg__hex_decode(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = msg__hexval(s[2 * i]);
		int lo = hi < 0 ? -1 : msg__hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* proxy.c: the sender side of the TCP transport. */
int mbox__tcp_open(const struct mbox_addr *addr, const struct mbox_cap *cap,
		   struct mbox_tcp **out, uint32_t *sender_id);
int mbox__tcp_send(struct mbox_tcp *t, uint16_t type, const void *data,
		   size_t len, unsigned flags);
int mbox__tcp_check(struct mbox_tcp *t);
void mbox__tcp_close(struct mbox_tcp *t);

/* mbox.c: make host:port this process's proxy endpoint unless one is set
 * already. */
void mbox__set_proxy_if_unset(const char *host, uint16_t port);

/* mbox.c: wait a little longer (uthread: yield, then sleep; plain thread:
 * sched_yield, then nanosleep), growing from a yield to 100 us. */
struct mbox_backoff {
	unsigned round;
};
void mbox__backoff(struct mbox_backoff *b);

#endif /* ATOLL_MSG_MBOX_INTERNAL_H */
