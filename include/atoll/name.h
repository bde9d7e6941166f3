/* name.h - the name service: hierarchical names for mailboxes, fleet
 * member resolution, and a client-side name cache (fos section 4.7.1).
 *
 * Owns: the client handle (its connection to the node's name server, its
 * cache, its registrations), and, for name_server_start(), an in-process
 * server. The server daemon is `atoll-names` (src/msg/named.c); the wire
 * protocol is in docs/names-protocol.md.
 *
 * Names. A name is a path: "/" then segments separated by "/", each 1 ..
 * NAME_SEG_MAX bytes of [A-Za-z0-9._-], not "." or "..", at most
 * NAME_MAX_DEPTH segments and NAME_MAX_LEN bytes in all. A *service*
 * name (/svc/kv) must not end in an all-digit segment; a *member* name is
 * a service name plus a decimal member index (/svc/kv/3). Every
 * registration adds a member to a service: a plain name is a service with
 * one member, a fleet is a service with many.
 *
 * Resolution. Resolving a service name picks one member by the service's
 * policy, which a member sets (name_set_policy):
 *   NAME_POLICY_RR     round-robin over the members, the default;
 *   NAME_POLICY_HASH   by a key the client gives: rendezvous hashing of
 *                      the key over the member indices, so a key stays on
 *                      its member while membership is unchanged, and a
 *                      member's departure moves only its own keys;
 *   NAME_POLICY_LEAST  the member with the least load, as members report
 *                      it (name_set_load); ties go round-robin.
 * Resolving a member name returns that member. The answer carries the
 * member's name ("/svc/kv/3"), its mailbox address and, if the
 * registration allows it, the mailbox capability.
 *
 * Who gets the capability: by default (flags 0) the resolvers running
 * under the registrant's uid (and root), the server knowing each client's
 * uid from SO_PEERCRED; NAME_F_PUBLIC: everyone; NAME_F_NOCAP: nobody
 * (the capability is handed out another way). Others get the address
 * only (name_entry.has_cap false).
 *
 * Registrations belong to the connection that made them (or last moved
 * them): when it closes - the member process exits or dies - the server
 * drops them. Unregister, move, policy and load requests must present the
 * registration's lease, a random token the server returned at
 * registration (a forged or stale lease gets -EACCES).
 *
 * The cache. name_resolve() remembers answers (up to
 * name_client_opts.cache_slots of them, per (name, key)) and returns a
 * remembered one without asking the server, as fos does, so the
 * messages of one client or transaction keep going to the same member.
 * Invalidation: the server keeps a table of generation counters, one per
 * bucket of service names, in a memfd that every client maps read-only;
 * any change of a service's membership (register, unregister, move, a
 * member's death) or policy bumps its bucket, and a cached answer is used
 * only while its bucket still has the generation it was resolved at (one
 * load; a bump may also invalidate other services of the bucket). A
 * client that learns a member is gone (a send failed with -EPIPE) calls
 * name_invalidate(). NAME_RESOLVE_FRESH asks the server regardless.
 *
 * One name server per node for now (the replicated fleet comes later).
 * If it restarts, registrations are lost and cached answers are not
 * invalidated; a client's next request to the server fails with -EPIPE
 * and the client must be reopened.
 *
 * Thread safety and context: a client handle may be shared by threads
 * and uthreads; requests on one handle are serialised (the server answers
 * in order); cache hits take only a short spinlock and never wait for a
 * request in flight. Every call may block on the
 * server socket (only the calling uthread blocks: socket I/O goes through
 * sys.h). Uthread or plain thread, not vcore context.
 *
 * Errors: negative errno, never errno itself.
 *   -EINVAL        malformed name, key or argument
 *   -ENAMETOOLONG  a name or a segment too long, too deep
 *   -ENOENT        no such service or member
 *   -EACCES        wrong lease
 *   -EEXIST        member index taken (explicit index in a move)
 *   -ENOSPC        a server limit (services, members, registrations)
 *   -EPIPE         the server connection is gone
 *   -ECONNREFUSED, -ENOENT (open)  no server listening at the path
 *   -EPROTO        the server's answer could not be parsed
 */
#ifndef ATOLL_NAME_H
#define ATOLL_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atoll/mbox.h>

#define NAME_MAX_LEN 255u       /* bytes, without the NUL */
#define NAME_MAX_DEPTH 16u      /* segments */
#define NAME_SEG_MAX 64u        /* bytes per segment */
#define NAME_KEY_MAX 128u       /* bytes of a hash key */

#define NAME_SOCKET_ENV "ATOLL_NAMES_SOCKET"
#define NAME_SOCKET_DEFAULT "/run/atoll/names.sock"

enum name_policy {
	NAME_POLICY_RR = 0,
	NAME_POLICY_HASH = 1,
	NAME_POLICY_LEAST = 2,
};

