/* chan_open.c - the RFcom rendezvous: opening a channel to another cell
 * over a UNIX socket, passing the region memfd and the doorbell eventfds
 * with SCM_RIGHTS (include/atoll/chan.h, "Rendezvous").
 *
 * Design note. The opener builds the whole region and its doorbells, so
 * the acceptor trusts nothing it receives: the request must be exactly one
 * datagram of the expected size with NUL-terminated names, carry exactly
 * CHAN_OPEN_NFDS descriptors (a memfd sealed against shrinking and
 * growing, of the announced size, then four eventfds), and the region's
 * header must equal the layout the acceptor computes itself. Every
 * refusal is answered with a sentence and logged on both sides.
 *
 * Both sides then ask the supervisor hook (chan__supervisor_approve,
 * below): with atolld running it asks "chan.check" whether both cells
 * allow the channel. Without atolld ($ATOLL_SOCKET unset or naming
 * nothing) it says so once and lets the open through: the rendezvous
 * socket's file permissions are then the only guard.
 *
 * Blocking: the handshake uses plain blocking calls with
 * CHAN_OPEN_TIMEOUT_MS socket timeouts. From a uthread it runs on an
 * offload thread (sys_offload), so the vcore keeps running uthreads;
 * waiting for a connection (chan_accept) goes through sys_accept.
 *
 * The connection stays open after the handshake as the liveness link:
 * when a process dies the kernel closes its end and the survivor sees end
 * of file (chan.c, chan__check_live).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <atoll/chan.h>
#include <atoll/log.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "internal.h"

struct chan_listener {
	int fd;
	char name[CHAN_NAME_MAX + 1];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

enum chan_role { CHAN_ROLE_OPEN, CHAN_ROLE_ACCEPT };

/* ---- names and paths ---------------------------------------------------- */

