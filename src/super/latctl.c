/* latctl.c - the latency controller (RainForest 6.3.2): moves cores, one
 * at a time, toward a cell whose tail latency is above its target, and
 * back when it is below; and "cell.top", the figures `atoll top` shows.
 *
 * Design note. A cell may have a latency target: thresholds lt < ut (ns)
 * on a percentile of the request latencies (default p99) measured over a
 * window (ms), and every cell has a priority. MCPs publish per-vcore
 * histograms in procdata (rt_latency_record()); at the end of each window
 * mcp_cell_latency() hands over the samples recorded in it (the
 * difference of two cumulative snapshots) and the controller decides, at
 * most one move per cell per window:
 *
 *   - no MCP of the cell publishes a histogram: nothing (no data);
 *   - tail > ut: take ONE core. A free core first (one no cell holds,
 *     if admission allows: it takes nothing from anyone), else from the
 *     donor: the cell of lowest priority, strictly below this cell's,
 *     that holds more than its floor, max(provision, min_cores), where
 *     min_cores is 1 unless the cell opted into 0 (a CG cell, frozen
 *     while it holds no core: cell.c); ties go to the
 *     one with the most cores above its floor, then to the name. A donor
 *     gives the core it borrowed last, if any, else its highest one. The
 *     core is recorded as a loan from its owner: the donor, or whoever
 *     lent it to the donor (a loan is always owed to the core's owner);
 *   - tail < lt, or no request at all for idle_windows() windows in a
 *     row, at least 3 and 2 s (an empty window may be a process stalled
 *     on a busy node as well as an idle one: alone, it decides nothing):
 *     give back the core borrowed last, to the
 *     cell it came from (the free pool if that cell is gone). A cell never
 *     gives away its own cores this way: the operator's configuration is
 *     the floor of the controller's changes;
 *   - else nothing.
 * A move is cell_move_core(): the cgroups of both cells, then the grants
 * (revocation with its deadline in the loser's MCPs, a grant in the
 * gainer's once the core is free). The loans change before it, since it
 * journals them. Every move is logged with its reason and kept in a ring
 * of the last LATCTL_MOVES_MAX, numbered from 1, which "cell.top" returns.
 * Anything else is logged once, when its cause changes (not every window;
 * an empty window not at all). An operator's resize of a cell's cores
 * makes them its own (its loans are forgotten); a cell destroyed frees
 * all its cores.
 * Best-effort loans (lend.c, drf set) live beside these: the controller
 * never gives them back (they follow the cell's want), but a donor may
 * give one on; a core lent from a provision stays marked prov wherever
 * it goes, owed to and reserved by its owner. A create or resize takes
 * back best-effort loans from the free pool (lend_revoke()), never this
 * controller's loans, even from the free pool: they serve a cell above
 * its target and go back by the rules above (lend.c says why).
 * A frozen cell that wants a core (a squeezed one; a cell the operator
 * parked with 0 cores wants none) takes a free core back whenever one is
 * free and nobody above ut took it first (latctl_thaw_free(): after each
 * tick, destroy and resize), so it does not stay frozen beside an idle
 * core.
 * Cells without a target are measured too when they have MCPs (windows
 * of LATCTL_WINDOW_DEFAULT_MS), for `atoll top`, and never act. A cell's
 * window starts afresh when its target changes or an MCP registers in it
 * (latctl_restart()): the samples recorded before are not counted.
 *
 * Single-threaded like the rest of atolld: no locks.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <atoll/clock.h>
#include <atoll/log.h>

#define LATCTL_WINDOW_DEFAULT_MS 1000u
#define LATCTL_WINDOW_MIN_MS 10
#define LATCTL_WINDOW_MAX_MS 3600000
#define LATCTL_PCT_DEFAULT 99.0
#define LATCTL_MOVES_MAX 256
#define LATCTL_TOP_MOVES 16    /* moves "cell.top" returns by default */
#define LATCTL_IDLE_WINDOWS 3  /* empty windows in a row, and at least */
#define LATCTL_IDLE_MS 2000    /* this long: the cell is idle */

