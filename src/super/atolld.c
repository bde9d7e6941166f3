/* atolld.c - the supervisor daemon: options, the control socket, the event
 * loop and request dispatch. The loop also ticks the MCP revocations
 * (mcp.c) and the latency controller's windows (latctl.c).
 *
 * One thread, one poll loop: requests are served one at a time, in order,
 * so cell state needs no lock. A request that stops processes (destroy)
 * blocks the loop for at most its grace period plus a few seconds.
 * SIGTERM and SIGINT stop atolld and leave every cell and its processes
 * running; the next start adopts them from the journal.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atoll/log.h>

#define CLIENTS_MAX MCPS_MAX /* a connection indexes its MCP */

struct client {
	int fd;
	int idx;            /* index in clients[]: names its MCP (mcp.c) */
	struct ucred cred;
	char *buf;          /* PROTO_LINE_MAX bytes */
	size_t len;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: atolld [--foreground] --state-dir DIR [--cpus LIST] [--name NAME]\n"
"              [--socket PATH] [--group GROUP] [--enforce MODE] [--no-irq]\n"
"              [--grace-ms MS] [--mcp-grace-ms MS]\n"
"\n"
"The Atoll supervisor: partitions this node's cores and memory into cells.\n"
"\n"
"  --foreground     stay in the foreground, log to stderr (else daemonize and\n"
"                   log to DIR/atolld.log)\n"
"  --state-dir DIR  where the journal (cells.json) and the lock live\n"
"  --cpus LIST      the cpus this instance manages (default: all online)\n"
"  --name NAME      instance name (default \"main\"); cgroups go under\n"
"                   atoll-NAME in each hierarchy\n"
"  --socket PATH    control socket (default $ATOLL_SOCKET, else %s)\n"
"  --group GROUP    members of GROUP (primary gid) may change cells too\n"
"  --enforce MODE   auto (default), cgroup-v2, cgroup-v1 or affinity\n"
"  --no-irq         never move IRQs (CG cells say so in their replies)\n"
"  --grace-ms MS    default grace between SIGTERM and SIGKILL on destroy\n"
"                   (default 2000)\n"
"  --mcp-grace-ms MS  deadline of an MCP vcore revocation before atolld\n"
"                   takes the core by force (default 10)\n"
"\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 when it cannot start, 2 on bad usage.\n",
		PROTO_SOCKET_DEFAULT);
}

static void reply_send(struct client *cl, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(cl->fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			struct pollfd p = { cl->fd, POLLOUT, 0 };

			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && poll(&p, 1, 1000) > 0)
				continue;
			return; /* the client goes away at its next read */
		}
		off += (size_t)n;
	}
}

/* Send {"ok":..., payload members or "error", "enforcement", notes}. */
static void reply_send_all(struct super *s, struct client *cl,
			   const struct json_w *payload, struct req_ctx *c,
			   bool ok)
{
	struct json_w w;

	jw_init(&w);
	jw_obj(&w);
	jw_kbool(&w, "ok", ok);
	if (ok && payload->buf) {
		jw_members(&w, payload->buf, payload->len);
	} else if (!ok) {
		jw_key(&w, "error");
		jw_obj(&w);
		jw_kstr(&w, "code", c->code ? c->code : PROTO_E_SYSTEM);
		jw_kstr(&w, "message", c->msg);
		jw_obj_end(&w);
	}
	jw_kstr(&w, "enforcement", enf_name(s->enf.kind));
	if (s->enf.kind == ENF_AFFINITY) {
		jw_kbool(&w, "weak", true);
		note_add(&c->notes,
			 "enforcement is weak (affinity only: no memory limit, children and new threads are not followed): %s",
			 s->enf.why_weak);
	}
	if (c->notes.n) {
		jw_key(&w, "notes");
		jw_arr(&w);
		for (int i = 0; i < c->notes.n; i++)
			jw_str(&w, c->notes.text[i]);
		jw_arr_end(&w);
	}
	jw_obj_end(&w);
	if (w.oom || payload->oom || w.len + 1 > PROTO_LINE_MAX) {
		static const char oom[] =
			"{\"ok\":false,\"error\":{\"code\":\"system\",\"message\":\"atolld could not build the reply (out of memory or over the line limit)\"}}\n";
		reply_send(cl, oom, sizeof(oom) - 1);
	} else if (c->pass_fd >= 0) {
		/* The fd rides on the first byte of the reply. */
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { w.buf, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);

		memset(cm.buf, 0, sizeof(cm.buf));
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(ch), &c->pass_fd, sizeof(int));
		if (sendmsg(cl->fd, &mh, MSG_NOSIGNAL) == 1) {
			reply_send(cl, w.buf + 1, w.len - 1);
			reply_send(cl, "\n", 1);
		}
	} else {
		reply_send(cl, w.buf, w.len);
		reply_send(cl, "\n", 1);
	}
	if (c->pass_fd >= 0)
		close(c->pass_fd);
	c->pass_fd = -1;
	jw_free(&w);
}