static bool name_ok(const char *s)
{
	size_t n = strnlen(s, CHAN_NAME_MAX + 1);

	if (n == 0 || n > CHAN_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

/* Our cell's name: $ATOLL_CELL if valid, else "standalone". */
static const char *my_cell(void)
{
	const char *c = getenv("ATOLL_CELL");

	return c && name_ok(c) ? c : "standalone";
}

static int chan_dir(char *buf, size_t len)
{
	const char *d = getenv("ATOLL_CHAN_DIR");
	int n;

	if (d && *d)
		n = snprintf(buf, len, "%s", d);
	else if ((d = getenv("XDG_RUNTIME_DIR")) && *d)
		n = snprintf(buf, len, "%s/atoll", d);
	else
		n = snprintf(buf, len, "/tmp/atoll-%u", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int chan_rendezvous_path(char *buf, size_t len, const char *name)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t max = sizeof(dir);
	int n, err;

	if (!buf || !name)
		return -EINVAL;
	if (strchr(name, '/')) {
		n = snprintf(buf, len, "%s", name);
	} else {
		if (!name_ok(name))
			return -EINVAL;
		err = chan_dir(dir, sizeof(dir));
		if (err)
			return err;
		n = snprintf(buf, len, "%s/%s.chan", dir, name);
	}
	if (n < 0 || (size_t)n >= len || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}

/* Create the rendezvous directory of path if it is missing; refuse one
 * that another user could write to. */
static int ensure_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (stat(dir, &sb))
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	if (sb.st_uid != getuid() && (sb.st_mode & S_IWOTH) &&
	    !(sb.st_mode & S_ISVTX)) {
		LOG_WARN("chan: rendezvous directory %s is writable by anyone "
			 "and not sticky; refusing to use it", dir);
		return -EACCES;
	}
	return 0;
}

static int make_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* ---- the supervisor hook -------------------------------------------------
 *
 * SUPERVISOR HOOK: the permission check for a channel between two cells.
 *
 * RainForest's rule is "isolate first, then share": cells share nothing
 * unless a channel is explicitly opened, and the supervisor decides
 * whether it may be. atolld exports its control socket to every cell's
 * processes in $ATOLL_SOCKET and the cell's name in $ATOLL_CELL. When
 * $ATOLL_SOCKET names a socket that exists, both cells must be known and
 * atolld asked with "chan.check" {"from":OPENER,"to":TARGET}, which is ok
 * only when each cell allows the other (atoll cell allow):
 *
 *   - chan_open, before anything: $ATOLL_CELL must be a valid name, else
 *     -EACCES (CHAN_ROLE_OPEN, to == NULL: nothing to ask yet);
 *   - the acceptor, after validating the request: it asks about the
 *     opener's cell (from the request) and its own $ATOLL_CELL, and
 *     answers a refusal with -EACCES, which chan_open returns;
 *   - chan_open again, once the reply names the acceptor's cell (rep.cell,
 *     which the rendezvous always carried): it asks too, so an opener
 *     never maps a channel its supervisor refuses even if the acceptor
 *     did not ask (an older library, a race with "cell deny"). A refusal
 *     there closes the connection: the acceptor's end then sees the peer
 *     gone, as after a crash.
 *
 * An unreachable or garbled supervisor refuses (fail closed: a supervisor
 * that cannot be asked must not be bypassed). With $ATOLL_SOCKET unset,
 * or naming nothing, there is no supervisor: we log "no supervisor:
 * opening directly" once and the only guard is the rendezvous socket's
 * file permissions.
 *
 * The cell names are what the processes claim ($ATOLL_CELL); atolld
 * checks the claims: the asker must be in one of the two cells, and the
 * peer (SO_PEERCRED on the rendezvous socket, sent as from_pid or to_pid)
 * in the cell it named.
 */
static uint32_t no_supervisor_said;

/* A sentence into reason; truncation is fine (it is a message). */
static void say(char *reason, size_t rlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *reason, size_t rlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, rlen, fmt, ap);
	va_end(ap);
}

static void set_timeouts(int sock);
static int connect_interrupted(int sock);

/* The supervisor's socket path, or NULL when there is none. */
static const char *supervisor_socket(void)
{
	const char *sock = getenv("ATOLL_SOCKET");
	struct stat sb;

	if (sock && *sock && !stat(sock, &sb))
		return sock;
	/* The exchange only elects the one caller that logs; it orders
	 * nothing and pairs with nothing. */
	if (!xchg_acq_rel(&no_supervisor_said, 1))
		LOG_INFO("chan: no supervisor: opening directly (%s%s; channel "
			 "opens are guarded only by the rendezvous socket's "
			 "file permissions)",
			 sock && *sock ? "nothing at ATOLL_SOCKET=" :
					 "ATOLL_SOCKET is not set",
			 sock && *sock ? sock : "");
	return NULL;
}

/* Copy the JSON string value of "key" in line (escapes kept as written,
 * which is enough for a sentence in a log). */
static void reply_field(const char *line, const char *key, char *out,
			size_t len)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	out[0] = '\0';
	p = strstr(line, pat);
	if (!p)
		return;
	for (p += strlen(pat); *p && *p != '"' && n + 1 < len; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
}

/* Ask atolld at path whether cell from may open a channel to cell to;
 * peer_key names peer_pid's side ("from_pid": the opener, "to_pid": the
 * acceptor), which atolld checks is in the cell it claims. */
static int supervisor_ask(const char *path, const char *from, const char *to,
			  const char *peer_key, pid_t peer_pid, char *reason,
			  size_t rlen)
{
	char line[4096], code[64], msg[CHAN_REASON_MAX];
	struct sockaddr_un sa;
	size_t got = 0;
	int sock, err, n;

	if (make_addr(&sa, path)) {
		say(reason, rlen, "the supervisor socket path %s is too "
			 "long", path);
		return -EACCES;
	}
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		say(reason, rlen, "cannot ask the supervisor: %s",
			 strerror(errno));
		return -EACCES;
	}
	set_timeouts(sock);
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) &&
	    (err = connect_interrupted(sock))) {
		say(reason, rlen, "the supervisor at %s cannot be asked "
			 "(%s), so the channel from cell '%s' to '%s' is "
			 "refused", path, strerror(-err), from, to);
		close(sock);
		return -EACCES;
	}
	/* Names passed name_ok: nothing in them needs escaping. */
	n = snprintf(line, sizeof(line),
		     "{\"op\":\"chan.check\",\"from\":\"%s\",\"to\":\"%s\","
		     "\"%s\":%d}\n", from, to, peer_key, (int)peer_pid);
	while (got < (size_t)n) {
		ssize_t w = send(sock, line + got, (size_t)n - got,
				 MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto broken;
		got += (size_t)w;
	}
	got = 0;
	while (got + 1 < sizeof(line) && !memchr(line, '\n', got)) {
		ssize_t r = recv(sock, line + got, sizeof(line) - 1 - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	line[got] = '\0';
	if (!strchr(line, '\n') && strncmp(line, "{\"ok\":", 6))
		goto broken;
	close(sock);
	if (!strncmp(line, "{\"ok\":true", 10))
		return 0;
	if (strncmp(line, "{\"ok\":false", 11)) {
		sock = -1;
		goto broken;
	}
	reply_field(line, "code", code, sizeof(code));
	reply_field(line, "message", msg, sizeof(msg));
	say(reason, rlen, "the supervisor refused the channel from cell "
		 "'%s' to '%s': %s (%s)", from, to, msg, code);
	return -EACCES;
broken:
	if (sock >= 0)
		close(sock);
	say(reason, rlen, "the supervisor at %s did not answer whether "
		 "cell '%s' may open a channel to '%s', so it is refused",
		 path, from, to);
	return -EACCES;
}

/* Returns 0 to go on, -EACCES with a sentence in reason to refuse. to is
 * NULL for the opener's first check (its own cell only). */
static int chan__supervisor_approve(enum chan_role role, const char *from,
				    const char *to, pid_t peer_pid,
				    char *reason, size_t rlen)
{
	const char *sock = supervisor_socket();
	const char *mine = getenv("ATOLL_CELL");

	if (!sock)
		return 0;
	if (!mine || !name_ok(mine)) {
		say(reason, rlen, "ATOLL_CELL is %s: with a supervisor "
			 "(ATOLL_SOCKET=%s) a process must name its cell to "
			 "%s a channel", mine ? "not a valid cell name" :
			 "not set", sock,
			 role == CHAN_ROLE_OPEN ? "open" : "accept");
		return -EACCES;
	}
	if (!to)
		return 0;
	if (peer_pid <= 0) {
		say(reason, rlen, "the peer's process cannot be identified "
			 "(SO_PEERCRED gave no pid: another pid namespace?), "
			 "so the supervisor cannot check its cell");
		return -EACCES;
	}
	return supervisor_ask(sock, from, to, role == CHAN_ROLE_OPEN ?
			      "to_pid" : "from_pid", peer_pid, reason, rlen);
}

/* ---- descriptors over the socket ------------------------------------------ */

static void set_timeouts(int sock)
{
	struct timeval tv = { CHAN_OPEN_TIMEOUT_MS / 1000,
			      (CHAN_OPEN_TIMEOUT_MS % 1000) * 1000 };

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_with_fds(int sock, const void *buf, size_t len,
			 const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CHAN_OPEN_NFDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		/* The first header is at the start of the buffer (what
		 * CMSG_FIRSTHDR says, without its NULL case). */
		cm = (struct cmsghdr *)(void *)u.buf;
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return n == (ssize_t)len ? 0 : -EPROTO;
}

/* Receive one datagram of at most len bytes and the descriptors that came
 * with it (up to max, the rest closed). Returns its length, or -ETIMEDOUT,
 * -ECONNRESET (end of file), -errno. *nfds says how many are in fds; on
 * any error they are closed. */
static ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds,
			     int max, int *nfds, bool *truncated)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (CHAN_OPEN_NFDS + 4))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	int err;

	/* A signal restarts the wait (and its timeout). */
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	err = errno;

	*nfds = 0;
	*truncated = false;
	if (n < 0)
		return err == EAGAIN || err == EWOULDBLOCK ? -ETIMEDOUT : -err;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + (size_t)i * sizeof(int),
			       sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = fd;
			else {
				close(fd);
				*truncated = true;
			}
		}
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		*truncated = true;
	if (n == 0)
		return -ECONNRESET;
	return n;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int peer_pid_of(int sock)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return 0;
	return cr.pid;
}

