/* cell.c - cells: validation, create / resize / destroy / attach, one
 * core moved between cells (for the latency controller), and the state
 * journal.
 *
 * Design note. Every request is checked in full (types, ranges, names,
 * overlap, admission) against the current table before anything changes;
 * only then are the cgroups written, and a failure part-way undoes what
 * was done, so a refused request leaves no trace. The journal
 * (<state-dir>/cells.json) is rewritten whole after each change: temp
 * file, fsync, rename, fsync of the directory. Create writes the cgroup
 * first and the journal second (a crash in between leaves an orphan cgroup
 * that the next start removes, and the client never saw success); destroy
 * journals "destroying" first and tears down second (a crash in between is
 * finished by the next start). Admission: each cell reserves
 * max(cores held, cores provisioned), not counting cores it holds on loan
 * from another cell's provision (which reserves them: lend.c); the
 * reservations never exceed the cores this instance manages, so every
 * provision can be honoured, if need be by taking its lent cores back.
 *
 * A CG cell created with min_cores 0 may lose its last core to the latency
 * controller. It then holds no core (cpus empty) and is frozen: its
 * processes are stopped by the cgroup freezer and its cpuset stays on the
 * core it lost (parked_cpu), since the kernel refuses an empty cpuset to a
 * cgroup with tasks; they cannot run there while frozen. When a core comes
 * back, the cpuset and the affinities move to it first and the processes
 * are thawed last: apply() makes both transitions. A frozen cell is thawed
 * to be destroyed (frozen, its processes would take no signal).
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atoll/log.h>

void note_add(struct notes *nt, const char *fmt, ...)
{
	va_list ap;

	if (nt->n >= NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(nt->text[nt->n++], sizeof(nt->text[0]), fmt, ap);
	va_end(ap);
}


struct cell *cell_find(struct super *s, const char *name)
{
	for (int i = 0; i < s->ncells; i++)
		if (!strcmp(s->cells[i]->name, name))
			return s->cells[i];
	return NULL;
}

static int peer_index(const struct cell *cell, const char *peer)
{
	for (int i = 0; i < cell->npeers; i++)
		if (!strcmp(cell->peers[i], peer))
			return i;
	return -1;
}

static void peer_drop(struct cell *cell, int i)
{
	cell->npeers--;
	if (i != cell->npeers)
		memcpy(cell->peers[i], cell->peers[cell->npeers],
		       sizeof(cell->peers[0]));
}

static void cell_remove(struct super *s, struct cell *cell)
{
	/* A later cell of the same name must not inherit the allows, nor
	 * the cores lent by this one. */
	for (int i = 0; i < s->ncells; i++) {
		int k = peer_index(s->cells[i], cell->name);

		if (k >= 0)
			peer_drop(s->cells[i], k);
	}
	latctl_forget_lender(s, cell->name);
	for (int i = 0; i < s->ncells; i++) {
		if (s->cells[i] == cell) {
			s->cells[i] = s->cells[--s->ncells];
			break;
		}
	}
	free(cell);
}

static int ncores(const cpu_set_t *set)
{
	return CPU_COUNT(set);
}

int cell_reserved(const struct cell *c)
{
	int n = ncores(&c->cpus) - cell_prov_loans(c);

	return c->provision > n ? c->provision : n;
}

/* The cpus a cell's cpuset holds: its cores, or its parked cpu when it is
 * frozen. */
static cpu_set_t cpuset_of(const struct cell *cell)
{
	cpu_set_t set = cell->cpus;

	if (cell->frozen) {
		CPU_ZERO(&set);
		CPU_SET(cell->parked_cpu, &set);
	}
	return set;
}

/* ---- request field validation ---- */

static int check_keys(const struct json *req, const char *const *allowed,
		      struct req_ctx *c)
{
	char where[48];

	snprintf(where, sizeof(where), "a \"%.20s\" request",
		 json_get(req, "op")->s);
	return req_check_keys(req, allowed, where, c);
}

bool name_valid(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > PROTO_NAME_MAX || !isalnum((unsigned char)n[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_')
			return false;
	return true;
}

static int get_name(const struct json *req, struct req_ctx *c,
		    const char **out)
{
	const struct json *v = json_get(req, "name");

	if (!v)
		return req_fail(c, PROTO_E_BADREQ, "the field \"name\" is missing");
	if (v->type != JSON_STR)
		return req_fail(c, PROTO_E_BADREQ, "the field \"name\" must be a string");
	if (!name_valid(v->s))
		return req_fail(c, PROTO_E_BADREQ,
			    "cell name \"%.40s\" is invalid: use 1 to %d letters, digits, '-' or '_', starting with a letter or digit",
			    v->s, PROTO_NAME_MAX);
	*out = v->s;
	return 0;
}


static int get_str(const struct json *req, const char *key, struct req_ctx *c,
		   const char **out)
{
	const struct json *v = json_get(req, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->type != JSON_STR)
		return req_fail(c, PROTO_E_BADREQ, "the field \"%s\" must be a string",
			    key);
	*out = v->s;
	return 0;
}

struct spec {
	bool has_cores, has_cpus, has_mem, has_mems, has_class, has_prov;
	bool has_prio, has_lat, has_min, has_want;
	int cores;
	int want;
	cpu_set_t cpus;
	uint64_t mem;
	cpu_set_t mems;
	enum cell_class cls;
	int prov;
	int prio;
	int min_cores;
	struct lat_target lat;
};

static int parse_spec(struct super *s, const struct json *req,
		      struct req_ctx *c, struct spec *sp)
{
	int managed = ncores(&s->managed);
	char mlist[256], sz[32], sz2[32];
	const char *str;
	int64_t v;
	bool has;

	memset(sp, 0, sizeof(*sp));
	cpulist_format(&s->managed, mlist, sizeof(mlist));
	{
		const struct json *cv = json_get(req, "cores");

		if (cv && cv->type == JSON_NUM && cv->is_int &&
		    cv->i > managed && cv->i < INT32_MAX)
			return req_fail(c, PROTO_E_RANGE,
				    "too many cores: %lld requested but this atolld manages only %d (cpus %s)",
				    (long long)cv->i, managed, mlist);
	}
	/* 0 only parks a min_cores 0 cell (cell_op_resize) */
	if (req_get_int(req, "cores", 0, managed, c, &v, &has))
		return -EINVAL;
	sp->has_cores = has;
	sp->cores = (int)v;
	if (get_str(req, "cpus", c, &str))
		return -EINVAL;
	if (str) {
		int r = cpulist_parse(str, &sp->cpus);

		if (r)
			return req_fail(c, PROTO_E_BADREQ,
				    "\"cpus\": \"%.40s\" is not a cpu list like \"1-3,5\"",
				    str);
		if (CPU_COUNT(&sp->cpus) == 0)
			return req_fail(c, PROTO_E_RANGE,
				    "\"cpus\" is empty; a cell needs at least one core");
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &sp->cpus) && !CPU_ISSET(i, &s->managed))
				return req_fail(c, PROTO_E_RANGE,
					    "cpu %d is not managed by this atolld (it manages %s)",
					    i, mlist);
		sp->has_cpus = true;
	}
	if (sp->has_cores && sp->has_cpus)
		return req_fail(c, PROTO_E_BADREQ,
			    "give either \"cores\" (a count) or \"cpus\" (a list), not both");
	if (req_get_int(req, "mem", 0, INT64_MAX, c, &v, &has))
		return -EINVAL;
	if (has) {
		sp->has_mem = true;
		sp->mem = (uint64_t)v;
		if (sp->mem && sp->mem < (1u << 20))
			return req_fail(c, PROTO_E_RANGE,
				    "memory limit of %llu bytes is below the minimum of 1M (0 means unlimited)",
				    (unsigned long long)sp->mem);
		if (sp->mem > s->inv.mem_total) {
			size_format(sp->mem, sz, sizeof(sz));
			size_format(s->inv.mem_total, sz2, sizeof(sz2));
			return req_fail(c, PROTO_E_RANGE,
				    "memory limit %s exceeds the node's memory (%s)",
				    sz, sz2);
		}
	}
	if (get_str(req, "mems", c, &str))
		return -EINVAL;
	if (str) {
		if (cpulist_parse(str, &sp->mems) || CPU_COUNT(&sp->mems) == 0)
			return req_fail(c, PROTO_E_BADREQ,
				    "\"mems\": \"%.40s\" is not a non-empty NUMA node list",
				    str);
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &sp->mems) &&
			    !CPU_ISSET(i, &s->inv.mem_nodes))
				return req_fail(c, PROTO_E_RANGE,
					    "NUMA node %d does not exist or has no memory",
					    i);
		sp->has_mems = true;
	}
	if (get_str(req, "class", c, &str))
		return -EINVAL;
	if (str) {
		if (!strcmp(str, "ll"))
			sp->cls = CLASS_LL;
		else if (!strcmp(str, "cg"))
			sp->cls = CLASS_CG;
		else
			return req_fail(c, PROTO_E_BADREQ,
				    "\"class\" must be \"ll\" or \"cg\", not \"%.20s\"",
				    str);
		sp->has_class = true;
	}
	if (req_get_int(req, "provision", 0, managed, c, &v, &has))
		return -EINVAL;
	sp->has_prov = has;
	sp->prov = (int)v;
	if (req_get_int(req, "priority", 0, PRIORITY_MAX, c, &v, &has))
		return -EINVAL;
	sp->has_prio = has;
	sp->prio = (int)v;
	if (req_get_int(req, "min_cores", 0, 1, c, &v, &has))
		return -EINVAL;
	sp->has_min = has;
	sp->min_cores = (int)v;
	if (req_get_int(req, "want", 0, managed, c, &v, &has))
		return -EINVAL;
	sp->has_want = has;
	sp->want = (int)v;
	return latctl_parse(req, c, &sp->lat, &sp->has_lat);
}

