/* internal.h - atolld's private declarations: inventory, enforcement
 * backends (cgroup v2, cgroup v1, affinity), cells, IRQs, the journal,
 * MCP registrations and core grants (mcp.c), the latency controller
 * (latctl.c), best-effort cores lent by DRF (lend.c, drf.c).
 *
 * atolld is single-threaded: one event loop owns every structure here, so
 * nothing below takes a lock. Functions return 0 or -errno; those that can
 * fail in a way a user must understand also fill a sentence (char *msg,
 * MSG_MAX bytes).
 */
#ifndef ATOLL_SUPER_INTERNAL_H
#define ATOLL_SUPER_INTERNAL_H

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <atoll/compiler.h>
#include <atoll/hist.h>
#include <atoll/proto.h>

#include "cpulist.h"
#include "json.h"

#define MSG_MAX 512
#define CELLS_MAX 256
#define CELL_IRQS_MAX 256
#define CELL_PIDS_MAX 256   /* affinity mode: attached pids tracked */
#define NOTES_MAX 16
#define MCPS_MAX 64         /* registered MCPs: one per connection */
#define CELL_PEERS_MAX 64   /* cells a cell allows channels with */
#define CELL_LOANS_MAX 256  /* cores a cell holds on loan (latctl.c) */
#define PRIORITY_MAX 1000

/* ---- inventory (inventory.c) ---- */

struct inv_cache {
	int level;
	char type[16];
	char size[16];
	char shared[64];  /* shared_cpu_list */
};

struct inv_cpu {
	int id;
	int node;          /* -1 when unknown */
	int package;
	int core;
	char siblings[64]; /* thread_siblings_list */
	int ncaches;
	struct inv_cache caches[6];
};

struct inv_node {
	int id;
	uint64_t mem_total;
	char cpus[128];
};

struct inv_nic {
	char name[32];
	int nirqs;
	int irqs[64];
};

struct inventory {
	cpu_set_t online;
	cpu_set_t mem_nodes;   /* NUMA nodes with memory ("mems") */
	uint64_t mem_total;
	int ncpus;
	struct inv_cpu *cpus;
	int nnodes;
	struct inv_node *nodes;
	int nnics;
	struct inv_nic *nics;
};

int inventory_load(struct inventory *inv);
void inventory_free(struct inventory *inv);
void inventory_json(const struct inventory *inv, struct json_w *w);

/* ---- enforcement (cgroup.c) ---- */

enum enf { ENF_V2, ENF_V1, ENF_AFFINITY };

struct enforcer {
	enum enf kind;
	char v2_root[PATH_MAX];     /* ENF_V2: <mount>/atoll-<name> */
	char cpuset_root[PATH_MAX]; /* ENF_V1 */
	char mem_root[PATH_MAX];    /* ENF_V1 */
	char freezer_root[PATH_MAX]; /* ENF_V1: "" without a freezer hierarchy */
	char why_weak[256];         /* ENF_AFFINITY: the reason */
};

const char *enf_name(enum enf k);
int enf_parse(const char *s, enum enf *out);

/* Choose a backend (want < 0: auto) and create this instance's root
 * (under the given paths when restoring from the journal). */
int enf_setup(struct enforcer *e, int want, const char *instance,
	      const cpu_set_t *managed, const cpu_set_t *mems, char *msg);
/* Create or reconfigure a cell's cgroup (not for ENF_AFFINITY). */
int enf_cell_create(struct enforcer *e, const char *cell, const cpu_set_t *cpus,
		    const cpu_set_t *mems, uint64_t mem, char *msg);
bool enf_cell_exists(struct enforcer *e, const char *cell);
int enf_cell_set_cpus(struct enforcer *e, const char *cell,
		      const cpu_set_t *cpus, char *msg);
int enf_cell_set_mems(struct enforcer *e, const char *cell,
		      const cpu_set_t *mems, char *msg);
int enf_cell_set_mem(struct enforcer *e, const char *cell, uint64_t mem,
		     char *msg);
int enf_cell_attach(struct enforcer *e, const char *cell, pid_t pid, char *msg);
/* Whether cells can be frozen: cgroup v2's cgroup.freeze, or a cgroup v1
 * freezer hierarchy. */
