/* net.h - a TCP server on the runtime: one uthread per connection.
 *
 * What every network service built on Atoll needs and should not rewrite:
 * a listener on an IPv4 or IPv6 address, an accept loop on a uthread that
 * starts one detached uthread per connection, a connection limit, back-off
 * when descriptors run out, and a clean stop on SIGINT/SIGTERM that shuts
 * every open connection down and waits for its uthread to end.
 *
 * Owns: the listening socket and the set of open connections (a list
 * guarded by a spin_pdr lock, held only to add, remove or shut down).
 * Connection descriptors belong to the server: conn() must not close its
 * fd; the server closes it when conn() returns.
 *
 * Signals: net_block_stop_signals() must run in main() before rt_main(),
 * so every vcore thread inherits the mask and SIGINT/SIGTERM arrive only
 * through the server's signalfd.
 *
 * Errors: negative errno; the server prints one line per unusual event,
 * prefixed with the configured name.
 */
#ifndef ATOLL_NET_H
#define ATOLL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Block SIGINT and SIGTERM (and ignore SIGPIPE: a peer gone mid-send is an
 * error return) in the calling thread and every thread it starts. Call in
 * main() before rt_main(). Returns 0 or -errno. Any thread. */
int net_block_stop_signals(void);

/* Whether addr is an IPv4 or IPv6 literal net_listen() accepts. */
int net_addr_valid(const char *addr);

/* Bind and listen on addr (an IPv4 or IPv6 literal) and port (0 = any free
 * one). Returns the listening descriptor, or -errno (-EINVAL for a bad
 * address). When shown is not NULL it gets "ADDR:PORT" ("[ADDR]:PORT" for
 * IPv6) with the port actually bound. Any thread. */
int net_listen(const char *addr, int port, char *shown, size_t shown_len);

/* Counters a service may read at any time (relaxed atomic loads). */
struct net_counters {
	uint64_t live;      /* connections open now */
	uint64_t accepted;  /* connections accepted since the start */
	uint64_t refused;   /* closed at once: over max_conns or no memory */
};

struct net_serve_config {
	int lfd;                 /* from net_listen(); the server closes it */
	/* Serves one connection, in its own detached uthread; returns when
	 * the peer is done or the connection failed. Must not close fd. */
	void (*conn)(int fd, void *arg);
	void *arg;
	size_t stack_size;       /* per connection uthread; 0 = default */
	unsigned max_conns;      /* 0 = no limit */
	const char *name;        /* prefix of its messages, e.g. "atoll-kv" */
	struct net_counters *counters;  /* may be NULL */
};

/* Accept connections until SIGINT or SIGTERM arrives, then stop accepting,
 * shut every open connection down (their reads fail at once), wait for
 * their uthreads to end, close the listener and return 0. Returns -errno
 * when the loop could not start or accept failed for good. Uthread
 * context. */
int net_serve(const struct net_serve_config *cfg);

/* Send all len bytes of buf on fd (a uthread blocks; its vcore does not).
 * Returns 0 or -errno. Uthread context or any thread outside the runtime. */
int net_send_all(int fd, const void *buf, size_t len);

#endif /* ATOLL_NET_H */