/* Why this atolld cannot freeze cells. */
static const char *no_freezer_reason(const struct enforcer *e)
{
	switch (e->kind) {
	case ENF_V2:
		return "the cgroup2 hierarchy has no cgroup.freeze (Linux 5.2 or later has)";
	case ENF_V1:
		return "no cgroup v1 freezer hierarchy is mounted";
	case ENF_AFFINITY:
		break;
	}
	return "enforcement is affinity-only";
}

/* min_cores 0 (squeezable) needs a CG cell, a freezer and no MCP (its
 * vcores are granted, not frozen); a frozen cell stays squeezable until
 * it gets cores. cls and cpus: the cell's after the request. */
static int check_min_cores(struct super *s, const char *name,
			   const struct cell *self, const struct spec *sp,
			   enum cell_class cls, const cpu_set_t *cpus,
			   struct req_ctx *c)
{
	bool squeezable = sp->has_min ? sp->min_cores == 0 :
			  self && self->squeezable;
	int mcps = self ? mcp_cell_count(name) : 0;

	if (!squeezable) {
		if (sp->has_cores && !sp->cores)
			return req_fail(c, PROTO_E_RANGE,
				    "cell '%s': 0 cores parks a cell (frozen, holding none), which needs min_cores 0 (class cg)",
				    name);
		if (!ncores(cpus))
			return req_fail(c, PROTO_E_RANGE,
				    "cell '%s' holds no core (it is frozen); give it cores (\"cores\" or \"cpus\") in the same request to make its min_cores 1",
				    name);
		return 0;
	}
	if (cls != CLASS_CG)
		return req_fail(c, PROTO_E_BADREQ,
			    "cell '%s': min_cores 0 is for coarse-grained cells (class cg): a cell squeezed to no core has its processes frozen",
			    name);
	if (!enf_can_freeze(&s->enf))
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s': min_cores 0 needs a cgroup freezer to stop the cell's processes while it holds no core, and this atolld has none: %s",
			    name, no_freezer_reason(&s->enf));
	if (mcps)
		return req_fail(c, PROTO_E_ADMISSION,
			    "cell '%s' runs %d many-core processes, whose cores are granted and revoked, never frozen; its min_cores stays 1",
			    name, mcps);
	return 0;
}

/* Cores other cells hold on loan from the latency controller out of the
 * free pool: not revocable (lend.c), named in a refusal. */
static int latctl_held(struct super *s, const struct cell *self)
{
	int n = 0;

	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; s->cells[i] != self && k < s->cells[i]->nloans; k++)
			n += !s->cells[i]->loans[k].drf &&
			     !s->cells[i]->loans[k].prov;
	return n;
}

/* The sum of the reservations of the cells other than self once the
 * revocable loans of revoked are taken back. */
static int others_reserved(struct super *s, const struct cell *self,
			   const cpu_set_t *revoked)
{
	int n = 0;

	for (int i = 0; i < s->ncells; i++)
		if (s->cells[i] != self)
			n += lend_reserved_without(s->cells[i], revoked);
	return n;
}

/* A refusal for cores held by the latency controller says so. */
static void latctl_hint(struct super *s, const struct cell *self, char *buf,
			size_t len)
{
	int n = latctl_held(s, self);

	buf[0] = '\0';
	if (n)
		snprintf(buf, len,
			 "; %d of them %s lent by the latency controller, which gives %s back by its own rules",
			 n, n == 1 ? "is" : "are", n == 1 ? "it" : "them");
}

/* Choose the cores of a cell named name (self: its current state or NULL)
 * and check exclusivity and admission. Cores other cells hold on loan
 * from its provision are its own to take back (lend_reclaim()), and a
 * growing cell takes them before free cores. Best-effort cores lent from
 * the free pool count as free (lend.c): a growing cell takes them after
 * the truly free ones, and more of them are taken back if admission
 * needs it; *revoke gets them all (lend_revoke() once the request is
 * validated). */
static int place(struct super *s, const char *name, const struct cell *self,
		 const struct spec *sp, struct req_ctx *c, cpu_set_t *out,
		 cpu_set_t *revoke)
{
	cpu_set_t others, want, owed, revocable;
	int other_res, m = ncores(&s->managed), n, prov;
	char hint[160];

	lend_owed(s, name, &owed);
	lend_revocable(s, self, &revocable);
	CPU_ZERO(revoke);
	CPU_ZERO(&others);
	for (int i = 0; i < s->ncells; i++) {
		if (s->cells[i] == self)
			continue;
		CPU_OR(&others, &others, &s->cells[i]->cpus);
	}
	/* Others' reservations do not count the owed cores: they are in
	 * this cell's provision. */
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &owed))
			CPU_CLR(i, &others);
	if (sp->has_cpus) {
		want = sp->cpus;
		for (int i = 0; i < CPU_SETSIZE; i++) {
			if (!CPU_ISSET(i, &want) || !CPU_ISSET(i, &others))
				continue;
			if (CPU_ISSET(i, &revocable)) {
				CPU_SET(i, revoke);
				continue;
			}
			for (int k = 0; k < s->ncells; k++)
				if (CPU_ISSET(i, &s->cells[k]->cpus))
					return req_fail(c, PROTO_E_BUSY,
						    "cell '%s': cpu %d belongs to cell '%s'; cores are exclusive",
						    name, i, s->cells[k]->name);
		}
	} else if (sp->has_cores) {
		int have = 0;

		CPU_ZERO(&want);
		if (self) {
			/* keep the lowest of the current cores */
			for (int i = 0; i < CPU_SETSIZE && have < sp->cores; i++)
				if (CPU_ISSET(i, &self->cpus)) {
					CPU_SET(i, &want);
					have++;
				}
		}
		/* then its provisioned cores on loan, as Akaros does: they
		 * are its own, and free cores stay for the others */
		for (int i = 0; i < CPU_SETSIZE && have < sp->cores; i++)
			if (CPU_ISSET(i, &owed)) {
				CPU_SET(i, &want);
				have++;
			}
		for (int i = 0; i < CPU_SETSIZE && have < sp->cores; i++)
			if (CPU_ISSET(i, &s->managed) && !CPU_ISSET(i, &others) &&
			    !CPU_ISSET(i, &want)) {
				CPU_SET(i, &want);
				have++;
			}
		/* then best-effort cores: lent until someone asks */
		for (int i = 0; i < CPU_SETSIZE && have < sp->cores; i++)
			if (CPU_ISSET(i, &revocable) && !CPU_ISSET(i, &want)) {
				CPU_SET(i, &want);
				CPU_SET(i, revoke);
				have++;
			}
		if (have < sp->cores) {
			latctl_hint(s, self, hint, sizeof(hint));
			return req_fail(c, PROTO_E_NOCORES,
				    "cell '%s': %d cores requested but only %d are free or lent as best-effort cores (which a request takes back)%s",
				    name, sp->cores,
				    m - ncores(&others) + ncores(&revocable),
				    hint);
		}
	} else {
		want = self->cpus;
	}
	n = ncores(&want);
	/* Cores unchanged keep their loans: those from a provision are
	 * reserved by it (cell_reserved()). */
	if (!sp->has_cpus && !sp->has_cores)
		n -= cell_prov_loans(self);
	prov = sp->has_prov ? sp->prov : (self ? self->provision : 0);
	other_res = others_reserved(s, self, revoke);
	/* Admission: best-effort cores never block a guarantee either;
	 * take back more of them (to the free pool) while it helps. */
	for (int i = 0; i < CPU_SETSIZE &&
	     other_res + (prov > n ? prov : n) > m; i++) {
		int res;

		if (!CPU_ISSET(i, &revocable) || CPU_ISSET(i, revoke))
			continue;
		CPU_SET(i, revoke);
		res = others_reserved(s, self, revoke);
		if (res < other_res)
			other_res = res;
		else
			CPU_CLR(i, revoke);  /* it reserves nothing: keep it */
	}
	if (other_res + (prov > n ? prov : n) > m) {
		latctl_hint(s, self, hint, sizeof(hint));
		if (prov > n)
			return req_fail(c, PROTO_E_ADMISSION,
				    "cell '%s': a provision of %d cores cannot be honoured: %d of the %d managed cores are held or guaranteed by other cells%s",
				    name, prov, other_res, m, hint);
		return req_fail(c, PROTO_E_NOCORES,
			    "cell '%s': %d cores requested but %d of the %d managed cores are held or guaranteed by other cells%s",
			    name, n, other_res, m, hint);
	}
	*out = want;
	return 0;
}

