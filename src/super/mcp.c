/* mcp.c - many-core processes (MCPs) registered with atolld: the
 * procinfo/procdata memfd, core grants and revocations inside a cell.
 *
 * A process in a cell sends "mcp.register" on a connection it keeps open;
 * atolld answers with a memfd (SCM_RIGHTS) holding procinfo and procdata
 * (include/atoll/procinfo.h) and from then on grants and revokes its
 * vcores by writing procinfo. Closing the connection (the process exits)
 * deregisters it and its cores go to the other MCPs of the cell.
 *
 * Policy (per cell, rerun after every change: registration, deregistration,
 * resize, a revocation completed): MCPs in registration order each get
 * their min first (admission keeps the sum of mins within the cell's
 * cores, so slot 0, which holds the process's first uthread and is never
 * revoked, always has a core of its own), then cores up to their max, in
 * order. A core is granted only when free: no slot of any MCP on the node
 * holds it, so a core that moved from another cell (a resize, the latency
 * controller) is granted once the revocation there completed or was
 * forced, and every cell is rebalanced when one completes. After a resize
 * the vcore threads of the cell's MCPs are pinned again to their cores
 * (the resize gave every thread of the cell the cell's cores). An MCP
 * above its share has its highest slots revoked: preempt_pending = now +
 * grace (--mcp-grace-ms, default 10 ms, or the registration's grace_ms).
 * The runtime gives the core back at its next scheduling point and
 * publishes PROCDATA_VC_OFF;
 * while revocations are pending the event loop ticks every millisecond to
 * notice, and at the deadline forces: the slot is marked taken (forced++)
 * and the vcore's kernel thread (its tid from procdata) is moved off the
 * core with sched_setaffinity, so the core is free at once whatever the
 * process does; the runtime tells its 2LS (vcore_preempted).
 *
 * Latencies: an MCP may publish one histogram per vcore in procdata
 * (procinfo.h); mcp_cell_latency() merges them and returns what was
 * recorded since its previous call, against a per-MCP baseline.
 *
 * Single-threaded like the rest of atolld: no locks.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/log.h>
#include <atoll/procinfo.h>

struct mcp {
	bool used;
	pid_t pid;
	uint64_t order;             /* registration order */
	char cell[PROTO_NAME_MAX + 1];
	unsigned min, max;
	bool cg;
	uint64_t grace_ns;
	void *map;
	struct procinfo *pi;
	struct procdata *pd;
};

static struct mcp mcps[MCPS_MAX];
static uint64_t next_order;
/* Each MCP's merged histograms at the previous mcp_cell_latency(). */
static struct hist lat_prev[MCPS_MAX];

static unsigned nslots(const struct mcp *m)
{
	return m->max;
}

static bool slot_granted(const struct mcp *m, unsigned i)
{
	return load_relaxed(&m->pi->vc[i].granted) != 0;
}

static bool slot_pending(const struct mcp *m, unsigned i)
{
	return load_relaxed(&m->pi->vc[i].preempt_pending) != 0;
}

/* The cpus the slots of every MCP hold (pending ones too). */
static void node_held(cpu_set_t *held)
{
	CPU_ZERO(held);
	for (int k = 0; k < MCPS_MAX; k++) {
		struct mcp *m = &mcps[k];

		if (!m->used)
			continue;
		for (unsigned i = 0; i < nslots(m); i++)
			if (slot_granted(m, i) && m->pi->vc[i].cpu >= 0)
				CPU_SET(m->pi->vc[i].cpu, held);
	}
}

static int first_free(const struct cell *cell, const cpu_set_t *held)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cell->cpus) && !CPU_ISSET(c, held))
			return c;
	return -1;
}

static unsigned active(const struct mcp *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nslots(m); i++)
		n += slot_granted(m, i) && !slot_pending(m, i);
	return n;
}

static void slot_revoke(struct mcp *m, unsigned i, const char *why)
{
	uint64_t now = now_ns();

	procinfo_revoke(m->pi, i, now + m->grace_ns);
	LOG_INFO("mcp %d (cell '%s'): revoking vcore %u on cpu %d (%s), deadline %llu us",
		 (int)m->pid, m->cell, i, m->pi->vc[i].cpu, why,
		 (unsigned long long)(m->grace_ns / 1000));
}

