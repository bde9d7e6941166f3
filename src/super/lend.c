/* lend.c - best-effort cores: spare cores lent by Dominant Resource
 * Fairness to cells below their want, and provisioned cores taken back
 * as soon as their owner asks (Akaros 2.6: provisioning vs allocation).
 *
 * Design note. A cell holds cores (allocation) and may have a provision
 * (a guarantee) and a want (cores it could use; = its own cores when it
 * has no best-effort demand). Spare cores are
 *   - free cores: held by nobody and reserved by nobody, and
 *   - idle provisioned cores: provision - own cores - cores already lent
 *     from that provision, for each cell (physically they are free cores:
 *     admission keeps the sum of max(own, provision) within the managed
 *     cores, so a free core exists for every idle provisioned one).
 * lend_settle() hands them out one at a time: drf_pick() (drf.c) chooses
 * the cell (lowest dominant share over (cores, memory)); it takes
 *   1. a core of its own idle provision, as its own (no loan), else
 *   2. a free core as a loan owed to the free pool, if admission allows
 *      (such a loan counts in the borrower's reservation, exactly as a
 *      free core the latency controller takes), else
 *   3. a core of another cell's idle provision (the one with the most
 *      idle, then the name) as a loan owed to it, marked prov: that
 *      provision reserves the core, so the borrower's reservation does not
 *      count it and the sum of guarantees never exceeds the managed cores.
 *
 * Taking back: an owner asks for its cores with a resize that gives it
 * cores (up to its provision): place() (cell.c) takes the cores lent from
 * its provision first, before any free core (as Akaros does: they are its
 * own, and free cores stay for others), and lend_reclaim() moves each one
 * home with cell_move_core() (the borrower's MCPs get a revocation with
 * its deadline). A create cannot be owed anything (a destroyed lender's
 * loans become free-pool loans). lend_settle() also takes back, before
 * lending, what is no longer backed: a prov loan whose owner now holds
 * its provision by other means (the latency controller, a smaller
 * provision) becomes a free-pool loan if admission allows, else goes to
 * the free pool; and a best-effort loan above the borrower's want goes
 * back. The latency controller's loans are left to it.
 * Best-effort cores never block a guarantee: a best-effort loan from the
 * free pool (cell_loan_revocable()) is a free core lent until someone
 * asks. place() (cell.c) counts such cores as free for a create or a
 * resize (after the cell's own and owed cores, and after truly free
 * ones, lowest cpu first), and takes back more of them if admission
 * needs it (a provision); once the whole request is validated,
 * lend_revoke() moves each to the free pool (the request then takes it)
 * with a "reclaim" move and its reason. Not revocable: a loan of a
 * provision (its owner's guarantee; only the owner takes it back) and
 * the latency controller's loans, even from the free pool: the
 * controller took them for a cell above its latency target, within
 * admission, and gives them back by its own rules (tail below lt, or
 * idle); were they revocable, a create would undo the controller's last
 * move and the controller would take a donor's core at its next window,
 * so admission would depend on the timing of windows. A create refused
 * for them says so; a provision is the way to guarantee cores.
 * Every loan and return is logged with its reason and recorded in the
 * cell.top move ring (latctl_note_move()). A move that fails is logged
 * and retried at the next settle (the next event), not in a loop.
 *
 * Single-threaded like the rest of atolld: no locks.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <atoll/log.h>

/* ---- the cells' figures ---- */

static int held(const struct cell *c)
{
	return CPU_COUNT(&c->cpus);
}

/* Cores the cell holds of its own (not on loan). */
static int own(const struct cell *c)
{
	return held(c) - c->nloans;
}

/* Loans, anywhere, of cores from owner's provision. */
static int lent(struct super *s, const char *owner)
{
	int n = 0;

	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; k < s->cells[i]->nloans; k++)
			n += s->cells[i]->loans[k].prov &&
			     !strcmp(s->cells[i]->loans[k].from, owner);
	return n;
}

/* Cores of the cell's provision neither held nor lent. */
static int idle_prov(struct super *s, const struct cell *c)
{
	return c->provision - own(c) - lent(s, c->name);
}

static const char *pool(const char *name)
{
	return *name ? name : "(free)";
}

/* Log a move of lend.c and put it in the ring. */
static void note(const char *dir, const struct cell *cell, const char *from,
		 const char *to, int cpu, const char *reason)
{
	LOG_INFO("lend: %s cpu %d from %s to %s: %s", dir, cpu, pool(from),
		 pool(to), reason);
	latctl_note_move(dir, cell->name, from, to, cpu, reason);
}

/* ---- taking back ---- */

void lend_owed(struct super *s, const char *owner, cpu_set_t *out)
{
	CPU_ZERO(out);
	for (int i = 0; i < s->ncells; i++)
		for (int k = 0; k < s->cells[i]->nloans; k++)
			if (s->cells[i]->loans[k].prov &&
			    !strcmp(s->cells[i]->loans[k].from, owner))
				CPU_SET(s->cells[i]->loans[k].cpu, out);
}