struct latctl_move {
	uint64_t seq;               /* 1, 2, ...: never reused */
	uint64_t at_ns;             /* CLOCK_MONOTONIC */
	int64_t unix_ms;            /* CLOCK_REALTIME, for people */
	char cell[PROTO_NAME_MAX + 1];
	bool grow;                  /* toward cell (tail > ut), else back */
	char direction[12];         /* grow, shrink, or lend.c's moves */
	char reason[256];
	char from[PROTO_NAME_MAX + 1];  /* "" = the free pool */
	char to[PROTO_NAME_MAX + 1];
	int cpu;
	double pct;
	uint64_t tail_ns, threshold_ns, samples;
	uint32_t window_ms;
};

static struct latctl_move moves[LATCTL_MOVES_MAX];
static uint64_t moves_total;   /* seq of the newest move */

static uint32_t window_ms(const struct cell *cell)
{
	return cell->lat.on ? cell->lat.window_ms : LATCTL_WINDOW_DEFAULT_MS;
}

static int ncores(const struct cell *cell)
{
	return CPU_COUNT(&cell->cpus);
}

/* Windows without a request, in a row, after which the cell is idle. */
static unsigned idle_windows(const struct cell *cell)
{
	unsigned n = (LATCTL_IDLE_MS + window_ms(cell) - 1) / window_ms(cell);

	return n > LATCTL_IDLE_WINDOWS ? n : LATCTL_IDLE_WINDOWS;
}

/* Fewest cores the controller leaves a cell: max(provision, min_cores). */
static int floor_of(const struct cell *cell)
{
	int min = cell->squeezable ? 0 : 1;

	return cell->provision > min ? cell->provision : min;
}

static const char *pool_name(const char *cell)
{
	return *cell ? cell : "(free)";
}

/* ---- configuration ---- */

static const char *const latency_keys[] = { "lt_ns", "ut_ns", "window_ms",
					    "percentile", NULL };

int latctl_parse(const struct json *req, struct req_ctx *c,
		 struct lat_target *out, bool *present)
{
	const struct json *v = json_get(req, "latency"), *p;
	int64_t lt, ut, win = LATCTL_WINDOW_DEFAULT_MS;
	bool has_lt, has_ut, has;

	memset(out, 0, sizeof(*out));
	*present = v != NULL;
	if (!v || v->type == JSON_NULL)
		return 0;
	if (v->type != JSON_OBJ)
		return req_fail(c, PROTO_E_BADREQ,
			    "\"latency\" must be an object {\"lt_ns\":N,\"ut_ns\":N,\"window_ms\":N,\"percentile\":P} or null (no target)");
	if (req_check_keys(v, latency_keys,
			   "\"latency\" (it takes lt_ns, ut_ns, window_ms, percentile)",
			   c) ||
	    req_get_int(v, "lt_ns", 1, HIST_MAX_NS, c, &lt, &has_lt) ||
	    req_get_int(v, "ut_ns", 1, HIST_MAX_NS, c, &ut, &has_ut) ||
	    req_get_int(v, "window_ms", LATCTL_WINDOW_MIN_MS,
			LATCTL_WINDOW_MAX_MS, c, &win, &has))
		return -EINVAL;
	if (!has_lt || !has_ut)
		return req_fail(c, PROTO_E_BADREQ,
			    "\"latency\" needs both thresholds, \"lt_ns\" and \"ut_ns\"");
	if (lt >= ut)
		return req_fail(c, PROTO_E_RANGE,
			    "the latency thresholds must satisfy lt < ut; lt_ns is %lld and ut_ns %lld",
			    (long long)lt, (long long)ut);
	out->pct = LATCTL_PCT_DEFAULT;
	p = json_get(v, "percentile");
	if (p) {
		if (p->type != JSON_NUM)
			return req_fail(c, PROTO_E_BADREQ,
				    "the field \"percentile\" must be a number");
		if (!(p->d > 0.0 && p->d <= 100.0))
			return req_fail(c, PROTO_E_RANGE,
				    "the field \"percentile\" is %g; it must be above 0 and at most 100",
				    p->d);
		out->pct = p->d;
	}
	out->on = true;
	out->lt_ns = (uint64_t)lt;
	out->ut_ns = (uint64_t)ut;
	out->window_ms = (uint32_t)win;
	return 0;
}