/* Bring the grants of the cell's MCPs in line with the policy above. */
static void rebalance(struct super *s, const char *name)
{
	struct cell *cell = cell_find(s, name);
	struct mcp *ms[MCPS_MAX];
	unsigned target[MCPS_MAX];
	int n = 0, remaining;
	cpu_set_t held;

	if (!cell || cell->destroying)
		return;
	for (int k = 0; k < MCPS_MAX; k++)
		if (mcps[k].used && !strcmp(mcps[k].cell, name))
			ms[n++] = &mcps[k];
	for (int a = 1; a < n; a++) /* registration order */
		for (int b = a; b > 0 && ms[b - 1]->order > ms[b]->order; b--) {
			struct mcp *t = ms[b];

			ms[b] = ms[b - 1];
			ms[b - 1] = t;
		}
	remaining = CPU_COUNT(&cell->cpus);
	for (int k = 0; k < n; k++) {
		target[k] = ms[k]->min;
		if ((int)target[k] > remaining)
			target[k] = remaining > 1 ? (unsigned)remaining : 1;
		remaining -= (int)target[k];
	}
	for (int k = 0; k < n; k++) {
		unsigned extra = ms[k]->max - target[k];

		if (remaining <= 0)
			break;
		if ((int)extra > remaining)
			extra = (unsigned)remaining;
		target[k] += extra;
		remaining -= (int)extra;
	}
	/* Revocations first: cores that left the cell, then shares. */
	for (int k = 0; k < n; k++) {
		struct mcp *m = ms[k];
		unsigned act;

		for (unsigned i = 1; i < nslots(m); i++)
			if (slot_granted(m, i) && !slot_pending(m, i) &&
			    !CPU_ISSET(m->pi->vc[i].cpu, &cell->cpus))
				slot_revoke(m, i, "the core left the cell");
		act = active(m);
		for (unsigned i = nslots(m); i-- > 1 && act > target[k];)
			if (slot_granted(m, i) && !slot_pending(m, i)) {
				slot_revoke(m, i, "the cell's share shrank");
				act--;
			}
	}
	node_held(&held);
	/* Slot 0 never goes pending: it moves when its core left the cell. */
	for (int k = 0; k < n; k++) {
		struct mcp *m = ms[k];
		int cpu = m->pi->vc[0].cpu;

		if (slot_granted(m, 0) && cpu >= 0 && CPU_ISSET(cpu, &cell->cpus))
			continue;
		cpu = first_free(cell, &held);
		if (cpu < 0) /* only while revocations are pending */
			continue;
		procinfo_grant(m->pi, 0, cpu, now_ns());
		CPU_SET(cpu, &held);
		LOG_INFO("mcp %d (cell '%s'): vcore 0 on cpu %d", (int)m->pid,
			 m->cell, cpu);
	}
	for (int k = 0; k < n; k++) {
		struct mcp *m = ms[k];
		unsigned act = active(m);

		for (unsigned i = 1; i < nslots(m) && act < target[k]; i++) {
			int cpu;

			if (slot_granted(m, i) && !slot_pending(m, i))
				continue;
			if (slot_granted(m, i)) {
				/* Still pending: cancel the revocation. */
				cpu = m->pi->vc[i].cpu;
				if (!CPU_ISSET(cpu, &cell->cpus))
					continue;
			} else {
				cpu = first_free(cell, &held);
				if (cpu < 0)
					break;
				CPU_SET(cpu, &held);
			}
			procinfo_grant(m->pi, i, cpu, now_ns());
			act++;
			LOG_INFO("mcp %d (cell '%s'): granted vcore %u on cpu %d",
				 (int)m->pid, m->cell, i, cpu);
		}
	}
}

static const char *const register_keys[] = { "op", "cell", "min", "max",
					      "class", "grace_ms", NULL };

/* An optional integer field in [lo, hi], dflt when absent. */
static int get_uint(const struct json *req, const char *key, int64_t lo,
		    int64_t hi, int64_t dflt, struct req_ctx *c, int64_t *out)
{
	bool present;
	int err = req_get_int(req, key, lo, hi, c, out, &present);

	if (!err && !present)
		*out = dflt;
	return err;
}

int mcp_op_register(struct super *s, const struct json *req,
		    struct req_ctx *c, struct json_w *w)
{
	const struct json *v, *cls;
	struct cell *cell;
	struct mcp *m;
	int64_t min, max, grace;
	unsigned mins = 0;
	int memfd;
	void *map;