bool enf_can_freeze(const struct enforcer *e);
/* Freeze (frozen) or thaw every process of the cell. v1 first moves the
 * cell's processes into its freezer cgroup (made on demand), and again
 * after freezing, for those that forked meanwhile. 0 or -errno and msg. */
int enf_cell_freeze(struct enforcer *e, const char *cell, bool frozen,
		    char *msg);
/* Pids in the cell's cgroup (*n on entry: capacity). */
int enf_cell_pids(struct enforcer *e, const char *cell, pid_t *pids, int *n);
int enf_cell_rmdir(struct enforcer *e, const char *cell, char *msg);
/* Remove the instance's (empty) root cgroups; for a stop with no cells. */
void enf_remove_roots(struct enforcer *e);
/* Names of the cgroups under the instance root (for orphans). */
int enf_list(struct enforcer *e, char names[][PROTO_NAME_MAX + 1], int max);

/* Set the affinity of every thread of pid. Returns 0 or -errno. */
int affinity_set_all(pid_t pid, const cpu_set_t *cpus);
/* Start time of pid (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t proc_start_time(pid_t pid);
/* CPU time pid's threads used (user + system, /proc/PID/stat, clock-tick
 * resolution), in ns; 0 if gone. */
uint64_t proc_cpu_ns(pid_t pid);

/* ---- cells (cell.c) ---- */

enum cell_class { CLASS_LL, CLASS_CG };

struct irq_saved {
	int irq;
	char orig[64];
};

struct tracked_pid {
	pid_t pid;
	uint64_t start;
};

/* A cell's latency target (RainForest's (lt, ut) and window): the
 * controller keeps the cell's tail latency, the pct-th percentile of the
 * samples of one window, between lt_ns and ut_ns. */
struct lat_target {
	bool on;
	uint64_t lt_ns, ut_ns;      /* lt_ns < ut_ns */
	uint32_t window_ms;
	double pct;                 /* percentile, (0, 100] */
};

/* A core a cell holds on loan: from is the core's owner, "" for the free
 * pool; it goes back there. The latency controller lends (latctl.c), and
 * so does best-effort sharing (lend.c, drf set). prov: the core stands
 * on the owner's idle provision, which reserves it for admission, so the
 * borrower's reservation does not count it (cell_reserved()); the owner
 * takes it back as soon as it asks for its cores. */
struct cell_loan {
	int cpu;
	char from[PROTO_NAME_MAX + 1];
	bool prov;
	bool drf;        /* lent for the cell's want (DRF), not by latctl */
};

enum lat_action { LAT_NONE, LAT_GREW, LAT_SHRANK, LAT_BLOCKED };

/* The controller's figures for a cell's last window (not journaled). */
struct lat_window {
	uint64_t start_ns;          /* the current window began */
	uint64_t next_ns;           /* and ends */
	uint64_t end_ns;            /* the last measured window ended; 0: none */
	uint32_t ms;                /* its length */
	uint64_t samples, tail_ns, p50_ns, max_ns;
	int mcps;                   /* MCPs of the cell publishing latencies */
	unsigned empty;             /* windows in a row without a sample */
	enum lat_action action;     /* what the controller did at its end */
	char cause[24];             /* why, in a word */
	char logged[24];            /* the cause logged last */
	char reason[256];           /* why, as a sentence with the figures */
};

struct cell {
	char name[PROTO_NAME_MAX + 1];
	enum cell_class cls;
	cpu_set_t cpus;
	cpu_set_t mems;
	uint64_t mem;        /* bytes, 0 = unlimited */
	int provision;       /* cores guaranteed on demand */
	int want;            /* best-effort demand: cores it could use,
			      * loans included; >= its own cores when set
			      * (cell.c); 0 for a frozen cell: parked by
			      * the operator, it takes no core back */
	bool destroying;     /* journaled before teardown */
	int nirqs;
	struct irq_saved irqs[CELL_IRQS_MAX];
	int npids;           /* ENF_AFFINITY only */
	struct tracked_pid pids[CELL_PIDS_MAX];
	int npeers;          /* cells this one allows channels with */
	char peers[CELL_PEERS_MAX][PROTO_NAME_MAX + 1];
	int priority;        /* 0..PRIORITY_MAX: gives cores only upward */
	bool squeezable;     /* min_cores 0 (CG only): the controller may
			      * take its last core */
	bool frozen;         /* squeezed to no core (cpus empty): its
			      * processes are frozen, and its cpuset stays
			      * on parked_cpu (a cpuset with tasks is never
			      * empty) until a core comes back */
	int parked_cpu;
	struct lat_target lat;
	int nloans;          /* cores on loan, oldest first */
	struct cell_loan loans[CELL_LOANS_MAX];
	struct lat_window win;
};