/* Run fn(arg) on an offload thread when called from a uthread (it makes
 * blocking calls with timeouts), directly otherwise. */
static int run_blocking(long (*fn)(void *), void *arg)
{
	return (int)(uthread_self() ? sys_offload(fn, arg) : fn(arg));
}

/* ---- listen / accept ----------------------------------------------------------- */

int chan_listen(struct chan_listener **out, const char *name)
{
	struct chan_listener *l;
	struct sockaddr_un sa;
	int err, fd = -1;

	if (!out || !name)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	err = chan_rendezvous_path(l->path, sizeof(l->path), name);
	if (err)
		goto fail;
	snprintf(l->name, sizeof(l->name), "%s",
		 strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
	err = ensure_dir(l->path);
	if (!err)
		err = make_addr(&sa, l->path);
	if (err)
		goto fail;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int probe;

		err = -errno;
		if (err != -EADDRINUSE)
			goto fail;
		/* A socket file is there: in use, or left by a dead
		 * listener (connect is refused)? */
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe < 0)
			goto fail;
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    errno != ECONNREFUSED) {
			close(probe);
			goto fail; /* -EADDRINUSE */
		}
		close(probe);
		unlink(l->path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			err = -errno;
			goto fail;
		}
	}
	if (listen(fd, 64)) {
		err = -errno;
		unlink(l->path);
		goto fail;
	}
	l->fd = fd;
	*out = l;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(l);
	return err;
}