	if (req_check_keys(req, register_keys,
			   "a \"mcp.register\" request (it takes cell, min, max, class, grace_ms)",
			   c))
		return -EINVAL;
	v = json_get(req, "cell");
	if (!v || v->type != JSON_STR)
		return req_fail(c, PROTO_E_BADREQ,
			    "the field \"cell\" (a string) is missing");
	if (!name_valid(v->s))
		return req_fail(c, PROTO_E_BADREQ, "cell name \"%.40s\" is invalid",
			    v->s);
	if (get_uint(req, "min", 1, PROCINFO_MAX_VCORES, 1, c, &min) ||
	    get_uint(req, "max", 1, PROCINFO_MAX_VCORES, PROCINFO_MAX_VCORES,
		     c, &max) ||
	    get_uint(req, "grace_ms", 0, 60000, s->mcp_grace_ms, c, &grace))
		return -EINVAL;
	if (max < min)
		return req_fail(c, PROTO_E_RANGE, "max (%lld) is below min (%lld)",
			    (long long)max, (long long)min);
	cls = json_get(req, "class");
	if (cls && (cls->type != JSON_STR ||
		    (strcmp(cls->s, "ll") && strcmp(cls->s, "cg"))))
		return req_fail(c, PROTO_E_BADREQ, "\"class\" must be \"ll\" or \"cg\"");
	cell = cell_find(s, v->s);
	if (!cell || cell->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' does not exist", v->s);
	if (!c->peer_admin && !cell_has_pid(s, cell, c->peer_pid))
		return req_fail(c, PROTO_E_PERM,
			    "process %d is not in cell '%s' (run it with atoll run --cell)",
			    (int)c->peer_pid, cell->name);
	if (cell->squeezable)
		return req_fail(c, PROTO_E_ADMISSION,
			    "cell '%s' may be squeezed to no core (min_cores 0), which freezes its processes; a many-core process has its cores granted and revoked instead: run it in a cell with min_cores 1",
			    cell->name);
	if (c->conn < 0 || c->conn >= MCPS_MAX)
		return req_fail(c, PROTO_E_LIMIT, "no MCP slot for this connection");
	m = &mcps[c->conn];
	if (m->used)
		return req_fail(c, PROTO_E_EXISTS,
			    "this connection already registered an MCP");
	for (int k = 0; k < MCPS_MAX; k++)
		if (mcps[k].used && !strcmp(mcps[k].cell, cell->name))
			mins += mcps[k].min;
	if (mins + (unsigned)min > (unsigned)CPU_COUNT(&cell->cpus))
		return req_fail(c, PROTO_E_ADMISSION,
			    "cell '%s' has %d cores and its MCPs already hold a minimum of %u; a minimum of %lld more cannot be honoured",
			    cell->name, CPU_COUNT(&cell->cpus), mins,
			    (long long)min);

	memfd = memfd_create("atoll-procinfo", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)PROCINFO_MAP_SIZE)) {
		int e = errno;

		if (memfd >= 0)
			close(memfd);
		return req_fail(c, PROTO_E_SYSTEM, "memfd_create: %s", strerror(e));
	}
	map = mmap(NULL, PROCINFO_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   memfd, 0);
	if (map == MAP_FAILED) {
		int e = errno;

		close(memfd);
		return req_fail(c, PROTO_E_SYSTEM, "mmap of the procinfo memfd: %s",
			    strerror(e));
	}
	memset(m, 0, sizeof(*m));
	m->used = true;
	m->pid = c->peer_pid;
	m->order = next_order++;
	snprintf(m->cell, sizeof(m->cell), "%s", cell->name);
	m->min = (unsigned)min;
	m->max = (unsigned)max;
	m->cg = cls && !strcmp(cls->s, "cg");
	m->grace_ns = (uint64_t)grace * 1000000ull;
	m->map = map;
	m->pi = map;
	m->pd = (struct procdata *)((char *)map + PROCDATA_OFFSET);
	m->pi->version = PROCINFO_VERSION;
	m->pi->nr_slots = m->max;
	m->pi->provisioned = m->min;
	m->pi->grace_ns = m->grace_ns;
	hist_init(&lat_prev[c->conn]);
	for (unsigned i = 0; i < PROCINFO_MAX_VCORES; i++)
		m->pi->vc[i].cpu = -1;
	store_release(&m->pi->magic, PROCINFO_MAGIC);
	latctl_restart(cell);
	rebalance(s, cell->name);
	{
		char msg[MSG_MAX];

		if (journal_write(s, msg))
			note_add(&c->notes, "the journal could not be rewritten: %s",
				 msg);
	}
	LOG_INFO("mcp %d registered in cell '%s' (min %u, max %u): %u vcores granted",
		 (int)m->pid, m->cell, m->min, m->max, m->pi->allocated);
	c->pass_fd = memfd;
	jw_key(w, "mcp");
	jw_obj(w);
	jw_kstr(w, "cell", m->cell);
	jw_kint(w, "pid", m->pid);
	jw_kint(w, "min", m->min);
	jw_kint(w, "max", m->max);
	jw_kstr(w, "class", m->cg ? "cg" : "ll");
	jw_kint(w, "allocated", m->pi->allocated);
	jw_kint(w, "grace_ms", grace);
	jw_kint(w, "procinfo_version", PROCINFO_VERSION);
	jw_kint(w, "map_size", (int64_t)PROCINFO_MAP_SIZE);
	jw_kint(w, "procdata_offset", (int64_t)PROCDATA_OFFSET);
	jw_obj_end(w);
	return 0;
}