void latctl_target_json(const struct lat_target *t, struct json_w *w)
{
	if (!t->on) {
		jw_null(w);
		return;
	}
	jw_obj(w);
	jw_kint(w, "lt_ns", (int64_t)t->lt_ns);
	jw_kint(w, "ut_ns", (int64_t)t->ut_ns);
	jw_kint(w, "window_ms", t->window_ms);
	jw_kdouble(w, "percentile", t->pct);
	jw_obj_end(w);
}

void latctl_restart(struct cell *cell)
{
	memset(&cell->win, 0, sizeof(cell->win));
	cell->win.start_ns = now_ns();
	cell->win.next_ns = cell->win.start_ns +
			    window_ms(cell) * NSEC_PER_MSEC;
	mcp_cell_latency(cell->name, NULL);
}

void latctl_forget_lender(struct super *s, const char *name)
{
	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; k < s->cells[i]->nloans; k++)
			if (!strcmp(s->cells[i]->loans[k].from, name)) {
				/* no provision backs it any more */
				s->cells[i]->loans[k].from[0] = '\0';
				s->cells[i]->loans[k].prov = false;
			}
}

/* ---- deciding ---- */

/* Whether the cell has anything to measure. */
static bool measured(const struct cell *cell)
{
	return !cell->destroying &&
	       (cell->lat.on || mcp_cell_count(cell->name) > 0);
}

int latctl_free_core(struct super *s, const struct cell *cell)
{
	cpu_set_t used;

	if (cell) {
		/* cell_reserved() with one more core counted */
		int grown = ncores(cell) - cell_prov_loans(cell) + 1;
		int res = super_reserved(s) - cell_reserved(cell) +
			  (grown > cell->provision ? grown : cell->provision);

		if (res > CPU_COUNT(&s->managed))
			return -1;
	}
	CPU_ZERO(&used);
	for (int i = 0; i < s->ncells; i++)
		CPU_OR(&used, &used, &s->cells[i]->cpus);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &s->managed) && !CPU_ISSET(c, &used))
			return c;
	return -1;
}

/* Whether donor d (spare cores above its floor) is a better choice than
 * best: lower priority, then more spare cores, then the name. */
static bool better_donor(const struct cell *d, int spare,
			 const struct cell *best, int best_spare)
{
	if (d->priority != best->priority)
		return d->priority < best->priority;
	if (spare != best_spare)
		return spare > best_spare;
	return strcmp(d->name, best->name) < 0;
}

static struct cell *pick_donor(struct super *s, const struct cell *cell)
{
	struct cell *best = NULL;
	int best_spare = 0;

	for (int i = 0; i < s->ncells; i++) {
		struct cell *d = s->cells[i];
		int spare = ncores(d) - floor_of(d);

		if (d == cell || d->destroying || spare <= 0 ||
		    d->priority >= cell->priority)
			continue;
		if (!best || better_donor(d, spare, best, best_spare)) {
			best = d;
			best_spare = spare;
		}
	}
	return best;
}

/* Drop the loans whose core the cell no longer holds. */
static void loans_prune(struct cell *cell)
{
	int k = 0;

	for (int i = 0; i < cell->nloans; i++)
		if (CPU_ISSET(cell->loans[i].cpu, &cell->cpus))
			cell->loans[k++] = cell->loans[i];
	cell->nloans = k;
}