static bool may_change(struct super *s, const struct client *cl)
{
	return cl->cred.uid == 0 || cl->cred.uid == geteuid() ||
	       (s->admin_gid != (gid_t)-1 && cl->cred.gid == s->admin_gid);
}

static void status_json(struct super *s, struct json_w *w)
{
	char list[1024];
	cpu_set_t used;
	int res = 0;

	CPU_ZERO(&used);
	for (int i = 0; i < s->ncells; i++) {
		int n = CPU_COUNT(&s->cells[i]->cpus);

		CPU_OR(&used, &used, &s->cells[i]->cpus);
		res += s->cells[i]->provision > n ? s->cells[i]->provision : n;
	}
	jw_kstr(w, "instance", s->name);
	jw_kint(w, "version", PROTO_VERSION);
	jw_kint(w, "pid", getpid());
	cpulist_format(&s->managed, list, sizeof(list));
	jw_kstr(w, "managed", list);
	jw_kint(w, "managed_cores", CPU_COUNT(&s->managed));
	{
		cpu_set_t fr;

		CPU_XOR(&fr, &s->managed, &used);
		CPU_AND(&fr, &fr, &s->managed);
		cpulist_format(&fr, list, sizeof(list));
		jw_kstr(w, "free", list);
	}
	jw_kint(w, "reserved_cores", res);
	jw_kint(w, "cells", s->ncells);
	jw_kstr(w, "state_dir", s->state_dir);
	jw_kstr(w, "socket", s->socket_path);
	jw_key(w, "cgroup_roots");
	jw_arr(w);
	if (s->enf.kind == ENF_V2)
		jw_str(w, s->enf.v2_root);
	if (s->enf.kind == ENF_V1) {
		jw_str(w, s->enf.cpuset_root);
		jw_str(w, s->enf.mem_root);
		if (s->enf.freezer_root[0])
			jw_str(w, s->enf.freezer_root);
	}
	jw_arr_end(w);
	if (s->enf.kind == ENF_AFFINITY)
		jw_kstr(w, "weak_reason", s->enf.why_weak);
	jw_key(w, "latctl");
	latctl_status_json(s, w);
	jw_key(w, "inventory");
	inventory_json(&s->inv, w);
}

static bool is_op(const char *op, const char *name)
{
	return !strcmp(op, name);
}