struct notes {
	int n;
	char text[NOTES_MAX][256];
};

void note_add(struct notes *nt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct super {
	char name[PROTO_NAME_MAX + 1];
	char state_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	cpu_set_t managed;
	gid_t admin_gid;      /* (gid_t)-1: none */
	bool no_irq;
	int grace_ms_default;
	int mcp_grace_ms;     /* revocation deadline of MCP vcores */
	struct inventory inv;
	struct enforcer enf;
	int ncells;
	struct cell *cells[CELLS_MAX];
};

struct cell *cell_find(struct super *s, const char *name);
/* Cores a cell reserves for admission: max(cores held, provision), where
 * cores lent to it from another cell's provision are not counted (that
 * provision reserves them). */
int cell_reserved(const struct cell *c);
/* Cores the cell holds on loan from another cell's provision. */
static inline int cell_prov_loans(const struct cell *c)
{
	int n = 0;

	for (int k = 0; k < c->nloans; k++)
		n += c->loans[k].prov;
	return n;
}

/* Whether a loan yields to a request for cores (lend_revoke()): a
 * best-effort loan from the free pool. Never a cell's own core, a loan
 * of a provision (its owner reserves it) or a latency controller's loan
 * (latctl.c gives those back by its own rules). */
static inline bool cell_loan_revocable(const struct cell_loan *l)
{
	return l->drf && !l->prov && !l->from[0];
}

/* Remove the cell's loan i, keeping the others in order. */
static inline void cell_loan_drop(struct cell *c, int i)
{
	memmove(&c->loans[i], &c->loans[i + 1],
		(size_t)(c->nloans - i - 1) * sizeof(c->loans[0]));
	c->nloans--;
}

/* Put back at i a loan cell_loan_drop() took out. */
static inline void cell_loan_undrop(struct cell *c, int i,
				    const struct cell_loan *l)
{
	memmove(&c->loans[i + 1], &c->loans[i],
		(size_t)(c->nloans - i) * sizeof(c->loans[0]));
	c->loans[i] = *l;
	c->nloans++;
}

/* The sum of the cells' reservations (admission keeps it within the
 * managed cores). */
static inline int super_reserved(struct super *s)
{
	int n = 0;

	for (int i = 0; i < s->ncells; i++)
		n += cell_reserved(s->cells[i]);
	return n;
}

/* Whether n is a valid cell name (see PROTO_NAME_MAX). */
bool name_valid(const char *n);

/* Request handlers: validate everything, then change; on error fill code
 * (a PROTO_E_*) and msg and change nothing. On success write the reply's
 * payload members into w (inside the reply object). */
struct req_ctx {
	const char *code;
	char msg[MSG_MAX];
	struct notes notes;
	pid_t peer_pid;
	uid_t peer_uid;
	bool peer_admin;    /* may change cells */
	int conn;           /* the connection's index (< MCPS_MAX) */
	int pass_fd;        /* >= 0: sent with the reply (SCM_RIGHTS), closed */
};

/* ---- request validation (req.c) ---- */

/* Record a refusal in c: an error code (PROTO_E_*) and a sentence for the
 * user. Returns -EINVAL, for `return req_fail(...)`. */
int req_fail(struct req_ctx *c, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Refuse (req_fail(), bad-request) a member of object obj not named in
 * allowed (NULL-terminated); where names obj in the sentence ("a
 * \"cell.top\" request"). 0 or -EINVAL. */
int req_check_keys(const struct json *obj, const char *const *allowed,
		   const char *where, struct req_ctx *c);

/* Read the optional integer field key of req, which must lie in [lo, hi]:
 * 0 with *present set (and *out) or cleared, or req_fail()'s -EINVAL. */
int req_get_int(const struct json *req, const char *key, int64_t lo,
		int64_t hi, struct req_ctx *c, int64_t *out, bool *present);

/* ---- cell requests (cell.c) ---- */

int cell_op_create(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w);
int cell_op_resize(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w);
int cell_op_destroy(struct super *s, const struct json *req,
		    struct req_ctx *c, struct json_w *w);
int cell_op_attach(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w);
void cell_op_list(struct super *s, struct json_w *w);
/* cell.allow / cell.deny (privileged) and chan.check (read-only): the
 * peers a cell allows channels with; a channel needs both sides' allow. */
int cell_op_allow(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w, bool allow);
int chan_op_check(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w);
void cell_json(struct super *s, const struct cell *cell, struct json_w *w);

/* Journal: write the whole state atomically; load it at start and
 * reconcile with the cgroups (recreate missing ones, finish interrupted
 * destroys, remove orphans). */
int journal_write(struct super *s, char *msg);
int journal_restore(struct super *s, int want_enf, char *msg);

/* Live pids of a cell (cgroup members, or tracked pids in affinity mode),
 * zombies excluded; at most cap. */
int cell_pids(struct super *s, struct cell *cell, pid_t *pids, int cap);
/* Whether pid runs in cell: in its cgroup, or in affinity mode a tracked
 * pid or a descendant of one (children inherit the affinity). */
bool cell_has_pid(struct super *s, struct cell *cell, pid_t pid);

/* ---- MCPs (mcp.c) ---- */

int mcp_op_register(struct super *s, const struct json *req,
		    struct req_ctx *c, struct json_w *w);
/* The connection conn closed: deregister its MCP, if any. */
void mcp_conn_closed(struct super *s, int conn);
/* The cell's cores changed: grant or revoke to match. */
void mcp_cell_changed(struct super *s, const char *cell);
/* Event-loop timeout while revocations are pending (ms), else -1. */
int mcp_timeout_ms(void);
/* Notice completed revocations, force those past their deadline. */
void mcp_tick(struct super *s);
/* The registrations, as a JSON array (journal) / per cell (listing). */
void mcp_journal_json(struct json_w *w);
void mcp_list_json(const char *cell, struct json_w *w);
/* MCPs registered in cell. */
int mcp_cell_count(const char *cell);
/* Add to win (initialised by the caller) the latency samples the MCPs of
 * cell published since the previous call (win NULL: only move the
 * baseline). Returns how many of them publish a histogram. */
int mcp_cell_latency(const char *cell, struct hist *win);

/* ---- the latency controller (latctl.c) ---- */

/* Read the optional "latency" field of a cell request (an object, or
 * null for none) into *out; *present says whether it was there. 0 or
 * req_fail()'s -EINVAL. */
int latctl_parse(const struct json *req, struct req_ctx *c,
		 struct lat_target *out, bool *present);
/* The target as a JSON value (object, or null when off). */
void latctl_target_json(const struct lat_target *t, struct json_w *w);
/* A cell's target or MCPs changed: restart its window from now. */
void latctl_restart(struct cell *cell);
/* Milliseconds until the next window ends, or -1 if none is running. */
int latctl_timeout_ms(struct super *s);
/* Measure the cells whose window ended, and move cores. */
void latctl_tick(struct super *s);
/* Add to win the samples of now that prev does not hold (a window's
 * samples from two cumulative snapshots of one histogram). */
void latctl_add_delta(struct hist *win, const struct hist *now,
		      const struct hist *prev);
/* Cell name is gone: loans from it become free-pool loans (no provision
 * backs them any more). */
void latctl_forget_lender(struct super *s, const char *name);
/* A managed core no cell holds, which cell may take as a core counted in
 * its reservation without breaking admission; with cell NULL, any core
 * no cell holds. -1 if none. */
int latctl_free_core(struct super *s, const struct cell *cell);
/* Give each frozen cell a free core, if one is free and admission allows
 * (after a destroy or a resize freed cores): it runs again. */
void latctl_thaw_free(struct super *s);
/* Record in the move ring a core moved by lend.c (which logs it):
 * direction "lend", "provision", "reclaim" or "return", the borrowing
 * cell, from and to ("" = the free pool), and why. */
void latctl_note_move(const char *direction, const char *cell,
		      const char *from, const char *to, int cpu,
		      const char *reason);
/* "cell.top": every cell with its load counters and latency figures, and
 * the recent core moves. Read-only. */
int latctl_op_top(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w);
/* The controller's summary for "status". */
void latctl_status_json(struct super *s, struct json_w *w);

/* Move core cpu from cell `from` to cell `to` (either NULL: the free
 * pool): both cgroups and affinities, IRQs of CG cells, the journal, then
 * the grants of both cells' MCPs (a revocation with its deadline for the
 * MCP losing the core; the gaining MCP is granted it once no slot holds
 * it). On failure nothing changed: -errno and a sentence in msg. */
int cell_move_core(struct super *s, struct cell *from, struct cell *to,
		   int cpu, char *msg);

/* ---- best-effort cores (lend.c) ---- */

/* One cell as Dominant Resource Fairness sees it. */
struct drf_cand {
	const char *name;
	int held;          /* cores held now, loans included */
	int want;          /* it asks for more while held < want */
	uint64_t mem;      /* memory limit, bytes; 0 = none */
	int priority;
};

/* Which of the n cells gets the next spare core: among those with held
 * < want, the lowest dominant share max(held / managed, mem / mem_total)
 * (a cell without a memory limit counts 0 for memory), ties to the
 * higher priority, then the smaller name. The index, or -1 if no cell
 * wants a core. Pure: no atolld state. */
int drf_pick(const struct drf_cand *c, int n, int managed,
	     uint64_t mem_total);
/* Bring the loans in line with the cells: loans of provisioned cores the
 * owner no longer leaves idle, and best-effort loans above a cell's want,
 * go back; then spare cores (free ones, and idle provisioned ones, as
 * loans owed to their owner) go one at a time to cells below their want,
 * by drf_pick(). Run after each change to the cells and each tick. */
void lend_settle(struct super *s);
/* Into out: the cores other cells hold on loan from owner's provision. */
void lend_owed(struct super *s, const char *owner, cpu_set_t *out);
/* Take back from their borrowers the cores of cpus lent from owner's
 * provision (the borrowers' MCPs get a revocation with its deadline).
 * 0, or -errno and msg (the cores taken back so far stay with owner). */
int lend_reclaim(struct super *s, struct cell *owner, const cpu_set_t *cpus,
		 char *msg);

/* Into out: the cores cells other than self (NULL: none) hold as
 * revocable loans (cell_loan_revocable()), which a request for cores
 * may take back as if they were free. */
void lend_revocable(struct super *s, const struct cell *self, cpu_set_t *out);
/* cell_reserved() of c once its revocable loans of the cores in revoked
 * are gone. */
int lend_reserved_without(const struct cell *c, const cpu_set_t *revoked);
/* A request of cell name takes back the revocable loans of cpus (all
 * checked before: nothing else stands in its way): each goes to the free
 * pool through cell_move_core() (the borrower's MCPs get a revocation
 * with its deadline), is logged with its reason and recorded as a
 * "reclaim" move to name when the request takes the core (in taken),
 * else to the free pool. 0, or -errno and msg (the cores taken back so
 * far stay free). */
int lend_revoke(struct super *s, const char *name, const cpu_set_t *cpus,
		const cpu_set_t *taken, char *msg);

/* Kill everything in a cell (SIGTERM, grace, SIGKILL), restore its IRQs
 * and remove its cgroup. */
int cell_teardown(struct super *s, struct cell *cell, int grace_ms,
		  struct notes *nt, char *msg);

/* ---- IRQs (irq.c) ---- */

/* Move IRQs off the cell's cores (CG class); records originals. */
void irq_isolate(struct super *s, struct cell *cell, struct notes *nt);
/* Put back what irq_isolate moved. */
void irq_restore(struct cell *cell, struct notes *nt);

/* ---- small file helpers (cgroup.c) ---- */
int file_write_str(const char *path, const char *s);
int file_read_str(const char *path, char *buf, size_t len);

#endif /* ATOLL_SUPER_INTERNAL_H */