static int loan_of(const struct cell *cell, int cpu)
{
	for (int i = 0; i < cell->nloans; i++)
		if (cell->loans[i].cpu == cpu)
			return i;
	return -1;
}

/* The core a donor gives: the one it borrowed last, else its highest. */
static int donor_core(struct cell *d)
{
	loans_prune(d);
	if (d->nloans)
		return d->loans[d->nloans - 1].cpu;
	for (int c = CPU_SETSIZE - 1; c >= 0; c--)
		if (CPU_ISSET(c, &d->cpus))
			return c;
	return -1;
}

/* A window without samples: the process may be stalled as well as idle,
 * so it is not even logged. */
#define CAUSE_QUIET "quiet"

/* Record the controller's decision for the window: action, a cause (a
 * constant word) and the reason (a sentence with the figures). */
static void set_state(struct cell *cell, enum lat_action a, const char *cause,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_state(struct cell *cell, enum lat_action a, const char *cause,
		      const char *fmt, ...)
{
	struct lat_window *w = &cell->win;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
	va_end(ap);
	w->action = a;
	snprintf(w->cause, sizeof(w->cause), "%s", cause);
	/* Moves are logged by record_move(); anything else when its cause
	 * is not the one logged last, not every window. */
	if (!cell->lat.on || !strcmp(cause, CAUSE_QUIET) ||
	    !strcmp(cause, w->logged))
		return;
	if (a != LAT_GREW && a != LAT_SHRANK)
		LOG_INFO("latctl: cell '%s': %s", cell->name, w->reason);
	snprintf(w->logged, sizeof(w->logged), "%s", cause);
}

/* A new move in the ring, numbered and timed. */
static struct latctl_move *move_new(const char *cell, const char *direction,
				    const char *from, const char *to, int cpu)
{
	struct latctl_move *mv = &moves[moves_total % LATCTL_MOVES_MAX];
	struct timespec rt;

	clock_gettime(CLOCK_REALTIME, &rt);
	memset(mv, 0, sizeof(*mv));
	mv->seq = ++moves_total;
	mv->at_ns = now_ns();
	mv->unix_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
	snprintf(mv->cell, sizeof(mv->cell), "%s", cell);
	snprintf(mv->direction, sizeof(mv->direction), "%s", direction);
	snprintf(mv->from, sizeof(mv->from), "%s", from);
	snprintf(mv->to, sizeof(mv->to), "%s", to);
	mv->cpu = cpu;
	return mv;
}

static void record_move(struct cell *cell, bool grow, const char *from,
			const char *to, int cpu)
{
	struct latctl_move *mv = move_new(cell->name, grow ? "grow" : "shrink",
					  from, to, cpu);
	const struct lat_window *w = &cell->win;

	mv->grow = grow;
	mv->pct = cell->lat.pct;
	mv->tail_ns = w->tail_ns;
	mv->threshold_ns = grow ? cell->lat.ut_ns : cell->lat.lt_ns;
	mv->samples = w->samples;
	mv->window_ms = w->ms;
	set_state(cell, grow ? LAT_GREW : LAT_SHRANK, "moved",
		  "p%g %llu ns over %u ms (%llu samples) %s %s %llu ns: cpu %d moved from %s to %s",
		  mv->pct, (unsigned long long)mv->tail_ns, mv->window_ms,
		  (unsigned long long)mv->samples, grow ? "above" : "below",
		  grow ? "ut" : "lt", (unsigned long long)mv->threshold_ns, cpu,
		  pool_name(from), pool_name(to));
	snprintf(mv->reason, sizeof(mv->reason), "%s", cell->win.reason);
	LOG_INFO("latctl: move %llu: cell '%s': %s",
		 (unsigned long long)mv->seq, cell->name, cell->win.reason);
}

void latctl_note_move(const char *direction, const char *cell,
		      const char *from, const char *to, int cpu,
		      const char *reason)
{
	struct latctl_move *mv = move_new(cell, direction, from, to, cpu);

	snprintf(mv->reason, sizeof(mv->reason), "%s", reason);
}

/* Tail above ut: take one core. */
static void grow(struct super *s, struct cell *cell)
{
	char msg[MSG_MAX], lender[PROTO_NAME_MAX + 1] = "";
	struct cell *donor = NULL;
	struct cell_loan taken;
	int cpu, k = -1;
	bool owed;

	if (cell->nloans >= CELL_LOANS_MAX) {
		set_state(cell, LAT_BLOCKED, "loans-full",
			  "p%g %llu ns is above ut but the cell already holds %d borrowed cores, the most it can",
			  cell->lat.pct, (unsigned long long)cell->win.tail_ns,
			  CELL_LOANS_MAX);
		return;
	}
	cpu = latctl_free_core(s, cell);
	if (cpu < 0) {
		donor = pick_donor(s, cell);
		if (!donor) {
			set_state(cell, LAT_BLOCKED, "no-donor",
				  "p%g %llu ns is above ut %llu ns but no core can be taken: none is free and no cell of lower priority than %d holds more than its floor (max(provision, min_cores))",
				  cell->lat.pct,
				  (unsigned long long)cell->win.tail_ns,
				  (unsigned long long)cell->lat.ut_ns,
				  cell->priority);
			return;
		}
		cpu = donor_core(donor);
		snprintf(lender, sizeof(lender), "%s", donor->name);
		k = loan_of(donor, cpu);
		if (k >= 0) {
			taken = donor->loans[k];
			snprintf(lender, sizeof(lender), "%s", taken.from);
			cell_loan_drop(donor, k);
		}
	}
	/* The loans change first: cell_move_core() journals them with the
	 * cores. A core coming home is no loan. */
	owed = strcmp(lender, cell->name);
	if (owed) {
		/* A core of a provision stays on it, wherever it goes. */
		cell->loans[cell->nloans] = (struct cell_loan){
			.cpu = cpu, .prov = k >= 0 && taken.prov };
		snprintf(cell->loans[cell->nloans].from,
			 sizeof(cell->loans[0].from), "%s", lender);
		cell->nloans++;
	}
	if (cell_move_core(s, donor, cell, cpu, msg)) {
		if (owed)
			cell->nloans--;
		if (k >= 0)
			cell_loan_undrop(donor, k, &taken);
		set_state(cell, LAT_BLOCKED, "move-failed",
			  "moving cpu %d from %s failed: %s",
			  cpu, pool_name(donor ? donor->name : ""), msg);
		return;
	}
	record_move(cell, true, donor ? donor->name : "", cell->name, cpu);
}

/* Whether moving one core from `from` to `to` (NULL: the free pool)
 * keeps the reservations within the managed cores. */
static bool admits(struct super *s, const struct cell *from,
		   const struct cell *to)
{
	int res = super_reserved(s), n;

	if (from) {
		n = ncores(from) - 1;
		res += (n > from->provision ? n : from->provision) -
		       cell_reserved(from);
	}
	if (to) {
		n = ncores(to) + 1;
		res += (n > to->provision ? n : to->provision) -
		       cell_reserved(to);
	}
	return res <= CPU_COUNT(&s->managed);
}

/* Tail below lt (or no request): give back the core borrowed last. */
static void shrink(struct super *s, struct cell *cell, const char *why)
{
	struct cell *lender;
	struct cell_loan loan;
	char msg[MSG_MAX];
	int k;

	loans_prune(cell);
	/* The controller gives back only what it took: best-effort loans
	 * (lend.c) follow the cell's want. */
	for (k = cell->nloans - 1; k >= 0 && cell->loans[k].drf; k--)
		;
	if (k < 0) {
		set_state(cell, LAT_NONE, "nothing-borrowed",
			  "%s; nothing borrowed to give back", why);
		return;
	}
	if (ncores(cell) <= floor_of(cell)) {
		set_state(cell, LAT_BLOCKED, "at-floor",
			  "%s, but the cell is at its floor of %d cores (max(provision, min_cores))",
			  why, floor_of(cell));
		return;
	}
	loan = cell->loans[k];
	/* A core of an idle provision goes back to being idle (free): its
	 * owner did not ask for it. */
	lender = *loan.from && !loan.prov ? cell_find(s, loan.from) : NULL;
	if (lender && (lender->destroying || !admits(s, cell, lender)))
		lender = NULL;
	cell_loan_drop(cell, k); /* before the move, which journals it */
	if (cell_move_core(s, cell, lender, loan.cpu, msg)) {
		cell_loan_undrop(cell, k, &loan);
		set_state(cell, LAT_BLOCKED, "move-failed",
			  "%s, but giving cpu %d back failed: %s",
			  why, loan.cpu, msg);
		return;
	}
	record_move(cell, false, cell->name, lender ? lender->name : "",
		    loan.cpu);
}

static void decide(struct super *s, struct cell *cell)
{
	const struct lat_window *w = &cell->win;
	const struct lat_target *t = &cell->lat;
	char why[128];

	if (!t->on) {
		set_state(cell, LAT_NONE, "no-target", "no latency target");
	} else if (!w->mcps) {
		set_state(cell, LAT_NONE, "no-data",
			  "no data: no MCP of the cell publishes latencies (rt_latency_record)");
	} else if (!w->samples && w->empty < idle_windows(cell)) {
		set_state(cell, LAT_NONE, CAUSE_QUIET,
			  "no request in the window (%u in a row; %u make the cell idle)",
			  w->empty, idle_windows(cell));
	} else if (!w->samples) {
		snprintf(why, sizeof(why), "no request in %u windows in a row",
			 w->empty);
		shrink(s, cell, why);
	} else if (w->tail_ns < t->lt_ns) {
		snprintf(why, sizeof(why), "p%g %llu ns is below lt %llu ns",
			 t->pct, (unsigned long long)w->tail_ns,
			 (unsigned long long)t->lt_ns);
		shrink(s, cell, why);
	} else if (w->tail_ns > t->ut_ns) {
		grow(s, cell);
	} else {
		set_state(cell, LAT_NONE, "within",
			  "p%g %llu ns is within [%llu, %llu] ns",
			  t->pct, (unsigned long long)w->tail_ns,
			  (unsigned long long)t->lt_ns,
			  (unsigned long long)t->ut_ns);
	}
}

/* ---- measuring ---- */

void latctl_add_delta(struct hist *win, const struct hist *now,
		      const struct hist *prev)
{
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		uint64_t a = now->buckets[i], b = prev->buckets[i];

		/* Each sample stands at its bucket's midpoint, which is what
		 * hist_percentile() reports for the bucket anyway. */
		if (a > b)
			hist_record_n(win, hist_bucket_lo(i) +
				      (hist_bucket_width(i) - 1) / 2, a - b);
	}
}