static void handle_line(struct super *s, struct client *cl, const char *line,
			size_t len)
{
	struct req_ctx c;
	struct json_w pw;
	struct json_doc *doc;
	const struct json *req, *op;
	char err[256];
	int r = -EINVAL;

	memset(&c, 0, sizeof(c));
	c.peer_pid = cl->cred.pid;
	c.peer_uid = cl->cred.uid;
	c.peer_admin = may_change(s, cl);
	c.conn = cl->idx;
	c.pass_fd = -1;
	jw_init(&pw);
	jw_obj(&pw);
	doc = json_parse(line, len, err, sizeof(err));
	if (!doc) {
		c.code = PROTO_E_PARSE;
		snprintf(c.msg, sizeof(c.msg), "the request is not valid JSON: %s",
			 err);
		goto out;
	}
	req = json_root(doc);
	op = json_get(req, "op");
	if (req->type != JSON_OBJ || !op || op->type != JSON_STR) {
		c.code = PROTO_E_BADREQ;
		snprintf(c.msg, sizeof(c.msg),
			 "a request is a JSON object with a string field \"op\"");
		goto out;
	}
	if ((is_op(op->s, "cell.create") || is_op(op->s, "cell.resize") ||
	     is_op(op->s, "cell.destroy") || is_op(op->s, "cell.attach") ||
	     is_op(op->s, "cell.allow") || is_op(op->s, "cell.deny")) &&
	    !may_change(s, cl)) {
		c.code = PROTO_E_PERM;
		snprintf(c.msg, sizeof(c.msg),
			 "permission denied: uid %d may not change cells; only root%s may",
			 (int)cl->cred.uid,
			 s->admin_gid != (gid_t)-1 ? " or the atolld group" : "");
	} else if (is_op(op->s, "status") || is_op(op->s, "cell.list")) {
		if (req->len != 1) {
			c.code = PROTO_E_BADREQ;
			snprintf(c.msg, sizeof(c.msg), "\"%s\" takes no fields",
				 op->s);
		} else {
			if (is_op(op->s, "status"))
				status_json(s, &pw);
			else
				cell_op_list(s, &pw);
			r = 0;
		}
	} else if (is_op(op->s, "cell.create")) {
		r = cell_op_create(s, req, &c, &pw);
	} else if (is_op(op->s, "cell.resize")) {
		r = cell_op_resize(s, req, &c, &pw);
	} else if (is_op(op->s, "cell.destroy")) {
		r = cell_op_destroy(s, req, &c, &pw);
	} else if (is_op(op->s, "cell.attach")) {
		r = cell_op_attach(s, req, &c, &pw);
	} else if (is_op(op->s, "cell.allow") || is_op(op->s, "cell.deny")) {
		r = cell_op_allow(s, req, &c, &pw, is_op(op->s, "cell.allow"));
	} else if (is_op(op->s, "chan.check")) {
		r = chan_op_check(s, req, &c, &pw);
	} else if (is_op(op->s, "cell.top")) {
		r = latctl_op_top(s, req, &c, &pw);
	} else if (is_op(op->s, "mcp.register")) {
		r = mcp_op_register(s, req, &c, &pw);
	} else {
		c.code = PROTO_E_UNKNOWN_OP;
		snprintf(c.msg, sizeof(c.msg),
			 "unknown op \"%.40s\" (known: status, cell.list, cell.top, cell.create, cell.resize, cell.destroy, cell.attach, cell.allow, cell.deny, chan.check, mcp.register)",
			 op->s);
	}
out:
	jw_obj_end(&pw);
	if (r)
		LOG_DEBUG("request refused (%s): %s", c.code, c.msg);
	reply_send_all(s, cl, &pw, &c, r == 0);
	jw_free(&pw);
	json_free(doc);
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	free(cl->buf);
	cl->fd = -1;
	cl->buf = NULL;
	cl->len = 0;
}

/* Read what is there; serve every complete line. Returns false when the
 * client is gone (or was dropped). */
static bool client_read(struct super *s, struct client *cl)
{
	for (;;) {
		ssize_t n = recv(cl->fd, cl->buf + cl->len,
				 PROTO_LINE_MAX - cl->len, 0);
		char *nl;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
			return false;
		cl->len += (size_t)n;
		while ((nl = memchr(cl->buf, '\n', cl->len))) {
			size_t ll = (size_t)(nl - cl->buf);

			handle_line(s, cl, cl->buf, ll);
			memmove(cl->buf, nl + 1, cl->len - ll - 1);
			cl->len -= ll + 1;
		}
		if (cl->len == PROTO_LINE_MAX) {
			static const char tl[] =
				"{\"ok\":false,\"error\":{\"code\":\"" PROTO_E_TOOLONG
				"\",\"message\":\"the request line is longer than 65536 bytes; closing the connection\"}}\n";

			reply_send(cl, tl, sizeof(tl) - 1);
			return false;
		}
	}
}