int chan_listener_fd(const struct chan_listener *l)
{
	return l->fd;
}

void chan_listener_close(struct chan_listener *l)
{
	if (!l)
		return;
	close(l->fd);
	unlink(l->path);
	free(l);
}

struct accept_ctx {
	struct chan_listener *l;
	int sock;
	uint64_t poll_ns;
	struct chan *c;
};

static long accept_handshake(void *arg)
{
	struct accept_ctx *a = arg;
	struct chan_open_req req;
	struct chan_open_rep rep;
	int fds[CHAN_OPEN_NFDS], nfds = 0, err;
	pid_t pid = peer_pid_of(a->sock);
	bool trunc;
	ssize_t n;

	memset(&rep, 0, sizeof(rep));
	rep.magic = CHAN_OPEN_MAGIC;
	rep.version = CHAN_VERSION;
	rep.size = sizeof(rep);
	snprintf(rep.cell, sizeof(rep.cell), "%s", my_cell());
	memset(&req, 0, sizeof(req));
	set_timeouts(a->sock);

	n = recv_with_fds(a->sock, &req, sizeof(req), fds, CHAN_OPEN_NFDS,
			  &nfds, &trunc);
	if (n < 0) {
		err = (int)n;
		snprintf(rep.reason, sizeof(rep.reason), "no open request "
			 "arrived (%s)", strerror(-err));
		goto refuse;
	}
	err = -EPROTO;
	if (trunc) {
		snprintf(rep.reason, sizeof(rep.reason), "the open request "
			 "was truncated or carried more than %d descriptors",
			 CHAN_OPEN_NFDS);
		goto refuse;
	}
	if ((size_t)n != sizeof(req) || req.magic != CHAN_OPEN_MAGIC ||
	    req.version != CHAN_VERSION || req.size != sizeof(req)) {
		snprintf(rep.reason, sizeof(rep.reason), "malformed open "
			 "request (%zd bytes, expected a version %d request "
			 "of %zu)", n, CHAN_VERSION, sizeof(req));
		goto refuse;
	}
	if (!memchr(req.from_cell, '\0', sizeof(req.from_cell)) ||
	    !memchr(req.to_name, '\0', sizeof(req.to_name)) ||
	    !name_ok(req.from_cell)) {
		snprintf(rep.reason, sizeof(rep.reason), "the open request "
			 "names its cell badly");
		goto refuse;
	}
	if (nfds != CHAN_OPEN_NFDS) {
		snprintf(rep.reason, sizeof(rep.reason), "the open request "
			 "carried %d descriptors, expected %d", nfds,
			 CHAN_OPEN_NFDS);
		goto refuse;
	}
	err = chan__region_check(fds[0], req.region_size, rep.reason,
				 sizeof(rep.reason));
	if (err)
		goto refuse;
	for (int i = 1; i < CHAN_OPEN_NFDS; i++) {
		if (!chan__is_eventfd(fds[i])) {
			err = -EPROTO;
			snprintf(rep.reason, sizeof(rep.reason), "descriptor "
				 "%d of the open request is not an eventfd", i);
			goto refuse;
		}
		/* Ours to use non-blocking whatever the opener set. */
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	}
	err = chan__supervisor_approve(CHAN_ROLE_ACCEPT, req.from_cell,
				       my_cell(), pid, rep.reason,
				       sizeof(rep.reason));
	if (err)
		goto refuse;
	/* From here the endpoint owns the descriptors and the socket. */
	err = chan__endpoint(&a->c, 1, fds[0], &fds[1], a->sock, a->poll_ns);
	nfds = 0;
	if (err) {
		a->sock = -1;
		LOG_WARN("chan: open from cell '%s' (pid %d) to '%s': cannot "
			 "map the channel: %s", req.from_cell, (int)pid,
			 a->l->name, strerror(-err));
		return err;
	}
	a->c->peer_pid = pid;
	snprintf(a->c->peer_cell, sizeof(a->c->peer_cell), "%s",
		 req.from_cell);
	err = send_with_fds(a->sock, &rep, sizeof(rep), NULL, 0);
	a->sock = -1;
	if (err) {
		chan_forget(a->c);
		a->c = NULL;
		return err;
	}
	return 0;
refuse:
	close_fds(fds, nfds);
	rep.status = err;
	LOG_WARN("chan: open from pid %d to '%s' refused: %s", (int)pid,
		 a->l->name, rep.reason);
	(void)send_with_fds(a->sock, &rep, sizeof(rep), NULL, 0);
	return err;
}

