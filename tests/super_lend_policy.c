/* super_lend_policy.c - best-effort sharing's decisions (lend.c), on a
 * simulated node of 8 cores and 64 GiB: lend.c, drf.c and the latency
 * controller (latctl.c, for its free-core rule and move ring) are
 * compiled in; a core move only rewrites the cpu sets. Checked:
 *   - spare cores go one at a time by DRF (a cell with a big memory
 *     limit waits), first free cores within admission, as free-pool
 *     loans, then another cell's idle provision, as loans owed to it
 *     that its reservation, not the borrower's, counts: the reservations
 *     stay within the node;
 *   - lend_reclaim() gives an owner its core back;
 *   - a smaller want gives best-effort loans back, last first, and the
 *     freed cores go on by DRF;
 *   - a smaller provision turns a loan it no longer backs into a
 *     free-pool loan when admission allows;
 *   - a request for cores takes back best-effort loans from the free
 *     pool (lend_revoke()), never a provision's loan or the latency
 *     controller's, with "reclaim" moves naming the requester;
 *   - every loan and return is in the cell.top move ring.
 * Needs nothing from the machine. */
#include "../src/super/drf.c"
#include "../src/super/latctl.c"
#include "../src/super/lend.c"
#include "../src/super/req.c"

#include "harness.h"
#include "super_policy_stubs.h"

/* ---- stand-ins for the rest of atolld ---- */

static int journal_writes;

int cell_reserved(const struct cell *c)
{
	int n = CPU_COUNT(&c->cpus) - cell_prov_loans(c);

	return c->provision > n ? c->provision : n;
}

int mcp_cell_count(const char *cell)
{
	(void)cell;
	return 0;
}

int mcp_cell_latency(const char *cell, struct hist *win)
{
	(void)cell;
	(void)win;
	return 0;
}

int journal_write(struct super *s, char *msg)
{
	(void)s;
	(void)msg;
	journal_writes++;
	return 0;
}

/* ---- the simulated node ---- */

#define GIB (1ull << 30)

static struct cell *add(const char *name, const char *cpus, int prov,
			int want, uint64_t mem)
{
	struct cell *c = calloc(1, sizeof(*c));

	CHECK(c != NULL);
	snprintf(c->name, sizeof(c->name), "%s", name);
	CHECK_OK(cpulist_parse(cpus, &c->cpus));
	c->provision = prov;
	c->want = want;
	c->mem = mem;
	sup.cells[sup.ncells++] = c;
	return c;
}

/* Loan k of c: cpu, owner, marks. */
static void check_loan(const struct cell *c, int k, int cpu, const char *from,
		       bool prov)
{
	CHECK(k < c->nloans);
	CHECK_EQ(c->loans[k].cpu, cpu);
	CHECK(!strcmp(c->loans[k].from, from));
	CHECK_EQ(c->loans[k].prov, prov);
	CHECK(c->loans[k].drf);
}

static const char *last_direction(void)
{
	return moves[(moves_total - 1) % LATCTL_MOVES_MAX].direction;
}