/* The want of cell name after the request (self: its state before, or
 * NULL), own: the cores it holds of its own after it. Given, it may not
 * be below own; else a new cell wants its cores, and a cell follows its
 * own cores unless it asked for more. */
static int want_of(const struct spec *sp, const struct cell *self, int own,
		   const char *name, struct req_ctx *c, int *out)
{
	if (sp->has_want) {
		if (sp->want < own)
			return req_fail(c, PROTO_E_RANGE,
				    "cell '%s': a want of %d cores is below the %d cores it holds of its own; want counts them (give at least %d)",
				    name, sp->want, own, own);
		*out = sp->want;
	} else if (!self || self->want <= ncores(&self->cpus) - self->nloans) {
		*out = own;
	} else {
		*out = self->want > own ? self->want : own;
	}
	return 0;
}

/* ---- applying a configuration ---- */

/* Give every thread of every process in the cell the cell's cores. The
 * cpuset alone is not enough: since Linux 6.2 a mask set with
 * sched_setaffinity() survives a cpuset change (intersected with it), so
 * a cell that grows would not be used. */
static void reaffine(struct super *s, struct cell *cell,
		     const cpu_set_t *cpus)
{
	pid_t pids[1024];
	int n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));

	for (int i = 0; i < n; i++)
		affinity_set_all(pids[i], cpus);
}

static int lowest_cpu(const cpu_set_t *set)
{
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, set))
			return i;
	return -1;
}

/* Give cell's cgroup these cores and memory; on failure undo and return
 * -errno with msg. Does not touch IRQs, class or provision. No cores
 * (cpus empty) freezes the cell; cores for a frozen cell thaw it. */
static int apply(struct super *s, struct cell *cell, const cpu_set_t *cpus,
		 const cpu_set_t *mems, uint64_t mem, char *msg)
{
	bool squeeze = !ncores(cpus) && !cell->frozen;
	bool thaw = cell->frozen && ncores(cpus);
	cpu_set_t before = cpuset_of(cell);
	bool cpus_done = false, mems_done = false, mem_done = false;
	int r = 0;

	if (squeeze) {
		r = enf_cell_freeze(&s->enf, cell->name, true, msg);
		if (r)
			goto undo;
		cpus_done = true;
	} else if (!CPU_EQUAL(&cell->cpus, cpus)) {
		r = enf_cell_set_cpus(&s->enf, cell->name, cpus, msg);
		if (r)
			goto undo;
		cpus_done = true;
	}
	if (!CPU_EQUAL(&cell->mems, mems)) {
		r = enf_cell_set_mems(&s->enf, cell->name, mems, msg);
		if (r)
			goto undo;
		mems_done = true;
	}
	if (cell->mem != mem) {
		r = enf_cell_set_mem(&s->enf, cell->name, mem, msg);
		if (r)
			goto undo;
		mem_done = true;
	}
	if (thaw) {
		/* On their new cores before they run again. */
		reaffine(s, cell, cpus);
		r = enf_cell_freeze(&s->enf, cell->name, false, msg);
		if (r) {
			reaffine(s, cell, &before);
			goto undo;
		}
		cell->frozen = false;
	}
	if (squeeze) {
		cell->frozen = true;
		cell->parked_cpu = lowest_cpu(&cell->cpus);
	}
	cell->cpus = *cpus;
	cell->mems = *mems;
	cell->mem = mem;
	if (!cell->frozen)
		reaffine(s, cell, cpus);
	return 0;
undo:
	{
		char ignore[MSG_MAX];

		if (mem_done)
			enf_cell_set_mem(&s->enf, cell->name, cell->mem, ignore);
		if (mems_done)
			enf_cell_set_mems(&s->enf, cell->name, &cell->mems, ignore);
		if (cpus_done && squeeze)
			enf_cell_freeze(&s->enf, cell->name, false, ignore);
		else if (cpus_done)
			enf_cell_set_cpus(&s->enf, cell->name, &before, ignore);
	}
	return r;
}

/* apply() with only the cores changed. */
static int apply_cpus(struct super *s, struct cell *cell,
		      const cpu_set_t *cpus, char *msg)
{
	return apply(s, cell, cpus, &cell->mems, cell->mem, msg);
}

/* IRQs follow the class and the cores: a CG cell keeps the IRQs off its
 * cores. was_cg and old_cpus: before the change; will_cg: after it. */
static void irqs_follow(struct super *s, struct cell *cell, bool was_cg,
			bool will_cg, const cpu_set_t *old_cpus,
			struct notes *nt)
{
	bool moved = !CPU_EQUAL(old_cpus, &cell->cpus);

	if (was_cg && (!will_cg || moved))
		irq_restore(cell, nt);
	cell->cls = will_cg ? CLASS_CG : CLASS_LL;
	if (will_cg && (!was_cg || moved))
		irq_isolate(s, cell, nt);
}

/* ---- operations ---- */

static const char *const create_keys[] = { "op", "name", "cores", "cpus",
	"mem", "mems", "class", "provision", "priority", "latency",
	"min_cores", "want", NULL };

int cell_op_create(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w)
{
	struct spec sp;
	const char *name;
	struct cell *cell;
	char msg[MSG_MAX];
	cpu_set_t cpus, revoke;
	int r, want = 0;

	if (check_keys(req, create_keys, c) || get_name(req, c, &name) ||
	    parse_spec(s, req, c, &sp))
		return -EINVAL;
	if (!sp.has_cores && !sp.has_cpus)
		return req_fail(c, PROTO_E_BADREQ,
			    "cell '%s': say how many cores (\"cores\") or which (\"cpus\")",
			    name);
	if (sp.has_cores && !sp.cores)
		return req_fail(c, PROTO_E_RANGE,
			    "cell '%s': the field \"cores\" is 0; a new cell needs at least 1 core",
			    name);
	if (cell_find(s, name))
		return req_fail(c, PROTO_E_EXISTS, "cell '%s' already exists", name);
	if (s->ncells >= CELLS_MAX)
		return req_fail(c, PROTO_E_LIMIT, "cell '%s': this atolld already has %d cells, the most it holds",
			    name, CELLS_MAX);
	if (place(s, name, NULL, &sp, c, &cpus, &revoke) ||
	    check_min_cores(s, name, NULL, &sp,
			    sp.has_class ? sp.cls : CLASS_LL, &cpus, c) ||
	    want_of(&sp, NULL, ncores(&cpus), name, c, &want))
		return -EINVAL;
	/* Best-effort cores in the way go back to the free pool first
	 * (revocations with their deadline in their borrowers' MCPs). */
	if (CPU_COUNT(&revoke) && lend_revoke(s, name, &revoke, &cpus, msg))
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s' not created; the best-effort cores taken back so far are free: %s",
			    name, msg);

	cell = calloc(1, sizeof(*cell));
	if (!cell)
		return req_fail(c, PROTO_E_SYSTEM, "cell '%s': out of memory", name);
	snprintf(cell->name, sizeof(cell->name), "%s", name);
	cell->cls = sp.has_class ? sp.cls : CLASS_LL;
	cell->cpus = cpus;
	cell->mems = sp.has_mems ? sp.mems : s->inv.mem_nodes;
	cell->mem = sp.has_mem ? sp.mem : 0;
	cell->provision = sp.has_prov ? sp.prov : 0;
	cell->priority = sp.has_prio ? sp.prio : 0;
	cell->want = want;
	cell->squeezable = sp.has_min && sp.min_cores == 0;
	cell->lat = sp.lat;
	latctl_restart(cell);
	r = enf_cell_create(&s->enf, name, &cell->cpus, &cell->mems, cell->mem,
			    msg);
	if (r) {
		free(cell);
		return req_fail(c, PROTO_E_SYSTEM, "cell '%s': %s", name, msg);
	}
	s->cells[s->ncells++] = cell;
	if (cell->cls == CLASS_CG)
		irq_isolate(s, cell, &c->notes);
	r = journal_write(s, msg);
	if (r) {
		struct notes ignore = { 0 };

		irq_restore(cell, &ignore);
		enf_cell_rmdir(&s->enf, name, c->msg);
		cell_remove(s, cell);
		return req_fail(c, PROTO_E_SYSTEM, "cell '%s' not created: %s",
			    name, msg);
	}
	LOG_INFO("cell '%s' created", name);
	lend_settle(s);
	jw_key(w, "cell");
	cell_json(s, cell, w);
	return 0;
}