/* Move the core of b's loan k to `to` (NULL: the free pool); the loan
 * ends first, since cell_move_core() journals it. */
static int repay(struct super *s, struct cell *b, int k, struct cell *to,
		 const char *dir, const char *reason, char *msg)
{
	struct cell_loan l = b->loans[k];
	int r;

	cell_loan_drop(b, k);
	r = cell_move_core(s, b, to, l.cpu, msg);
	if (r) {
		cell_loan_undrop(b, k, &l);
		return r;
	}
	note(dir, b, b->name, to ? to->name : "", l.cpu, reason);
	return 0;
}

int lend_reclaim(struct super *s, struct cell *owner, const cpu_set_t *cpus,
		 char *msg)
{
	char why[160];

	snprintf(why, sizeof(why), "cell '%s' asked for its provisioned cores",
		 owner->name);
	for (int i = 0; i < s->ncells; i++) {
		struct cell *b = s->cells[i];

		for (int k = b->nloans - 1; k >= 0; k--) {
			const struct cell_loan *l = &b->loans[k];
			int r;

			if (!l->prov || strcmp(l->from, owner->name) ||
			    !CPU_ISSET(l->cpu, cpus))
				continue;
			r = repay(s, b, k, owner, "reclaim", why, msg);
			if (r)
				return r;
		}
	}
	return 0;
}

void lend_revocable(struct super *s, const struct cell *self, cpu_set_t *out)
{
	CPU_ZERO(out);
	for (int i = 0; i < s->ncells; i++) {
		const struct cell *b = s->cells[i];

		if (b == self || b->destroying)
			continue;
		for (int k = 0; k < b->nloans; k++)
			if (cell_loan_revocable(&b->loans[k]))
				CPU_SET(b->loans[k].cpu, out);
	}
}

int lend_reserved_without(const struct cell *c, const cpu_set_t *revoked)
{
	int n = held(c) - cell_prov_loans(c);

	for (int k = 0; k < c->nloans; k++)
		n -= cell_loan_revocable(&c->loans[k]) &&
		     CPU_ISSET(c->loans[k].cpu, revoked);
	return c->provision > n ? c->provision : n;
}

/* The borrower of the revocable loan of cpu, its index in *k; NULL if
 * none. */
static struct cell *revocable_of(struct super *s, int cpu, int *k)
{
	for (int i = 0; i < s->ncells; i++)
		for (*k = 0; *k < s->cells[i]->nloans; (*k)++)
			if (s->cells[i]->loans[*k].cpu == cpu &&
			    cell_loan_revocable(&s->cells[i]->loans[*k]))
				return s->cells[i];
	return NULL;
}

int lend_revoke(struct super *s, const char *name, const cpu_set_t *cpus,
		const cpu_set_t *taken, char *msg)
{
	char why[200];

	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		struct cell *b;
		struct cell_loan l;
		int k, r;

		if (!CPU_ISSET(cpu, cpus))
			continue;
		b = revocable_of(s, cpu, &k);
		if (!b) {	/* place() checked it: cannot happen */
			snprintf(msg, MSG_MAX,
				 "cpu %d is no longer a best-effort loan", cpu);
			return -ESTALE;
		}
		snprintf(why, sizeof(why),
			 "cell '%s' asked for cores and cpu %d was only lent to cell '%s' as a best-effort core",
			 name, cpu, b->name);
		/* As repay(), but the ring names the cell the core is for. */
		l = b->loans[k];
		cell_loan_drop(b, k);
		r = cell_move_core(s, b, NULL, cpu, msg);
		if (r) {
			cell_loan_undrop(b, k, &l);
			return r;
		}
		note("reclaim", b, b->name, CPU_ISSET(cpu, taken) ? name : "",
		     cpu, why);
	}
	return 0;
}

/* A prov loan no longer backed by its owner's provision: a free-pool
 * loan if admission allows, else back to the free pool. */
static void unback(struct super *s, struct cell *b, int k)
{
	char msg[MSG_MAX], why[200];
	struct cell_loan *l = &b->loans[k], was = *l;

	snprintf(why, sizeof(why),
		 "cell '%s' no longer leaves that core of its provision idle",
		 was.from);
	l->prov = false; /* now counted in b's reservation */
	l->from[0] = '\0';
	if (super_reserved(s) <= CPU_COUNT(&s->managed)) {
		if (!journal_write(s, msg)) {
			LOG_INFO("lend: cpu %d stays with cell '%s' as a loan from the free pool: %s",
				 l->cpu, b->name, why);
			return;
		}
		LOG_WARN("lend: %s", msg);
		*l = was;
		return;
	}
	*l = was;
	if (repay(s, b, k, NULL, "return", why, msg))
		LOG_WARN("lend: cell '%s' keeps cpu %d: giving it back failed: %s",
			 b->name, was.cpu, msg);
}

/* The last loan of owner's provision, anywhere: its borrower and index
 * in *k; NULL if none. */