int main(void)
{
	struct cell *own, *kv, *web;
	cpu_set_t set;

	CHECK_OK(cpulist_parse("0-7", &sup.managed));
	sup.inv.mem_total = 64 * GIB;
	own = add("own", "0", 3, 1, 0);           /* 2 idle provisioned */
	kv = add("kv", "1", 0, 4, 32 * GIB);       /* share 1/2 at once */
	web = add("web", "2", 0, 3, 0);            /* share 1/8 */
	CHECK_EQ(super_reserved(&sup), 5);

	/* web first (lower share) from the free cores, then kv: one free
	 * core left within admission, then own's idle provision */
	lend_settle(&sup);
	CHECK_CPUS(web, "2-4");
	check_loan(web, 0, 3, "", false);
	check_loan(web, 1, 4, "", false);
	CHECK_CPUS(kv, "1,5-7");
	check_loan(kv, 0, 5, "", false);
	check_loan(kv, 1, 6, "own", true);
	check_loan(kv, 2, 7, "own", true);
	CHECK_CPUS(own, "0");
	CHECK_EQ(cell_reserved(kv), 2);            /* own's provision: 2 */
	CHECK_EQ(super_reserved(&sup), 8);
	CHECK_EQ(moves_done, 5);
	CHECK(!strcmp(last_direction(), "lend"));
	lend_settle(&sup);                         /* settled: nothing */
	CHECK_EQ(moves_done, 5);
	printf("DRF lending: free cores, then an idle provision\n");

	/* own asks for a core: kv gives cpu 7 back at once */
	CPU_ZERO(&set);
	CPU_SET(7, &set);
	CHECK_OK(lend_reclaim(&sup, own, &set, (char[MSG_MAX]){ 0 }));
	CHECK_CPUS(own, "0,7");
	CHECK_CPUS(kv, "1,5-6");
	CHECK(!strcmp(last_direction(), "reclaim"));
	lend_settle(&sup);                         /* kv wants 4: none spare */
	CHECK_CPUS(kv, "1,5-6");
	CHECK_EQ(super_reserved(&sup), 8);
	printf("the owner takes its core back\n");

	/* web wants 1: its loans go back, last first; kv gets one */
	web->want = 1;
	lend_settle(&sup);
	CHECK_CPUS(web, "2");
	CHECK_EQ(web->nloans, 0);
	CHECK_CPUS(kv, "1,3,5-6");
	check_loan(kv, 2, 3, "", false);
	CHECK(!strcmp(last_direction(), "lend"));
	CHECK(!strcmp(moves[(moves_total - 2) % LATCTL_MOVES_MAX].direction,
		      "return"));
	CHECK(super_reserved(&sup) <= 8);
	printf("a smaller want gives back; DRF hands on\n");

	/* own's provision shrinks to what it holds: kv's loan of cpu 6 is
	 * no longer backed, and becomes a free-pool loan (admission allows) */
	own->provision = 2;
	journal_writes = 0;
	lend_settle(&sup);
	CHECK_CPUS(kv, "1,3,5-6");
	check_loan(kv, 1, 6, "", false);
	CHECK_EQ(journal_writes, 1);
	CHECK_EQ(super_reserved(&sup), 7);
	printf("an unbacked loan turns to the free pool\n");

	/* A request for cores takes back best-effort loans from the free
	 * pool (kv's 3, 5, 6), never a latency controller's loan (web's
	 * cpu 4, from the free pool too) nor a loan of a provision. */
	CPU_SET(4, &web->cpus);
	web->loans[web->nloans++] = (struct cell_loan){ .cpu = 4 };
	CHECK(!cell_loan_revocable(&web->loans[0]));
	CHECK(!cell_loan_revocable(&(struct cell_loan){ .cpu = 1, .from = "own",
							.prov = true, .drf = true }));
	lend_revocable(&sup, NULL, &set);
	CHECK_EQ(CPU_COUNT(&set), 3);
	CHECK(CPU_ISSET(3, &set) && CPU_ISSET(5, &set) && CPU_ISSET(6, &set));
	lend_revocable(&sup, kv, &set);            /* not its own loans */
	CHECK_EQ(CPU_COUNT(&set), 0);
	CHECK_EQ(super_reserved(&sup), 8);
	CPU_ZERO(&set);
	CPU_SET(5, &set);
	CHECK_EQ(lend_reserved_without(kv, &set), 3);
	CPU_SET(4, &set);                          /* latctl's: still counted */
	CHECK_EQ(lend_reserved_without(web, &set), 2);
	{
		cpu_set_t taken;

		/* "new" takes cpu 5; cpu 6 goes back for admission only */
		CPU_ZERO(&set);
		CPU_SET(5, &set);
		CPU_SET(6, &set);
		CPU_ZERO(&taken);
		CPU_SET(5, &taken);
		moves_done = 0;
		CHECK_OK(lend_revoke(&sup, "new", &set, &taken,
				     (char[MSG_MAX]){ 0 }));
		CHECK_EQ(moves_done, 2);
		CHECK_CPUS(kv, "1,3");
		CHECK_EQ(kv->nloans, 1);
		check_loan(kv, 0, 3, "", false);
		CHECK_CPUS(web, "2,4");
		CHECK_EQ(super_reserved(&sup), 6);
		for (int i = 2; i >= 1; i--) {
			const struct latctl_move *mv =
				&moves[(moves_total - (uint64_t)i) % LATCTL_MOVES_MAX];

			CHECK(!strcmp(mv->direction, "reclaim"));
			CHECK(!strcmp(mv->cell, "kv") && !strcmp(mv->from, "kv"));
			CHECK_EQ(mv->cpu, i == 2 ? 5 : 6);
			CHECK(!strcmp(mv->to, i == 2 ? "new" : ""));
			CHECK(strstr(mv->reason, "best-effort") != NULL);
		}
		/* a stale request (cpu 4 is latctl's) moves nothing */
		CPU_ZERO(&set);
		CPU_SET(4, &set);
		CHECK(lend_revoke(&sup, "new", &set, &set,
				  (char[MSG_MAX]){ 0 }) < 0);
		CHECK_EQ(moves_done, 2);
		CHECK_CPUS(web, "2,4");
	}
	printf("a request takes back best-effort cores, and only those\n");

	for (int i = 0; i < sup.ncells; i++)
		free(sup.cells[i]);
	printf("ok\n");
	return TEST_PASS;
}