/* name_register flags */
#define NAME_F_PUBLIC 0x1u      /* give the capability to every resolver */
#define NAME_F_NOCAP 0x2u       /* never give it */

/* name_resolve flags */
#define NAME_RESOLVE_FRESH 0x1u /* ask the server even on a cache hit */

/* Check a name. Returns 0 for a service name, 1 for a member name (and
 * *index, if index is not NULL, gets its index), -EINVAL or
 * -ENAMETOOLONG. Any context. */
int name_check(const char *name, uint32_t *index);

/* ---- client ------------------------------------------------------------- */

struct name_client;

struct name_client_opts {
	unsigned cache_slots;   /* answers remembered; 0: 256; rounded up to
				 * a power of two */
	bool no_cache;          /* every resolve asks the server */
};

/* A registration, as returned by name_register. Plain data. */
struct name_reg {
	char member[NAME_MAX_LEN + 1];  /* "/svc/kv/3" */
	uint32_t index;                 /* 3 */
	struct mbox_cap lease;          /* proves ownership */
};

/* A resolution. */
struct name_entry {
	char member[NAME_MAX_LEN + 1];  /* the member chosen */
	uint32_t index;
	struct mbox_addr addr;
	struct mbox_cap cap;            /* valid when has_cap */
	bool has_cap;
	uint64_t gen;                   /* the service's bucket generation */
};

struct name_cache_stats {
	uint64_t hits;
	uint64_t misses;         /* asked the server */
	uint64_t stale;          /* entries found invalidated by a bump */
	uint64_t invalidated;    /* dropped by name_invalidate */
};

/* Connect to the name server at path (NULL: $ATOLL_NAMES_SOCKET, else
 * NAME_SOCKET_DEFAULT) and map its generation table. opts may be NULL.
 * Returns 0 and *out, or -errno. */
int name_client_open(const char *path, const struct name_client_opts *opts,
		     struct name_client **out);

/* Close the connection; the server drops every registration it owns. */
void name_client_close(struct name_client *nc);

/* Register the mailbox at addr (capability cap; NULL with NAME_F_NOCAP)
 * as a new member of service, which is created if needed. flags: NAME_F_*.
 * On success *reg gets the member's name, index and lease. */
int name_register(struct name_client *nc, const char *service,
		  const struct mbox_addr *addr, const struct mbox_cap *cap,
		  unsigned flags, struct name_reg *reg);

/* The same for a mailbox of this process (its address and current
 * capability). */
int name_register_mbox(struct name_client *nc, const char *service,
		       const struct mbox *mb, unsigned flags,
		       struct name_reg *reg);

/* Remove the member; the service goes when its last member does. */
int name_unregister(struct name_client *nc, const struct name_reg *reg);

/* The member moved: point its name at a new address (and capability, if
 * cap is not NULL). The registration then belongs to this client's
 * connection. Bumps the service's generation. */
int name_move(struct name_client *nc, const struct name_reg *reg,
	      const struct mbox_addr *addr, const struct mbox_cap *cap);

/* Set the service's policy; reg is any member's registration. */
int name_set_policy(struct name_client *nc, const struct name_reg *reg,
		    enum name_policy policy);

/* Report the member's load (for NAME_POLICY_LEAST; any unit, lower is
 * less loaded). Does not bump the generation. */
int name_set_load(struct name_client *nc, const struct name_reg *reg,
		  uint32_t load);

/* Resolve name (service or member) to one member. key/keylen: the hash
 * key (NAME_POLICY_HASH; ignored by the others; keylen <= NAME_KEY_MAX,
 * key may be NULL when keylen is 0). flags: NAME_RESOLVE_*. */
int name_resolve(struct name_client *nc, const char *name, const void *key,
		 size_t keylen, unsigned flags, struct name_entry *out);

/* Forget cached answers for name: a member name drops every answer that
 * chose that member; a service name drops every answer for the service. */
void name_invalidate(struct name_client *nc, const char *name);

void name_cache_stats(const struct name_client *nc,
		      struct name_cache_stats *st);

/* ---- server ------------------------------------------------------------- */

struct name_server;

/* Start a name server in this process: a thread serving the UNIX socket
 * at path (created; an existing socket file there is replaced, any other
 * file is an error). The in-process mode for tests and embedding; the
 * atoll-names daemon runs the same code. Returns 0 and *out, or -errno. */
int name_server_start(const char *path, struct name_server **out);

/* Stop the server thread, close every connection, remove the socket. */
void name_server_stop(struct name_server *srv);

/* Serve path in the calling thread until *stop becomes non-zero (checked
 * at least every 100 ms; a signal handler may set it). The daemon's main
 * loop. Returns 0, or -errno if the socket could not be set up. */
int name_server_run(const char *path, const volatile int *stop);

#endif /* ATOLL_NAME_H */