int chan_accept(struct chan_listener *l, struct chan **out,
		const struct chan_config *cfg)
{
	struct accept_ctx a = { .l = l, .sock = -1 };
	int err;

	if (!l || !out)
		return -EINVAL;
	a.poll_ns = cfg && cfg->poll_ns ? cfg->poll_ns : CHAN_DEFAULT_POLL_NS;
	do
		a.sock = sys_accept(l->fd, NULL, NULL, SOCK_CLOEXEC);
	while (a.sock == -EINTR);
	if (a.sock < 0)
		return a.sock;
	err = run_blocking(accept_handshake, &a);
	if (a.sock >= 0)
		close(a.sock);
	if (err)
		return err;
	*out = a.c;
	return 0;
}

/* ---- open ------------------------------------------------------------------- */

struct open_ctx {
	const char *peer;
	const char *path;
	uint32_t nslots, data_size;
	uint64_t map_size, poll_ns;
	struct chan *c;
};

/* connect() failed with errno: 0 if it was only interrupted by a signal
 * and the connection then completed, else the error (EAGAIN, a full
 * backlog past the send timeout, is -ETIMEDOUT). */
static int connect_interrupted(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = errno, r;

	if (err != EINTR)
		return err == EAGAIN ? -ETIMEDOUT : -err;
	/* The connection goes on in the background: wait for it. */
	do
		r = poll(&p, 1, CHAN_OPEN_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

static long open_handshake(void *arg)
{
	struct open_ctx *o = arg;
	struct chan_region_hdr h;
	struct chan_open_req req;
	struct chan_open_rep rep;
	struct sockaddr_un sa;
	char reason[CHAN_REASON_MAX];
	int fds[CHAN_OPEN_NFDS], sock = -1, err, nfds;
	bool trunc;
	ssize_t n;

	for (int i = 0; i < CHAN_OPEN_NFDS; i++)
		fds[i] = -1;
	err = chan__layout(&h, o->nslots, o->data_size, o->map_size);
	if (!err)
		err = make_addr(&sa, o->path);
	if (err)
		return err;
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	set_timeouts(sock);
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) &&
	    (err = connect_interrupted(sock))) {
		LOG_WARN("chan: cannot reach '%s' at %s: %s", o->peer, o->path,
			 strerror(-err));
		goto fail;
	}
	fds[0] = chan__region_create(&h);
	if (fds[0] < 0) {
		err = fds[0];
		goto fail;
	}
	for (int i = 1; i < CHAN_OPEN_NFDS; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[i] < 0) {
			err = -errno;
			goto fail;
		}
	}
	memset(&req, 0, sizeof(req));
	req.magic = CHAN_OPEN_MAGIC;
	req.version = CHAN_VERSION;
	req.size = sizeof(req);
	req.region_size = h.total_size;
	snprintf(req.from_cell, sizeof(req.from_cell), "%s", my_cell());
	snprintf(req.to_name, sizeof(req.to_name), "%s", o->peer);
	err = send_with_fds(sock, &req, sizeof(req), fds, CHAN_OPEN_NFDS);
	if (err)
		goto fail;
	memset(&rep, 0, sizeof(rep));
	n = recv_with_fds(sock, &rep, sizeof(rep), NULL, 0, &nfds, &trunc);
	if (n < 0) {
		err = (int)n;
		LOG_WARN("chan: '%s' did not answer the open: %s", o->peer,
			 strerror(-err));
		goto fail;
	}
	if ((size_t)n != sizeof(rep) || rep.magic != CHAN_OPEN_MAGIC ||
	    rep.size != sizeof(rep) || trunc ||
	    !memchr(rep.cell, '\0', sizeof(rep.cell)) ||
	    !memchr(rep.reason, '\0', sizeof(rep.reason)) || rep.status > 0) {
		err = -EPROTO;
		LOG_WARN("chan: '%s' answered the open with a malformed reply",
			 o->peer);
		goto fail;
	}
	if (rep.status < 0) {
		err = rep.status;
		LOG_WARN("chan: cell '%s' refused the channel from '%s': %s",
			 rep.cell, my_cell(), rep.reason);
		goto fail;
	}
	/* Our own question, now that the reply names the target's cell. */
	if (!name_ok(rep.cell)) {
		err = -EPROTO;
		LOG_WARN("chan: '%s' answered the open with a bad cell name",
			 o->peer);
		goto fail;
	}
	err = chan__supervisor_approve(CHAN_ROLE_OPEN, my_cell(), rep.cell,
				       peer_pid_of(sock), reason,
				       sizeof(reason));
	if (err) {
		LOG_WARN("chan: opening '%s' refused: %s", o->peer, reason);
		goto fail;
	}
	err = chan__endpoint(&o->c, 0, fds[0], &fds[1], sock, o->poll_ns);
	if (err)
		return err; /* it closed everything */
	o->c->peer_pid = peer_pid_of(sock);
	snprintf(o->c->peer_cell, sizeof(o->c->peer_cell), "%s", rep.cell);
	return 0;
fail:
	close_fds(fds, CHAN_OPEN_NFDS);
	if (sock >= 0)
		close(sock);
	return err;
}

int chan_open(struct chan **out, const char *peer,
	      const struct chan_config *cfg)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char reason[CHAN_REASON_MAX];
	struct open_ctx o = { .peer = peer, .path = path };
	int err;

	if (!out || !peer)
		return -EINVAL;
	err = chan__config(cfg, &o.nslots, &o.data_size, &o.map_size,
			   &o.poll_ns);
	if (!err)
		err = chan_rendezvous_path(path, sizeof(path), peer);
	if (err)
		return err;
	err = chan__supervisor_approve(CHAN_ROLE_OPEN, my_cell(), NULL, 0,
				       reason, sizeof(reason));
	if (err) {
		LOG_WARN("chan: opening '%s' refused: %s", peer, reason);
		return err;
	}
	err = run_blocking(open_handshake, &o);
	if (err)
		return err;
	*out = o.c;
	return 0;
}