static const char *const resize_keys[] = { "op", "name", "cores", "cpus",
	"mem", "mems", "class", "provision", "priority", "latency",
	"min_cores", "want", NULL };

int cell_op_resize(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w)
{
	struct spec sp;
	const char *name;
	struct cell *cell, to, old;
	char msg[MSG_MAX];
	cpu_set_t owed, revoke;
	int r, want = 0;

	if (check_keys(req, resize_keys, c) || get_name(req, c, &name) ||
	    parse_spec(s, req, c, &sp))
		return -EINVAL;
	cell = cell_find(s, name);
	if (!cell)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' does not exist", name);
	if (cell->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' is being destroyed",
			    name);
	if (!sp.has_cores && !sp.has_cpus && !sp.has_mem && !sp.has_mems &&
	    !sp.has_class && !sp.has_prov && !sp.has_prio && !sp.has_lat &&
	    !sp.has_min && !sp.has_want)
		return req_fail(c, PROTO_E_BADREQ,
			    "cell '%s': a resize needs at least one of cores, cpus, mem, mems, class, provision, priority, latency, min_cores, want",
			    name);
	to = *cell;
	/* A resize that changes the cores makes them all its own. */
	if (place(s, name, cell, &sp, c, &to.cpus, &revoke) ||
	    check_min_cores(s, name, cell, &sp,
			    sp.has_class ? sp.cls : cell->cls, &to.cpus, c) ||
	    want_of(&sp, cell, CPU_EQUAL(&to.cpus, &cell->cpus) ?
		    ncores(&cell->cpus) - cell->nloans : ncores(&to.cpus),
		    name, c, &want))
		return -EINVAL;
	/* The owner asks for its provisioned cores: their borrowers give
	 * them back first (revocations with their deadline in their MCPs). */
	lend_owed(s, name, &owed);
	CPU_AND(&owed, &owed, &to.cpus);
	if (CPU_COUNT(&owed) && lend_reclaim(s, cell, &owed, msg))
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s' unchanged but for the provisioned cores taken back so far: %s",
			    name, msg);
	/* Best-effort cores in the way go back to the free pool. */
	if (CPU_COUNT(&revoke) && lend_revoke(s, name, &revoke, &to.cpus, msg))
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s' unchanged; the best-effort cores taken back so far are free: %s",
			    name, msg);
	if (sp.has_mems)
		to.mems = sp.mems;
	if (sp.has_mem)
		to.mem = sp.mem;
	if (sp.has_prov)
		to.provision = sp.prov;
	old = *cell;
	r = apply(s, cell, &to.cpus, &to.mems, to.mem, msg);
	if (r)
		return req_fail(c, PROTO_E_SYSTEM, "cell '%s' unchanged: %s", name,
			    msg);
	cell->provision = to.provision;
	cell->want = want;
	irqs_follow(s, cell, old.cls == CLASS_CG,
		    sp.has_class ? sp.cls == CLASS_CG : old.cls == CLASS_CG,
		    &old.cpus, &c->notes);
	if (sp.has_prio)
		cell->priority = sp.prio;
	if (sp.has_min)
		cell->squeezable = sp.min_cores == 0;
	if (sp.has_lat)
		cell->lat = sp.lat;
	/* The operator's cores are the cell's own from now on. */
	if (!CPU_EQUAL(&old.cpus, &cell->cpus))
		cell->nloans = 0;
	r = journal_write(s, msg);
	if (r) {
		char ignore[MSG_MAX];

		if (cell->cls != old.cls) {
			if (cell->cls == CLASS_CG)
				irq_restore(cell, &c->notes);
		}
		cell->cls = old.cls;
		cell->priority = old.priority;
		cell->squeezable = old.squeezable;
		cell->lat = old.lat;
		cell->nloans = old.nloans;
		cell->provision = old.provision;
		cell->want = old.want;
		apply(s, cell, &old.cpus, &old.mems, old.mem, ignore);
		return req_fail(c, PROTO_E_SYSTEM, "cell '%s' unchanged: %s", name,
			    msg);
	}
	if (sp.has_lat)
		latctl_restart(cell);
	LOG_INFO("cell '%s' resized", name);
	mcp_cell_changed(s, name); /* grants follow the cores */
	latctl_thaw_free(s);
	lend_settle(s);
	jw_key(w, "cell");
	cell_json(s, cell, w);
	return 0;
}

/* Give cell its cores old_cpus back after part of a move (IRQs follow). */
static void cpus_restore(struct super *s, struct cell *cell,
			 const cpu_set_t *old_cpus, struct notes *nt)
{
	cpu_set_t moved = cell->cpus;
	bool cg = cell->cls == CLASS_CG;
	char ignore[MSG_MAX];

	if (!apply_cpus(s, cell, old_cpus, ignore))
		irqs_follow(s, cell, cg, cg, &moved, nt);
}

int cell_move_core(struct super *s, struct cell *from, struct cell *to,
		   int cpu, char *msg)
{
	cpu_set_t from_old, to_old, set;
	struct notes nt = { 0 };
	char ignore[MSG_MAX];
	int r;

	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &s->managed)) {
		snprintf(msg, MSG_MAX, "cpu %d is not managed by this atolld", cpu);
		return -EINVAL;
	}
	if (from && !CPU_ISSET(cpu, &from->cpus)) {
		snprintf(msg, MSG_MAX, "cpu %d is not in cell '%s'", cpu,
			 from->name);
		return -EINVAL;
	}
	if (to && CPU_ISSET(cpu, &to->cpus)) {
		snprintf(msg, MSG_MAX, "cell '%s' already holds cpu %d", to->name,
			 cpu);
		return -EINVAL;
	}
	if (from && ncores(&from->cpus) == 1 && !from->squeezable) {
		snprintf(msg, MSG_MAX,
			 "cell '%s' would hold no core, and its min_cores is 1",
			 from->name);
		return -EINVAL;
	}
	if (from) {
		from_old = from->cpus;
		set = from->cpus;
		CPU_CLR(cpu, &set);
		r = apply_cpus(s, from, &set, msg);
		if (r)
			return r;
	}
	if (to) {
		to_old = to->cpus;
		set = to->cpus;
		CPU_SET(cpu, &set);
		r = apply_cpus(s, to, &set, msg);
		if (r) {
			if (from)
				apply_cpus(s, from, &from_old, ignore);
			return r;
		}
	}
	if (from)
		irqs_follow(s, from, from->cls == CLASS_CG, from->cls == CLASS_CG,
			    &from_old, &nt);
	if (to)
		irqs_follow(s, to, to->cls == CLASS_CG, to->cls == CLASS_CG,
			    &to_old, &nt);
	r = journal_write(s, msg);
	if (r) {
		if (to)
			cpus_restore(s, to, &to_old, &nt);
		if (from)
			cpus_restore(s, from, &from_old, &nt);
	}
	for (int i = 0; i < nt.n; i++)
		LOG_INFO("%s", nt.text[i]);
	if (r)
		return r;
	/* The loser first: its MCP's slot on cpu is revoked before the
	 * gainer's rebalance looks for a free core. */
	if (from)
		mcp_cell_changed(s, from->name);
	if (to)
		mcp_cell_changed(s, to->name);
	return 0;
}