/* Every cell: a freed core may belong to another cell by now. Twice: a
 * cell served early in the first pass may wait for a core that a later
 * one frees in it (moving its slot 0 off a core that left it). */
static void rebalance_all(struct super *s)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < s->ncells; i++)
			rebalance(s, s->cells[i]->name);
}

static void mcp_release(struct mcp *m)
{
	munmap(m->map, PROCINFO_MAP_SIZE);
	m->used = false;
	m->map = NULL;
	m->pi = NULL;
	m->pd = NULL;
}

void mcp_conn_closed(struct super *s, int conn)
{
	struct mcp *m;
	char msg[MSG_MAX];

	if (conn < 0 || conn >= MCPS_MAX || !mcps[conn].used)
		return;
	m = &mcps[conn];
	LOG_INFO("mcp %d (cell '%s') deregistered: %u cores released",
		 (int)m->pid, m->cell, m->pi->allocated);
	mcp_release(m);
	rebalance_all(s);
	if (journal_write(s, msg))
		LOG_WARN("%s", msg);
}

/* Is tid a thread of pid? */
static bool tid_of(pid_t pid, pid_t tid)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/task/%d", (int)pid, (int)tid);
	return tid > 0 && !stat(p, &st);
}

/* Pin each granted vcore thread of the cell's MCPs to its core again. */
static void repin(const char *cell)
{
	for (int k = 0; k < MCPS_MAX; k++) {
		struct mcp *m = &mcps[k];

		if (!m->used || strcmp(m->cell, cell))
			continue;
		for (unsigned i = 0; i < nslots(m); i++) {
			int32_t tid = load_acquire(&m->pd->vc[i].tid);
			int cpu = m->pi->vc[i].cpu;
			cpu_set_t one;

			if (!slot_granted(m, i) || slot_pending(m, i) || cpu < 0 ||
			    !tid_of(m->pid, tid))
				continue;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			if (sched_setaffinity(tid, sizeof(one), &one))
				LOG_DEBUG("mcp %d: cannot pin thread %d to cpu %d: %s",
					  (int)m->pid, (int)tid, cpu,
					  strerror(errno));
		}
	}
}

void mcp_cell_changed(struct super *s, const char *cell)
{
	rebalance(s, cell);
	repin(cell);
}

static void force(struct super *s, struct mcp *m, unsigned i)
{
	int32_t tid = load_acquire(&m->pd->vc[i].tid);
	int cpu = m->pi->vc[i].cpu;
	cpu_set_t rest;
	struct cell *cell = cell_find(s, m->cell);

	procinfo_taken(m->pi, i, 1);
	CPU_ZERO(&rest);
	for (unsigned k = 0; k < nslots(m); k++)
		if (slot_granted(m, k) && m->pi->vc[k].cpu >= 0)
			CPU_SET(m->pi->vc[k].cpu, &rest);
	if (!CPU_COUNT(&rest) && cell)
		rest = cell->cpus;
	if (cpu >= 0)
		CPU_CLR(cpu, &rest);
	if (tid_of(m->pid, tid) && CPU_COUNT(&rest) &&
	    sched_setaffinity(tid, sizeof(rest), &rest))
		LOG_WARN("mcp %d: cannot move thread %d off cpu %d: %s",
			 (int)m->pid, (int)tid, cpu, strerror(errno));
	LOG_INFO("mcp %d (cell '%s'): vcore %u on cpu %d did not yield by its deadline; taken by force (thread %d moved)",
		 (int)m->pid, m->cell, i, cpu, (int)tid);
}