static int listen_on(const char *path, char *msg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(msg, MSG_MAX, "socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	if (!strcmp(path, PROTO_SOCKET_DEFAULT))
		mkdir("/run/atoll", 0755);
	/* A stale socket from a previous run (we hold the state lock). */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(path, 0666) || listen(fd, 64)) {
		int e = errno;

		snprintf(msg, MSG_MAX, "cannot listen on %s: %s", path,
			 strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd;
}

static int serve(struct super *s, int lfd)
{
	static struct client clients[CLIENTS_MAX];
	struct pollfd pfd[CLIENTS_MAX + 1];
	sigset_t empty;

	sigemptyset(&empty);
	for (int i = 0; i < CLIENTS_MAX; i++) {
		clients[i].fd = -1;
		clients[i].idx = i;
	}
	while (!stop_requested) {
		int n = 0, idx[CLIENTS_MAX];

		pfd[n++] = (struct pollfd){ lfd, POLLIN, 0 };
		for (int i = 0; i < CLIENTS_MAX; i++) {
			if (clients[i].fd < 0)
				continue;
			idx[n - 1] = i;
			pfd[n++] = (struct pollfd){ clients[i].fd, POLLIN, 0 };
		}
		int tmo = mcp_timeout_ms(), lat_tmo = latctl_timeout_ms(s);
		struct timespec ts;

		if (tmo < 0 || (lat_tmo >= 0 && lat_tmo < tmo))
			tmo = lat_tmo;
		ts.tv_sec = tmo / 1000;
		ts.tv_nsec = (long)(tmo % 1000) * 1000000L;

		if (ppoll(pfd, (nfds_t)n, tmo < 0 ? NULL : &ts, &empty) < 0) {
			if (errno == EINTR)
				continue;
			LOG_ERROR("poll: %s", strerror(errno));
			return -errno;
		}
		for (int k = 1; k < n; k++) {
			struct client *cl = &clients[idx[k - 1]];

			if (pfd[k].revents && !client_read(s, cl)) {
				client_close(cl);
				mcp_conn_closed(s, cl->idx);
			}
		}
		mcp_tick(s);
		latctl_tick(s);
		lend_settle(s);
		if (pfd[0].revents & POLLIN) {
			int cfd = accept4(lfd, NULL, NULL,
					  SOCK_CLOEXEC | SOCK_NONBLOCK);
			socklen_t cl_len = sizeof(struct ucred);
			struct client *slot = NULL;

			if (cfd < 0)
				continue;
			for (int i = 0; i < CLIENTS_MAX; i++)
				if (clients[i].fd < 0) {
					slot = &clients[i];
					break;
				}
			if (!slot) {
				static const char busy[] =
					"{\"ok\":false,\"error\":{\"code\":\"" PROTO_E_LIMIT
					"\",\"message\":\"atolld serves 64 connections at most; try again\"}}\n";

				if (send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0)
					LOG_DEBUG("a refused client went away");
				close(cfd);
				continue;
			}
			slot->buf = malloc(PROTO_LINE_MAX);
			if (!slot->buf ||
			    getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &slot->cred,
				       &cl_len)) {
				free(slot->buf);
				slot->buf = NULL;
				close(cfd);
				continue;
			}
			slot->fd = cfd;
			slot->len = 0;
		}
	}
	for (int i = 0; i < CLIENTS_MAX; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	return 0;
}

static int lock_state_dir(const char *dir, char *msg)
{
	char path[PATH_MAX + 16];
	int fd;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		snprintf(msg, MSG_MAX, "cannot create the state directory %s: %s",
			 dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(msg, MSG_MAX, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		snprintf(msg, MSG_MAX,
			 "another atolld already uses the state directory %s", dir);
		close(fd);
		return -EBUSY;
	}
	return fd; /* held for the life of the process */
}

/* Fork into the background; the parent exits when the child is ready
 * (status 0) or has failed (1). Returns the write end of the readiness
 * pipe in the child. */
static int daemonize(const char *state_dir)
{
	int p[2], fd;
	pid_t pid;
	char c;
	char logp[PATH_MAX + 16];

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	snprintf(logp, sizeof(logp), "%s/atolld.log", state_dir);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		close(fd);
	}
	fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	if (chdir("/"))
		return -errno;
	return p[1];
}

int main(int argc, char **argv)
{
	static struct super sup;
	struct super *s = &sup;
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ "enforce", required_argument, NULL, 'e' },
		{ "no-irq", no_argument, NULL, 'I' },
		{ "grace-ms", required_argument, NULL, 'G' },
		{ "mcp-grace-ms", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cpus_arg = NULL, *sock_env;
	bool foreground = false;
	int want_enf = -1, opt, lockfd, lfd, ready = -1;
	char msg[MSG_MAX];
	struct sigaction sa;
	sigset_t block;

	log_init_from_env();
	snprintf(s->name, sizeof(s->name), "main");
	s->admin_gid = (gid_t)-1;
	s->grace_ms_default = 2000;
	s->mcp_grace_ms = 10;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'd':
			if (strlen(optarg) >= sizeof(s->state_dir) - 64) {
				fprintf(stderr, "atolld: --state-dir is too long\n");
				return 2;
			}
			snprintf(s->state_dir, sizeof(s->state_dir), "%s", optarg);
			break;
		case 'c':
			cpus_arg = optarg;
			break;
		case 'n':
			if (!name_valid(optarg)) {
				fprintf(stderr,
					"atolld: --name '%s' is invalid: use 1 to %d letters, digits, '-' or '_'\n",
					optarg, PROTO_NAME_MAX);
				return 2;
			}
			snprintf(s->name, sizeof(s->name), "%s", optarg);
			break;
		case 's':
			snprintf(s->socket_path, sizeof(s->socket_path), "%s",
				 optarg);
			break;
		case 'g': {
			struct group *g = getgrnam(optarg);
			char *end;
			long gid = strtol(optarg, &end, 10);

			if (g)
				s->admin_gid = g->gr_gid;
			else if (*optarg && !*end && gid >= 0)
				s->admin_gid = (gid_t)gid;
			else {
				fprintf(stderr, "atolld: no group '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'e': {
			enum enf k;

			if (!strcmp(optarg, "auto"))
				want_enf = -1;
			else if (enf_parse(optarg, &k) == 0)
				want_enf = (int)k;
			else {
				fprintf(stderr,
					"atolld: --enforce must be auto, cgroup-v2, cgroup-v1 or affinity\n");
				return 2;
			}
			break;
		}
		case 'I':
			s->no_irq = true;
			break;
		case 'G': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (!*optarg || *end || v < 0 || v > 60000) {
				fprintf(stderr, "atolld: --grace-ms must be 0..60000\n");
				return 2;
			}
			s->grace_ms_default = (int)v;
			break;
		}
		case 'P': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (!*optarg || *end || v < 0 || v > 60000) {
				fprintf(stderr, "atolld: --mcp-grace-ms must be 0..60000\n");
				return 2;
			}
			s->mcp_grace_ms = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !s->state_dir[0]) {
		fprintf(stderr, "atolld: %s\n", optind != argc ?
			"unexpected arguments" : "--state-dir is required");
		usage(stderr);
		return 2;
	}
	if (!s->socket_path[0]) {
		sock_env = getenv(PROTO_SOCKET_ENV);
		snprintf(s->socket_path, sizeof(s->socket_path), "%s",
			 sock_env && *sock_env ? sock_env : PROTO_SOCKET_DEFAULT);
	}
	if (inventory_load(&s->inv)) {
		fprintf(stderr, "atolld: cannot read the node's inventory from /sys\n");
		return 1;
	}
	s->managed = s->inv.online;
	if (cpus_arg) {
		cpu_set_t set;

		if (cpulist_parse(cpus_arg, &set) || CPU_COUNT(&set) == 0) {
			fprintf(stderr, "atolld: --cpus '%s' is not a cpu list like 1-3,5\n",
				cpus_arg);
			return 2;
		}
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set) && !CPU_ISSET(i, &s->inv.online)) {
				fprintf(stderr, "atolld: --cpus: cpu %d is not online\n", i);
				return 2;
			}
		s->managed = set;
	}
	lockfd = lock_state_dir(s->state_dir, msg);
	if (lockfd < 0) {
		fprintf(stderr, "atolld: %s\n", msg);
		return 1;
	}
	if (!foreground) {
		ready = daemonize(s->state_dir);
		if (ready < 0) {
			fprintf(stderr, "atolld: cannot daemonize: %s\n",
				strerror(-ready));
			return 1;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, NULL);

	if (journal_restore(s, want_enf, msg)) {
		LOG_ERROR("%s", msg);
		fprintf(stderr, "atolld: %s\n", msg);
		return 1;
	}
	lend_settle(s); /* the journal may predate a change of wants */
	lfd = listen_on(s->socket_path, msg);
	if (lfd < 0) {
		LOG_ERROR("%s", msg);
		fprintf(stderr, "atolld: %s\n", msg);
		return 1;
	}
	LOG_INFO("atolld '%s' ready on %s: %d cores managed, %d cells, enforcement %s%s%s",
		 s->name, s->socket_path, CPU_COUNT(&s->managed), s->ncells,
		 enf_name(s->enf.kind), s->enf.kind == ENF_AFFINITY ? " (weak: " : "",
		 s->enf.kind == ENF_AFFINITY ? s->enf.why_weak : "");
	if (s->enf.kind == ENF_AFFINITY)
		LOG_WARN("enforcement is weak: affinity only");
	if (ready >= 0) {
		if (write(ready, "1", 1) != 1)
			LOG_WARN("the parent did not wait for readiness");
		close(ready);
	}
	serve(s, lfd);
	close(lfd);
	unlink(s->socket_path);
	LOG_INFO("atolld '%s' stopping; %d cells keep running", s->name,
		 s->ncells);
	if (s->ncells == 0)
		enf_remove_roots(&s->enf);
	for (int i = 0; i < s->ncells; i++)
		free(s->cells[i]);
	inventory_free(&s->inv);
	close(lockfd);
	return 0;
}