/* Live pids of a cell (cgroup members, or tracked pids in affinity mode),
 * zombies excluded. */
int cell_pids(struct super *s, struct cell *cell, pid_t *pids, int cap)
{
	int n = cap, k = 0;

	if (s->enf.kind == ENF_AFFINITY) {
		for (int i = 0; i < cell->npids && k < cap; i++)
			if (proc_start_time(cell->pids[i].pid) == cell->pids[i].start)
				pids[k++] = cell->pids[i].pid;
		n = k;
	} else if (enf_cell_pids(&s->enf, cell->name, pids, &n)) {
		return 0;
	}
	if (n > cap)
		n = cap;
	k = 0;
	for (int i = 0; i < n; i++) {
		char path[64], buf[512], *p;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
		if (file_read_str(path, buf, sizeof(buf)))
			continue;
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
			continue;
		pids[k++] = pids[i];
	}
	return k;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int cell_teardown(struct super *s, struct cell *cell, int grace_ms,
		  struct notes *nt, char *msg)
{
	pid_t pids[1024];
	int n, waited = 0, killed = 0;

	/* A frozen process takes no signal, not even SIGKILL. */
	if (cell->squeezable &&
	    enf_cell_freeze(&s->enf, cell->name, false, msg))
		return -EBUSY;
	for (int sig_round = 0; sig_round < 2; sig_round++) {
		int sig = sig_round == 0 ? SIGTERM : SIGKILL;
		int budget = sig_round == 0 ? grace_ms : 5000;

		n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));
		if (n == 0)
			break;
		for (waited = 0;; waited += 10) {
			for (int i = 0; i < n; i++)
				if (kill(pids[i], sig) == 0 && waited == 0)
					killed++;
			if (waited >= budget)
				break;
			sleep_ms(10);
			n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));
			if (n == 0)
				break;
		}
	}
	n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));
	if (n) {
		snprintf(msg, MSG_MAX, "%d processes of cell '%s' survived SIGKILL",
			 n, cell->name);
		return -EBUSY;
	}
	if (killed)
		note_add(nt, "cell '%s': %d processes were stopped", cell->name,
			 killed);
	irq_restore(cell, nt);
	/* A process that just exited may still be charged for a moment. */
	for (int i = 0; i < 100; i++) {
		if (!enf_cell_rmdir(&s->enf, cell->name, msg))
			return 0;
		sleep_ms(10);
	}
	return -EBUSY;
}

static const char *const destroy_keys[] = { "op", "name", "grace_ms", NULL };

int cell_op_destroy(struct super *s, const struct json *req,
		    struct req_ctx *c, struct json_w *w)
{
	const char *name;
	struct cell *cell;
	char msg[MSG_MAX];
	int64_t grace = s->grace_ms_default;
	bool has;
	int r;

	if (check_keys(req, destroy_keys, c) || get_name(req, c, &name) ||
	    req_get_int(req, "grace_ms", 0, 60000, c, &grace, &has))
		return -EINVAL;
	cell = cell_find(s, name);
	if (!cell)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' does not exist", name);
	if (!cell->destroying) {
		cell->destroying = true;
		r = journal_write(s, msg);
		if (r) {
			cell->destroying = false;
			return req_fail(c, PROTO_E_SYSTEM, "cell '%s' not destroyed: %s",
				    name, msg);
		}
	}
	r = cell_teardown(s, cell, (int)grace, &c->notes, msg);
	if (r)
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s' is only partly destroyed (retry the destroy): %s",
			    name, msg);
	cell_remove(s, cell);
	r = journal_write(s, msg);
	if (r)
		note_add(&c->notes, "the journal could not be rewritten: %s", msg);
	LOG_INFO("cell '%s' destroyed", name);
	latctl_thaw_free(s);
	lend_settle(s);
	jw_kstr(w, "destroyed", name);
	return 0;
}

static const char *const attach_keys[] = { "op", "name", "pid", NULL };

/* Forget pid, and every dead pid, in cell's tracked list (affinity mode). */
static void untrack_pid(struct cell *cell, pid_t pid)
{
	int k = 0;

	for (int i = 0; i < cell->npids; i++)
		if (cell->pids[i].pid != pid &&
		    proc_start_time(cell->pids[i].pid) == cell->pids[i].start)
			cell->pids[k++] = cell->pids[i];
	cell->npids = k;
}

int cell_op_attach(struct super *s, const struct json *req, struct req_ctx *c,
		   struct json_w *w)
{
	const char *name;
	struct cell *cell;
	char msg[MSG_MAX];
	int64_t pid = 0;
	bool has;
	uint64_t st;
	cpu_set_t set;
	int r;

	if (check_keys(req, attach_keys, c) || get_name(req, c, &name) ||
	    req_get_int(req, "pid", 1, INT32_MAX, c, &pid, &has))
		return -EINVAL;
	if (!has)
		return req_fail(c, PROTO_E_BADREQ, "the field \"pid\" is missing");
	cell = cell_find(s, name);
	if (!cell)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' does not exist", name);
	if (cell->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' is being destroyed",
			    name);
	if (c->peer_uid != 0 && pid != c->peer_pid)
		return req_fail(c, PROTO_E_PERM,
			    "only root may move another process (pid %lld) into a cell",
			    (long long)pid);
	st = proc_start_time((pid_t)pid);
	if (!st)
		return req_fail(c, PROTO_E_NOPROC, "process %lld does not exist",
			    (long long)pid);
	if (s->enf.kind == ENF_AFFINITY) {
		untrack_pid(cell, 0);	/* forget dead pids first */
		if (cell->npids >= CELL_PIDS_MAX)
			return req_fail(c, PROTO_E_LIMIT,
				    "cell '%s' already tracks %d processes, the most affinity-only mode follows",
				    name, CELL_PIDS_MAX);
	} else {
		r = enf_cell_attach(&s->enf, name, (pid_t)pid, msg);
		if (!r && cell->frozen)
			r = enf_cell_freeze(&s->enf, name, true, msg);
		if (r)
			return req_fail(c, r == -ESRCH ? PROTO_E_NOPROC : PROTO_E_SYSTEM,
				    "cell '%s': %s", name, msg);
	}
	set = cpuset_of(cell);
	r = affinity_set_all((pid_t)pid, &set);
	if (r && r != -ESRCH && s->enf.kind == ENF_AFFINITY)
		return req_fail(c, PROTO_E_SYSTEM,
			    "cell '%s': cannot set the affinity of pid %lld: %s",
			    name, (long long)pid, strerror(-r));
	if (s->enf.kind == ENF_AFFINITY) {
		/* A process is in one cell: moving it forgets it elsewhere,
		 * as a cgroup move does. */
		for (int j = 0; j < s->ncells; j++)
			untrack_pid(s->cells[j], (pid_t)pid);
		cell->pids[cell->npids].pid = (pid_t)pid;
		cell->pids[cell->npids].start = st;
		cell->npids++;
		if (journal_write(s, msg))
			note_add(&c->notes, "the journal could not be rewritten: %s",
				 msg);
	}
	LOG_INFO("pid %lld attached to cell '%s'", (long long)pid, name);
	jw_key(w, "cell");
	cell_json(s, cell, w);
	return 0;
}

/* ---- channel permissions: cell.allow, cell.deny, chan.check ---- */

/* A required string field naming a cell, valid as a name. */
static int get_cell_field(const struct json *req, const char *key,
			  struct req_ctx *c, const char **out)
{
	const struct json *v = json_get(req, key);

	if (!v)
		return req_fail(c, PROTO_E_BADREQ, "the field \"%s\" is missing", key);
	if (v->type != JSON_STR)
		return req_fail(c, PROTO_E_BADREQ, "the field \"%s\" must be a string",
			    key);
	if (!name_valid(v->s))
		return req_fail(c, PROTO_E_BADREQ,
			    "the field \"%s\": cell name \"%.40s\" is invalid: use 1 to %d letters, digits, '-' or '_', starting with a letter or digit",
			    key, v->s, PROTO_NAME_MAX);
	*out = v->s;
	return 0;
}