static void window_end(struct super *s, struct cell *cell, uint64_t now)
{
	static struct hist win;
	struct lat_window *w = &cell->win;

	hist_init(&win);
	w->mcps = mcp_cell_latency(cell->name, &win);
	w->end_ns = now;
	w->ms = (uint32_t)((now - w->start_ns) / NSEC_PER_MSEC);
	w->samples = hist_count(&win);
	w->empty = w->samples ? 0 : w->empty + 1;
	w->tail_ns = hist_percentile(&win, cell->lat.on ? cell->lat.pct :
					   LATCTL_PCT_DEFAULT);
	w->p50_ns = hist_percentile(&win, 50.0);
	w->max_ns = hist_max(&win);
	decide(s, cell);
}

int latctl_timeout_ms(struct super *s)
{
	uint64_t now = now_ns(), next = UINT64_MAX;

	for (int i = 0; i < s->ncells; i++)
		if (measured(s->cells[i]) && s->cells[i]->win.next_ns < next)
			next = s->cells[i]->win.next_ns;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return (int)((next - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
}

void latctl_tick(struct super *s)
{
	uint64_t now = now_ns();

	/* A move may not add or remove cells, so indexing is stable. */
	for (int i = 0; i < s->ncells; i++) {
		struct cell *cell = s->cells[i];

		if (!measured(cell) || now < cell->win.next_ns)
			continue;
		window_end(s, cell, now);
		cell->win.start_ns = now;
		cell->win.next_ns = now + window_ms(cell) * NSEC_PER_MSEC;
	}
	latctl_thaw_free(s);
}

void latctl_thaw_free(struct super *s)
{
	char msg[MSG_MAX];

	for (int i = 0; i < s->ncells; i++) {
		struct cell *cell = s->cells[i];
		int cpu;

		/* want 0: the operator parked it (resize to 0 cores) */
		if (!cell->frozen || cell->destroying || cell->want < 1)
			continue;
		cpu = latctl_free_core(s, cell);
		if (cpu < 0)
			continue;
		if (cell_move_core(s, NULL, cell, cpu, msg))
			LOG_WARN("latctl: cell '%s' stays frozen: taking the free cpu %d failed: %s",
				 cell->name, cpu, msg);
		else
			LOG_INFO("latctl: cell '%s' took the free cpu %d and runs again",
				 cell->name, cpu);
	}
}

/* ---- reporting ---- */

static void move_json(const struct latctl_move *mv, struct json_w *w)
{
	jw_obj(w);
	jw_kint(w, "seq", (int64_t)mv->seq);
	jw_kint(w, "at_ns", (int64_t)mv->at_ns);
	jw_kint(w, "unix_ms", mv->unix_ms);
	jw_kstr(w, "cell", mv->cell);
	jw_kstr(w, "direction", mv->direction);
	jw_kstr(w, "from", mv->from);
	jw_kstr(w, "to", mv->to);
	jw_kint(w, "cpu", mv->cpu);
	jw_kdouble(w, "percentile", mv->pct);
	jw_kint(w, "tail_ns", (int64_t)mv->tail_ns);
	/* lend.c's moves have no threshold: "" and 0 */
	jw_kstr(w, "threshold", mv->threshold_ns ? mv->grow ? "ut" : "lt" : "");
	jw_kint(w, "threshold_ns", (int64_t)mv->threshold_ns);
	jw_kint(w, "samples", (int64_t)mv->samples);
	jw_kint(w, "window_ms", mv->window_ms);
	jw_kstr(w, "reason", mv->reason);
	jw_obj_end(w);
}

/* The moves numbered above since, oldest first (those still held). */
static void moves_json(uint64_t since, struct json_w *w)
{
	uint64_t first = moves_total > LATCTL_MOVES_MAX ?
			 moves_total - LATCTL_MOVES_MAX + 1 : 1;

	if (since + 1 > first)
		first = since + 1;
	jw_arr(w);
	for (uint64_t seq = first; seq <= moves_total; seq++)
		move_json(&moves[(seq - 1) % LATCTL_MOVES_MAX], w);
	jw_arr_end(w);
}

static const char *action_name(enum lat_action a)
{
	switch (a) {
	case LAT_GREW:
		return "grew";
	case LAT_SHRANK:
		return "shrank";
	case LAT_BLOCKED:
		return "blocked";
	case LAT_NONE:
		break;
	}
	return "none";
}

/* The controller's view of a cell: target, last window, decision. */
static void cell_latency_json(const struct cell *cell, struct json_w *w)
{
	const struct lat_window *lw = &cell->win;

	jw_obj(w);
	jw_key(w, "target");
	latctl_target_json(&cell->lat, w);
	jw_key(w, "window");
	if (lw->end_ns) {
		jw_obj(w);
		jw_kint(w, "end_ns", (int64_t)lw->end_ns);
		jw_kint(w, "ms", lw->ms);
		jw_kint(w, "mcps", lw->mcps);
		jw_kint(w, "samples", (int64_t)lw->samples);
		jw_kdouble(w, "percentile",
			   cell->lat.on ? cell->lat.pct : LATCTL_PCT_DEFAULT);
		jw_kint(w, "tail_ns", (int64_t)lw->tail_ns);
		jw_kint(w, "p50_ns", (int64_t)lw->p50_ns);
		jw_kint(w, "max_ns", (int64_t)lw->max_ns);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	jw_kstr(w, "action", action_name(lw->action));
	jw_kstr(w, "reason", lw->reason);
	jw_obj_end(w);
}

static const char *const top_keys[] = { "op", "moves_since", NULL };

int latctl_op_top(struct super *s, const struct json *req, struct req_ctx *c,
		  struct json_w *w)
{
	int64_t since = 0;
	bool has;

	if (req_check_keys(req, top_keys,
			   "a \"cell.top\" request (it takes moves_since)", c) ||
	    req_get_int(req, "moves_since", 0, INT64_MAX, c, &since, &has))
		return -EINVAL;
	if (!has && moves_total > LATCTL_TOP_MOVES)
		since = (int64_t)(moves_total - LATCTL_TOP_MOVES);
	jw_kint(w, "now_ns", (int64_t)now_ns());
	jw_key(w, "cells");
	jw_arr(w);
	for (int i = 0; i < s->ncells; i++) {
		struct cell *cell = s->cells[i];
		pid_t pids[1024];
		int n = cell_pids(s, cell, pids, (int)ARRAY_SIZE(pids));
		uint64_t cpu_ns = 0;
		char list[1024];

		for (int k = 0; k < n; k++)
			cpu_ns += proc_cpu_ns(pids[k]);
		jw_obj(w);
		jw_kstr(w, "name", cell->name);
		jw_kstr(w, "class", cell->cls == CLASS_CG ? "cg" : "ll");
		jw_kint(w, "priority", cell->priority);
		cpulist_format(&cell->cpus, list, sizeof(list));
		jw_kstr(w, "cpus", list);
		jw_kint(w, "cores", ncores(cell));
		jw_kint(w, "provision", cell->provision);
		jw_kint(w, "min_cores", cell->squeezable ? 0 : 1);
		jw_kbool(w, "frozen", cell->frozen);
		jw_kint(w, "pids", n);
		jw_kint(w, "mcps", mcp_cell_count(cell->name));
		jw_kint(w, "cpu_ns", (int64_t)cpu_ns);
		jw_key(w, "latency");
		cell_latency_json(cell, w);
		jw_key(w, "borrowed");
		jw_arr(w);
		for (int k = 0; k < cell->nloans; k++) {
			jw_obj(w);
			jw_kint(w, "cpu", cell->loans[k].cpu);
			jw_kstr(w, "from", cell->loans[k].from);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_kint(w, "moves_total", (int64_t)moves_total);
	jw_key(w, "moves");
	moves_json((uint64_t)since, w);
	return 0;
}

void latctl_status_json(struct super *s, struct json_w *w)
{
	jw_obj(w);
	jw_kint(w, "moves_total", (int64_t)moves_total);
	jw_key(w, "last_move");
	if (moves_total)
		move_json(&moves[(moves_total - 1) % LATCTL_MOVES_MAX], w);
	else
		jw_null(w);
	jw_key(w, "cells");
	jw_arr(w);
	for (int i = 0; i < s->ncells; i++) {
		if (!s->cells[i]->lat.on)
			continue;
		jw_obj(w);
		jw_kstr(w, "name", s->cells[i]->name);
		jw_kint(w, "priority", s->cells[i]->priority);
		jw_kint(w, "borrowed", s->cells[i]->nloans);
		jw_key(w, "latency");
		cell_latency_json(s->cells[i], w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}