static struct cell *last_lent(struct super *s, const char *owner, int *k)
{
	for (int i = 0; i < s->ncells; i++)
		for (*k = s->cells[i]->nloans - 1; *k >= 0; (*k)--)
			if (s->cells[i]->loans[*k].prov &&
			    !strcmp(s->cells[i]->loans[*k].from, owner))
				return s->cells[i];
	return NULL;
}

/* Take back what is no longer backed or wanted. */
static void settle_back(struct super *s)
{
	char msg[MSG_MAX], why[200];

	for (int i = 0; i < s->ncells; i++) {
		struct cell *o = s->cells[i];
		int n = lent(s, o->name), k = -1;

		/* Each turn ends one loan, or stops when it could not. */
		while (n && o->provision < own(o) + n) {
			struct cell *b = last_lent(s, o->name, &k);

			if (!b)		/* n counted it: cannot happen */
				break;
			unback(s, b, k);
			if (lent(s, o->name) == n)
				break;
			n--;
		}
	}
	for (int i = 0; i < s->ncells; i++) {
		struct cell *b = s->cells[i];

		for (int k = b->nloans - 1; k >= 0 && held(b) > b->want; k--) {
			if (!b->loans[k].drf)
				continue;
			snprintf(why, sizeof(why),
				 "cell '%s' wants %d cores and holds %d",
				 b->name, b->want, held(b));
			if (repay(s, b, k, NULL, "return", why, msg)) {
				LOG_WARN("lend: cell '%s' keeps cpu %d: %s",
					 b->name, b->loans[k].cpu, msg);
				break;
			}
		}
	}
}

/* ---- lending ---- */

/* The cell with the most idle provisioned cores (then the name), other
 * than cell; NULL if none. */
static struct cell *pick_lender(struct super *s, const struct cell *cell)
{
	struct cell *best = NULL;
	int best_idle = 0;

	for (int i = 0; i < s->ncells; i++) {
		struct cell *o = s->cells[i];
		int n = idle_prov(s, o);

		if (o == cell || o->destroying || n <= 0)
			continue;
		if (!best || n > best_idle ||
		    (n == best_idle && strcmp(o->name, best->name) < 0)) {
			best = o;
			best_idle = n;
		}
	}
	return best;
}

/* Give cell the free core cpu: its own, or a loan. false if it cannot. */
static bool lend_one(struct super *s, struct cell *cell, int cpu,
		     const struct drf_cand *cand, int managed)
{
	struct cell_loan l = { .cpu = cpu, .drf = true };
	struct cell *lender = NULL;
	char msg[MSG_MAX], why[256], mem[32];
	bool loan = true;
	int r;

	if (idle_prov(s, cell) > 0 && latctl_free_core(s, cell) >= 0) {
		loan = false;
	} else if (latctl_free_core(s, cell) < 0) {
		lender = pick_lender(s, cell);
		if (!lender)
			return false;
		snprintf(l.from, sizeof(l.from), "%s", lender->name);
		l.prov = true;
	}
	if (loan && cell->nloans >= CELL_LOANS_MAX)
		return false;
	if (cand->mem)
		size_format(cand->mem, mem, sizeof(mem));
	snprintf(why, sizeof(why),
		 "cell '%s' wants %d cores and holds %d: the lowest dominant share (%d of %d cores, memory limit %s)",
		 cell->name, cell->want, cand->held, cand->held, managed,
		 cand->mem ? mem : "none");
	if (loan)
		cell->loans[cell->nloans++] = l;
	r = cell_move_core(s, NULL, cell, cpu, msg);
	if (r) {
		if (loan)
			cell->nloans--;
		LOG_WARN("lend: cpu %d to cell '%s' failed: %s", cpu, cell->name,
			 msg);
		return false;
	}
	note(loan ? "lend" : "provision", cell, l.from, cell->name, cpu, why);
	return true;
}

void lend_settle(struct super *s)
{
	int managed = CPU_COUNT(&s->managed);
	struct drf_cand cand[CELLS_MAX];
	bool skip[CELLS_MAX] = { false };

	settle_back(s);
	/* Each round gives one core or rules one cell out: bounded. */
	for (int round = 0; round < managed + s->ncells; round++) {
		int n = 0, idx[CELLS_MAX], pick, cpu;
		struct cell *cell;

		for (int i = 0; i < s->ncells; i++) {
			struct cell *c = s->cells[i];

			if (c->destroying || skip[i])
				continue;
			cand[n] = (struct drf_cand){ c->name, held(c), c->want,
						     c->mem, c->priority };
			idx[n++] = i;
		}
		pick = drf_pick(cand, n, managed, s->inv.mem_total);
		if (pick < 0)
			return;
		cpu = latctl_free_core(s, NULL);
		if (cpu < 0)
			return;
		cell = s->cells[idx[pick]];
		if (!lend_one(s, cell, cpu, &cand[pick], managed))
			skip[idx[pick]] = true;
	}
}