/* "borrowed": the cores the cell holds on loan. */
static void loans_json(const struct cell *cell, struct json_w *w)
{
	jw_key(w, "borrowed");
	jw_arr(w);
	for (int i = 0; i < cell->nloans; i++) {
		jw_obj(w);
		jw_kint(w, "cpu", cell->loans[i].cpu);
		jw_kstr(w, "from", cell->loans[i].from);
		/* only when set: the latency controller's loans read as
		 * before */
		if (cell->loans[i].prov)
			jw_kbool(w, "provisioned", true);
		if (cell->loans[i].drf)
			jw_kbool(w, "best_effort", true);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void peers_json(const struct cell *cell, struct json_w *w)
{
	jw_key(w, "allowed_peers");
	jw_arr(w);
	for (int i = 0; i < cell->npeers; i++)
		jw_str(w, cell->peers[i]);
	jw_arr_end(w);
}

static const char *const allow_keys[] = { "op", "cell", "peer", NULL };

int cell_op_allow(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w, bool allow)
{
	const char *name, *peer, *op = allow ? "cell.allow" : "cell.deny";
	struct cell *cell;
	char msg[MSG_MAX];
	char saved[PROTO_NAME_MAX + 1];
	int k, r;

	if (check_keys(req, allow_keys, c) ||
	    get_cell_field(req, "cell", c, &name) ||
	    get_cell_field(req, "peer", c, &peer))
		return -EINVAL;
	if (!strcmp(name, peer))
		return req_fail(c, PROTO_E_BADREQ,
			    "%s: a cell needs no permission for channels within itself ('%s')",
			    op, name);
	cell = cell_find(s, name);
	if (!cell)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' does not exist", name);
	if (!cell_find(s, peer))
		return req_fail(c, PROTO_E_NOCELL, "peer cell '%s' does not exist",
			    peer);
	if (cell->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' is being destroyed",
			    name);
	k = peer_index(cell, peer);
	if (allow && k < 0) {
		if (cell->npeers >= CELL_PEERS_MAX)
			return req_fail(c, PROTO_E_LIMIT,
				    "cell '%s' already allows %d peers, the most it can",
				    name, CELL_PEERS_MAX);
		snprintf(cell->peers[cell->npeers++], sizeof(cell->peers[0]),
			 "%s", peer);
		r = journal_write(s, msg);
		if (r) {
			cell->npeers--;
			return req_fail(c, PROTO_E_SYSTEM,
				    "cell '%s' does not allow '%s': %s", name,
				    peer, msg);
		}
		LOG_INFO("cell '%s' allows channels with '%s'", name, peer);
	} else if (!allow && k >= 0) {
		memcpy(saved, cell->peers[k], sizeof(saved));
		peer_drop(cell, k);
		r = journal_write(s, msg);
		if (r) {
			snprintf(cell->peers[cell->npeers++],
				 sizeof(cell->peers[0]), "%s", saved);
			return req_fail(c, PROTO_E_SYSTEM,
				    "cell '%s' still allows '%s': %s", name,
				    peer, msg);
		}
		LOG_INFO("cell '%s' no longer allows channels with '%s'", name,
			 peer);
	}
	jw_kbool(w, "changed", allow ? k < 0 : k >= 0);
	jw_key(w, "cell");
	cell_json(s, cell, w);
	return 0;
}

static const char *const check_keys_chan[] = { "op", "from", "to",
						"from_pid", "to_pid", NULL };

/* pid's parent, or 0 when it cannot be read (gone, or pid 1's). */
static pid_t proc_parent(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_str(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');	/* the command name may hold ')' */
	if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

bool cell_has_pid(struct super *s, struct cell *cell, pid_t pid)
{
	pid_t pids[1024];
	int n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));

	/* In a cgroup every descendant is listed; in affinity mode only
	 * the pids atolld started or attached, so walk up the ancestry. */
	for (int depth = 0; pid > 1 && depth < 64; depth++) {
		for (int i = 0; i < n; i++)
			if (pids[i] == pid)
				return true;
		if (s->enf.kind != ENF_AFFINITY)
			break;
		pid = proc_parent(pid);
	}
	return false;
}

/* The optional field key ("from_pid", "to_pid"): a process the caller saw
 * on the other end of its rendezvous socket, which must run in cell. */
static int check_claimed_pid(struct super *s, const struct json *req,
			     const char *key, struct cell *cell,
			     const char *side, struct req_ctx *c)
{
	int64_t pid;
	bool present;

	if (req_get_int(req, key, 1, INT32_MAX, c, &pid, &present))
		return -EINVAL;
	if (present && !cell_has_pid(s, cell, (pid_t)pid))
		return req_fail(c, PROTO_E_PERM,
			    "process %lld (the %s) is not in cell '%s', the cell it claims",
			    (long long)pid, side, cell->name);
	return 0;
}

int chan_op_check(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w)
{
	const char *from, *to;
	struct cell *a, *b;
	bool ab, ba;

	if (check_keys(req, check_keys_chan, c) ||
	    get_cell_field(req, "from", c, &from) ||
	    get_cell_field(req, "to", c, &to))
		return -EINVAL;
	a = cell_find(s, from);
	if (!a || a->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' (the opener) %s", from,
			    a ? "is being destroyed" : "does not exist");
	b = cell_find(s, to);
	if (!b || b->destroying)
		return req_fail(c, PROTO_E_NOCELL, "cell '%s' (the target) %s", to,
			    b ? "is being destroyed" : "does not exist");
	/* A process may ask only about its own cell's channels (so it
	 * cannot probe, or speak for, cells it is not in). */
	if (!c->peer_admin && !cell_has_pid(s, a, c->peer_pid) &&
	    !cell_has_pid(s, b, c->peer_pid))
		return req_fail(c, PROTO_E_PERM,
			    "process %d is in neither cell '%s' nor '%s': a process may ask only about channels of its own cell",
			    (int)c->peer_pid, from, to);
	if (check_claimed_pid(s, req, "from_pid", a, "opener", c) ||
	    check_claimed_pid(s, req, "to_pid", b, "acceptor", c))
		return -EINVAL;
	if (a != b) {
		ab = peer_index(a, to) >= 0;
		ba = peer_index(b, from) >= 0;
		if (!ab && !ba)
			return req_fail(c, PROTO_E_NOTALLOWED,
				    "neither cell allows the channel: '%s' does not allow '%s' and '%s' does not allow '%s' (atoll cell allow)",
				    from, to, to, from);
		if (!ab)
			return req_fail(c, PROTO_E_NOTALLOWED,
				    "cell '%s' (the opener) does not allow channels with '%s'",
				    from, to);
		if (!ba)
			return req_fail(c, PROTO_E_NOTALLOWED,
				    "cell '%s' (the target) does not allow channels with '%s'",
				    to, from);
	}
	jw_kstr(w, "from", from);
	jw_kstr(w, "to", to);
	jw_kbool(w, "allowed", true);
	return 0;
}

void cell_json(struct super *s, const struct cell *cell, struct json_w *w)
{
	char list[1024];
	pid_t pids[256];
	int n;

	jw_obj(w);
	jw_kstr(w, "name", cell->name);
	jw_kstr(w, "class", cell->cls == CLASS_CG ? "cg" : "ll");
	cpulist_format(&cell->cpus, list, sizeof(list));
	jw_kstr(w, "cpus", list);
	jw_kint(w, "cores", ncores(&cell->cpus));
	cpulist_format(&cell->mems, list, sizeof(list));
	jw_kstr(w, "mems", list);
	jw_kint(w, "mem", (int64_t)cell->mem);
	jw_kint(w, "provision", cell->provision);
	jw_kint(w, "reserved", cell_reserved(cell));
	jw_kint(w, "want", cell->want);
	jw_kint(w, "priority", cell->priority);
	jw_kint(w, "min_cores", cell->squeezable ? 0 : 1);
	jw_kbool(w, "frozen", cell->frozen);
	jw_key(w, "latency");
	latctl_target_json(&cell->lat, w);
	loans_json(cell, w);
	jw_kint(w, "irqs_moved", cell->nirqs);
	if (cell->destroying)
		jw_kbool(w, "destroying", true);
	n = cell_pids(s, (struct cell *)cell, pids, (int)ARRAY_SIZE(pids));
	jw_key(w, "pids");
	jw_arr(w);
	for (int i = 0; i < n; i++)
		jw_int(w, pids[i]);
	jw_arr_end(w);
	jw_key(w, "mcps");
	mcp_list_json(cell->name, w);
	peers_json(cell, w);
	if (s->enf.kind == ENF_V2) {
		snprintf(list, sizeof(list), "%s/%s", s->enf.v2_root, cell->name);
		jw_kstr(w, "cgroup", list);
	} else if (s->enf.kind == ENF_V1) {
		snprintf(list, sizeof(list), "%s/%s", s->enf.cpuset_root,
			 cell->name);
		jw_kstr(w, "cgroup_cpuset", list);
		snprintf(list, sizeof(list), "%s/%s", s->enf.mem_root,
			 cell->name);
		jw_kstr(w, "cgroup_memory", list);
	}
	jw_obj_end(w);
}

void cell_op_list(struct super *s, struct json_w *w)
{
	jw_key(w, "cells");
	jw_arr(w);
	for (int i = 0; i < s->ncells; i++)
		cell_json(s, s->cells[i], w);
	jw_arr_end(w);
}

/* ---- journal ---- */

#define JOURNAL_FILE "cells.json"

int journal_write(struct super *s, char *msg)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32], list[1024];
	struct json_w w;
	int fd, r = 0, dfd;

	jw_init(&w);
	jw_obj(&w);
	jw_kint(&w, "version", PROTO_VERSION);
	jw_kstr(&w, "name", s->name);
	jw_kstr(&w, "enforcement", enf_name(s->enf.kind));
	cpulist_format(&s->managed, list, sizeof(list));
	jw_kstr(&w, "managed", list);
	jw_kstr(&w, "v2_root", s->enf.v2_root);
	jw_kstr(&w, "cpuset_root", s->enf.cpuset_root);
	jw_kstr(&w, "mem_root", s->enf.mem_root);
	jw_kstr(&w, "freezer_root", s->enf.freezer_root);
	jw_key(&w, "cells");
	jw_arr(&w);
	for (int i = 0; i < s->ncells; i++) {
		struct cell *c = s->cells[i];

		jw_obj(&w);
		jw_kstr(&w, "name", c->name);
		jw_kstr(&w, "class", c->cls == CLASS_CG ? "cg" : "ll");
		cpulist_format(&c->cpus, list, sizeof(list));
		jw_kstr(&w, "cpus", list);
		cpulist_format(&c->mems, list, sizeof(list));
		jw_kstr(&w, "mems", list);
		jw_kint(&w, "mem", (int64_t)c->mem);
		jw_kint(&w, "provision", c->provision);
		jw_kint(&w, "want", c->want);
		jw_kint(&w, "priority", c->priority);
		jw_key(&w, "latency");
		latctl_target_json(&c->lat, &w);
		loans_json(c, &w);
		jw_kint(&w, "min_cores", c->squeezable ? 0 : 1);
		if (c->frozen)
			jw_kint(&w, "parked_cpu", c->parked_cpu);
		jw_kbool(&w, "destroying", c->destroying);
		jw_key(&w, "irqs");
		jw_arr(&w);
		for (int k = 0; k < c->nirqs; k++) {
			jw_obj(&w);
			jw_kint(&w, "irq", c->irqs[k].irq);
			jw_kstr(&w, "orig", c->irqs[k].orig);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_key(&w, "pids");
		jw_arr(&w);
		for (int k = 0; k < c->npids; k++) {
			jw_obj(&w);
			jw_kint(&w, "pid", c->pids[k].pid);
			jw_kint(&w, "start", (int64_t)c->pids[k].start);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		peers_json(c, &w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	/* Registrations, for the record: they die with their connection, so
	 * a restarted atolld does not restore them (the processes keep the
	 * grants they hold and run on). */
	jw_key(&w, "mcps");
	mcp_journal_json(&w);
	jw_obj_end(&w);
	if (w.oom) {
		jw_free(&w);
		snprintf(msg, MSG_MAX, "out of memory writing the journal");
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/" JOURNAL_FILE, s->state_dir);
	snprintf(tmp, sizeof(tmp), "%s/" JOURNAL_FILE ".tmp", s->state_dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	{
		size_t off = 0;

		w.buf[w.len++] = '\n'; /* the writer keeps a spare byte */
		while (off < w.len) {
			ssize_t n = write(fd, w.buf + off, w.len - off);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				break;
			}
			off += (size_t)n;
		}
	}
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path))
		r = -errno;
	if (r) {
		unlink(tmp);
		goto out;
	}
	dfd = open(s->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	if (r)
		snprintf(msg, MSG_MAX, "cannot write %s: %s", path, strerror(-r));
	jw_free(&w);
	return r;
}

static int jstr(const struct json *o, const char *key, const char **out)
{
	const struct json *v = json_get(o, key);

	if (!v || v->type != JSON_STR)
		return -EINVAL;
	*out = v->s;
	return 0;
}

static int jint(const struct json *o, const char *key, int64_t *out)
{
	const struct json *v = json_get(o, key);

	if (!v || v->type != JSON_NUM || !v->is_int)
		return -EINVAL;
	*out = v->i;
	return 0;
}

/* An optional boolean member, false when absent. */
static bool jbool(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	return v && v->type == JSON_BOOL && v->b;
}

static int load_cell(struct super *s, const struct json *o, struct cell *c,
		     char *msg)
{
	const char *name, *cls, *cpus, *mems;
	const struct json *irqs, *pids, *peers, *d, *loans;
	int64_t mem, prov, prio = 0, min = 1, parked, want;
	cpu_set_t held;

	if (o->type != JSON_OBJ || jstr(o, "name", &name) || !name_valid(name) ||
	    jstr(o, "class", &cls) || jstr(o, "cpus", &cpus) ||
	    jstr(o, "mems", &mems) || jint(o, "mem", &mem) || mem < 0 ||
	    jint(o, "provision", &prov) || prov < 0 || prov > CPU_SETSIZE)
		goto bad;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->cls = !strcmp(cls, "cg") ? CLASS_CG : CLASS_LL;
	if (cpulist_parse(cpus, &c->cpus) || cpulist_parse(mems, &c->mems))
		goto bad;
	/* Optional: journals before squeezable cells have neither. */
	if (json_get(o, "min_cores") &&
	    (jint(o, "min_cores", &min) || min < 0 || min > 1))
		goto bad;
	c->squeezable = min == 0;
	if (json_get(o, "parked_cpu")) {
		if (jint(o, "parked_cpu", &parked) || parked < 0 ||
		    parked >= CPU_SETSIZE || !c->squeezable)
			goto bad;
		c->frozen = true;
		c->parked_cpu = (int)parked;
	}
	/* A cell holds cores, or none and is frozen. */
	if ((CPU_COUNT(&c->cpus) == 0) != c->frozen)
		goto bad;
	held = cpuset_of(c);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &held) && !CPU_ISSET(i, &s->managed)) {
			snprintf(msg, MSG_MAX,
				 "the journal's cell '%s' holds cpu %d, which is outside --cpus; start atolld with the cpus it had",
				 name, i);
			return -ERANGE;
		}
	c->mem = (uint64_t)mem;
	c->provision = (int)prov;
	d = json_get(o, "destroying");
	c->destroying = d && d->type == JSON_BOOL && d->b;
	irqs = json_get(o, "irqs");
	if (irqs && irqs->type == JSON_ARR) {
		for (size_t i = 0; i < irqs->len && c->nirqs < CELL_IRQS_MAX; i++) {
			int64_t irq;
			const char *orig;

			if (jint(irqs->kids[i], "irq", &irq) ||
			    jstr(irqs->kids[i], "orig", &orig))
				goto bad;
			c->irqs[c->nirqs].irq = (int)irq;
			snprintf(c->irqs[c->nirqs].orig, sizeof(c->irqs[0].orig),
				 "%s", orig);
			c->nirqs++;
		}
	}
	pids = json_get(o, "pids");
	if (pids && pids->type == JSON_ARR) {
		for (size_t i = 0; i < pids->len && c->npids < CELL_PIDS_MAX; i++) {
			int64_t pid, st;

			if (jint(pids->kids[i], "pid", &pid) ||
			    jint(pids->kids[i], "start", &st))
				goto bad;
			c->pids[c->npids].pid = (pid_t)pid;
			c->pids[c->npids].start = (uint64_t)st;
			c->npids++;
		}
	}
	/* Optional: journals before channel permissions have none. */
	peers = json_get(o, "allowed_peers");
	if (peers && peers->type == JSON_ARR) {
		for (size_t i = 0; i < peers->len && c->npeers < CELL_PEERS_MAX;
		     i++) {
			const struct json *p = peers->kids[i];

			if (p->type != JSON_STR || !name_valid(p->s))
				goto bad;
			snprintf(c->peers[c->npeers++], sizeof(c->peers[0]),
				 "%s", p->s);
		}
	}
	/* Optional: journals before the latency controller have none. */
	if (json_get(o, "priority")) {
		if (jint(o, "priority", &prio) || prio < 0 || prio > PRIORITY_MAX)
			goto bad;
		c->priority = (int)prio;
	}
	{
		struct req_ctx scratch;
		bool has;

		if (latctl_parse(o, &scratch, &c->lat, &has))
			goto bad;
	}
	latctl_restart(c);
	loans = json_get(o, "borrowed");
	if (loans && loans->type == JSON_ARR) {
		for (size_t i = 0; i < loans->len && c->nloans < CELL_LOANS_MAX;
		     i++) {
			struct cell_loan *l = &c->loans[c->nloans];
			const char *from;
			int64_t cpu;

			if (jint(loans->kids[i], "cpu", &cpu) ||
			    jstr(loans->kids[i], "from", &from) ||
			    (*from && !name_valid(from)))
				goto bad;
			/* A core the cell no longer holds is no loan. */
			if (cpu < 0 || cpu >= CPU_SETSIZE ||
			    !CPU_ISSET(cpu, &c->cpus))
				continue;
			l->cpu = (int)cpu;
			snprintf(l->from, sizeof(l->from), "%s", from);
			l->prov = jbool(loans->kids[i], "provisioned") && *from;
			l->drf = jbool(loans->kids[i], "best_effort");
			c->nloans++;
		}
	}
	/* Optional: journals before best-effort sharing have none. A cell
	 * wants its own cores, and a frozen one the core it lost. */
	want = CPU_COUNT(&c->cpus) - c->nloans;
	if (c->frozen)
		want = 1;
	if (json_get(o, "want") &&
	    (jint(o, "want", &want) || want < 0 || want > CPU_SETSIZE))
		goto bad;
	c->want = (int)want;
	return 0;
bad:
	snprintf(msg, MSG_MAX, "the journal has a malformed cell entry");
	return -EINVAL;
}

int journal_restore(struct super *s, int want_enf, char *msg)
{
	char path[PATH_MAX + 32], err[256];
	char *text = NULL;
	struct json_doc *doc = NULL;
	const struct json *root, *cells;
	const char *str;
	struct stat st;
	int fd, r = 0;
	enum enf kind;
	struct notes nt = { 0 };
	static char names[CELLS_MAX * 2][PROTO_NAME_MAX + 1];
	int nnames;

	snprintf(path, sizeof(path), "%s/" JOURNAL_FILE, s->state_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			snprintf(msg, MSG_MAX, "cannot read %s: %s", path,
				 strerror(errno));
			return -errno;
		}
		/* a fresh instance */
		r = enf_setup(&s->enf, want_enf, s->name, &s->managed,
			      &s->inv.mem_nodes, msg);
		if (r)
			return r;
		return journal_write(s, msg);
	}
	if (fstat(fd, &st) || st.st_size > 16 * 1024 * 1024) {
		close(fd);
		snprintf(msg, MSG_MAX, "%s is unreadable or too large", path);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text || read(fd, text, (size_t)st.st_size) != st.st_size) {
		close(fd);
		free(text);
		snprintf(msg, MSG_MAX, "cannot read %s", path);
		return -EIO;
	}
	close(fd);
	doc = json_parse(text, (size_t)st.st_size, err, sizeof(err));
	free(text);
	if (!doc) {
		snprintf(msg, MSG_MAX,
			 "the journal %s is corrupt (%s); move it away to start afresh",
			 path, err);
		return -EINVAL;
	}
	root = json_root(doc);
	if (jstr(root, "name", &str) || strcmp(str, s->name)) {
		snprintf(msg, MSG_MAX,
			 "the journal %s belongs to another instance; use its --name or another --state-dir",
			 path);
		r = -EINVAL;
		goto out;
	}
	if (jstr(root, "enforcement", &str) || enf_parse(str, &kind)) {
		snprintf(msg, MSG_MAX, "the journal %s has no valid enforcement", path);
		r = -EINVAL;
		goto out;
	}
	if (want_enf >= 0 && (int)kind != want_enf)
		LOG_WARN("the journal uses %s enforcement; keeping it", enf_name(kind));
	if (!jstr(root, "v2_root", &str))
		snprintf(s->enf.v2_root, sizeof(s->enf.v2_root), "%s", str);
	if (!jstr(root, "cpuset_root", &str))
		snprintf(s->enf.cpuset_root, sizeof(s->enf.cpuset_root), "%s", str);
	if (!jstr(root, "mem_root", &str))
		snprintf(s->enf.mem_root, sizeof(s->enf.mem_root), "%s", str);
	if (!jstr(root, "freezer_root", &str))
		snprintf(s->enf.freezer_root, sizeof(s->enf.freezer_root), "%s",
			 str);
	cells = json_get(root, "cells");
	if (!cells || cells->type != JSON_ARR || cells->len > CELLS_MAX) {
		snprintf(msg, MSG_MAX, "the journal %s has no valid cell list", path);
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < cells->len; i++) {
		struct cell *c = calloc(1, sizeof(*c));

		if (!c) {
			r = -ENOMEM;
			snprintf(msg, MSG_MAX, "out of memory");
			goto out;
		}
		r = load_cell(s, cells->kids[i], c, msg);
		if (!r && cell_find(s, c->name)) {
			snprintf(msg, MSG_MAX, "the journal lists cell '%s' twice",
				 c->name);
			r = -EINVAL;
		}
		if (r) {
			free(c);
			goto out;
		}
		s->cells[s->ncells++] = c;
	}
	r = enf_setup(&s->enf, (int)kind, s->name, &s->managed,
		      &s->inv.mem_nodes, msg);
	if (r)
		goto out;
	if (kind == ENF_AFFINITY && !s->enf.why_weak[0])
		snprintf(s->enf.why_weak, sizeof(s->enf.why_weak),
			 "the journal records affinity-only enforcement");

	/* Reconcile: finish destroys, recreate lost cgroups, drop orphans. */
	for (int i = 0; i < s->ncells;) {
		struct cell *c = s->cells[i];
		char m[MSG_MAX];

		if (c->destroying) {
			if (cell_teardown(s, c, s->grace_ms_default, &nt, m)) {
				LOG_WARN("cell '%s': %s", c->name, m);
				i++;
				continue;
			}
			LOG_INFO("cell '%s': interrupted destroy finished", c->name);
			cell_remove(s, c);
			continue;
		}
		if (!enf_cell_exists(&s->enf, c->name)) {
			cpu_set_t set = cpuset_of(c);

			LOG_WARN("cell '%s': cgroup missing, recreating it", c->name);
			if (enf_cell_create(&s->enf, c->name, &set, &c->mems,
					    c->mem, m))
				LOG_ERROR("cell '%s': %s", c->name, m);
		}
		/* The freezer follows the journal, which a crash may have
		 * kept from recording the last freeze or thaw. */
		if (c->squeezable &&
		    enf_cell_freeze(&s->enf, c->name, c->frozen, m))
			LOG_ERROR("cell '%s': %s", c->name, m);
		i++;
	}
	/* Allows naming a cell the journal does not hold are dropped, so a
	 * later cell of that name does not inherit them. */
	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; k < s->cells[i]->npeers;)
			if (!cell_find(s, s->cells[i]->peers[k]))
				peer_drop(s->cells[i], k);
			else
				k++;
	/* Likewise, cores lent by such a cell go back to the free pool. */
	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; k < s->cells[i]->nloans; k++)
			if (!cell_find(s, s->cells[i]->loans[k].from))
				s->cells[i]->loans[k].from[0] = '\0';
	nnames = enf_list(&s->enf, names, (int)ARRAY_SIZE(names));
	for (int i = 0; i < nnames; i++) {
		struct cell orphan;
		char m[MSG_MAX];

		if (cell_find(s, names[i]) || !name_valid(names[i]))
			continue;
		memset(&orphan, 0, sizeof(orphan));
		snprintf(orphan.name, sizeof(orphan.name), "%s", names[i]);
		LOG_WARN("cgroup '%s' is not in the journal (an interrupted create); removing it",
			 names[i]);
		if (cell_teardown(s, &orphan, 0, &nt, m))
			LOG_WARN("orphan '%s': %s", names[i], m);
	}
	LOG_INFO("restored %d cells from %s", s->ncells, path);
	r = journal_write(s, msg);
out:
	json_free(doc);
	return r;
}