int mcp_timeout_ms(void)
{
	for (int k = 0; k < MCPS_MAX; k++) {
		struct mcp *m = &mcps[k];

		if (!m->used)
			continue;
		for (unsigned i = 1; i < nslots(m); i++)
			if (slot_granted(m, i) && slot_pending(m, i))
				return 1;
	}
	return -1;
}

void mcp_tick(struct super *s)
{
	uint64_t now = now_ns();
	bool changed = false;

	for (int k = 0; k < MCPS_MAX; k++) {
		struct mcp *m = &mcps[k];

		if (!m->used)
			continue;
		for (unsigned i = 1; i < nslots(m); i++) {
			const struct procdata_vcore *d = &m->pd->vc[i];
			uint64_t pp = load_relaxed(&m->pi->vc[i].preempt_pending);

			if (!slot_granted(m, i) || !pp)
				continue;
			if (load_acquire(&d->seen_seq) == m->pi->vc[i].seq &&
			    load_acquire(&d->state) == PROCDATA_VC_OFF) {
				LOG_INFO("mcp %d (cell '%s'): vcore %u gave cpu %d back",
					 (int)m->pid, m->cell, i, m->pi->vc[i].cpu);
				procinfo_taken(m->pi, i, 0);
				changed = true;
			} else if (now >= pp) {
				force(s, m, i);
				changed = true;
			}
		}
	}
	/* The core may have moved to another cell, whose MCP waits for it. */
	if (changed)
		rebalance_all(s);
}

void mcp_journal_json(struct json_w *w)
{
	jw_arr(w);
	for (int k = 0; k < MCPS_MAX; k++) {
		const struct mcp *m = &mcps[k];

		if (!m->used)
			continue;
		jw_obj(w);
		jw_kint(w, "pid", m->pid);
		jw_kstr(w, "cell", m->cell);
		jw_kint(w, "min", m->min);
		jw_kint(w, "max", m->max);
		jw_kstr(w, "class", m->cg ? "cg" : "ll");
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void mcp_list_json(const char *cell, struct json_w *w)
{
	jw_arr(w);
	for (int k = 0; k < MCPS_MAX; k++) {
		const struct mcp *m = &mcps[k];

		if (!m->used || (cell && strcmp(m->cell, cell)))
			continue;
		jw_obj(w);
		jw_kint(w, "pid", m->pid);
		jw_kint(w, "min", m->min);
		jw_kint(w, "max", m->max);
		jw_kint(w, "allocated", m->pi->allocated);
		jw_key(w, "vcores");
		jw_arr(w);
		for (unsigned i = 0; i < nslots(m); i++) {
			if (!slot_granted(m, i))
				continue;
			jw_obj(w);
			jw_kint(w, "vcore", i);
			jw_kint(w, "cpu", m->pi->vc[i].cpu);
			jw_kbool(w, "pending", slot_pending(m, i));
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

int mcp_cell_count(const char *cell)
{
	int n = 0;

	for (int k = 0; k < MCPS_MAX; k++)
		n += mcps[k].used && !strcmp(mcps[k].cell, cell);
	return n;
}

/* Merge m's published histograms into out; false if it publishes none. */
static bool published(const struct mcp *m, struct hist *out)
{
	bool any = false;

	hist_init(out);
	for (unsigned i = 0; i < PROCINFO_MAX_VCORES; i++) {
		const struct hist *h = procdata_hist(m->pd, i);

		/* Acquire: pairs with the release of hist_on in the process
		 * (rt/latency.c): the histogram was initialised before. */
		if (!load_acquire(&m->pd->vc[i].hist_on) ||
		    load_relaxed(&h->magic) != HIST_MAGIC ||
		    load_relaxed(&h->nbuckets) != HIST_NBUCKETS)
			continue;
		hist_merge(out, h);
		any = true;
	}
	return any;
}

int mcp_cell_latency(const char *cell, struct hist *win)
{
	static struct hist now;
	int n = 0;

	for (int k = 0; k < MCPS_MAX; k++) {
		if (!mcps[k].used || strcmp(mcps[k].cell, cell) ||
		    !published(&mcps[k], &now))
			continue;
		n++;
		if (win)
			latctl_add_delta(win, &now, &lat_prev[k]);
		hist_copy(&lat_prev[k], &now);
	}
	return n;
}
