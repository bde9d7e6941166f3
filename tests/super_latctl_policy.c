/* super_latctl_policy.c - the latency controller's decisions (latctl.c),
 * on a simulated node of 8 cores: the real controller is compiled in
 * (latctl.c and req.c are included), and the pieces of atolld it drives
 * are stand-ins
 * below: cells are plain structs, a core move only rewrites the cpu sets,
 * and each cell's window of latencies is synthetic. Checked:
 *   - a free core first, unless admission reserves it for a provision;
 *   - else the donor of lowest priority strictly below the cell's, never
 *     below its floor max(provision, 1); ties: most spare cores, then name;
 *     a cell that is not above a donor's priority gets nothing;
 *   - a donor gives its last borrowed core first, and the loan stays owed
 *     to the core's owner (a chain kv <- web <- batch returns to batch);
 *   - below lt (or no request for 2 s of windows in a row): the last
 *     loan goes back, last in first out, to its lender, or to the free
 *     pool once the lender is gone; never a core of the cell's own;
 *   - one move per cell per window, none without data or within [lt, ut];
 *   - the moves ring through "cell.top" (seq, moves_since) and "status".
 * Needs nothing from the machine. */
#include "../src/super/latctl.c"
#include "../src/super/req.c"

#include "harness.h"
#include "super_policy_stubs.h"

/* ---- stand-ins for the rest of atolld ---- */

struct fake_window {
	int mcps;
	uint64_t value_ns, count;
};

static struct fake_window fake[CELLS_MAX];

int cell_reserved(const struct cell *c)
{
	int n = CPU_COUNT(&c->cpus);

	return c->provision > n ? c->provision : n;
}

static struct fake_window *fake_of(const char *cell)
{
	for (int i = 0; i < sup.ncells; i++)
		if (!strcmp(sup.cells[i]->name, cell))
			return &fake[i];
	return NULL;
}

int mcp_cell_count(const char *cell)
{
	struct fake_window *f = fake_of(cell);

	return f ? f->mcps : 0;
}

int mcp_cell_latency(const char *cell, struct hist *win)
{
	struct fake_window *f = fake_of(cell);

	if (!f)
		return 0;
	if (win && f->count)
		hist_record_n(win, f->value_ns, f->count);
	return f->mcps;
}

/* ---- the simulated node ---- */

#define UT 2000000u
#define LT 1000000u

static struct cell *add(const char *name, const char *cpus, int prio,
			int prov, bool target)
{
	struct cell *c = calloc(1, sizeof(*c));

	CHECK(c != NULL);
	snprintf(c->name, sizeof(c->name), "%s", name);
	CHECK_OK(cpulist_parse(cpus, &c->cpus));
	c->priority = prio;
	c->provision = prov;
	if (target)
		c->lat = (struct lat_target){ true, LT, UT, 100, 99.0 };
	fake[sup.ncells] = (struct fake_window){ 0, 0, 0 };
	sup.cells[sup.ncells++] = c;
	return c;
}

static void reset(void)
{
	for (int i = 0; i < sup.ncells; i++)
		free(sup.cells[i]);
	sup.ncells = 0;
	CHECK_OK(cpulist_parse("0-7", &sup.managed));
	moves_done = 0;
}

/* The cell's next window reports count samples of value_ns (from mcps
 * MCPs) and ends now. */
static void window(struct cell *c, int mcps, uint64_t value_ns,
		   uint64_t count)
{
	struct fake_window *f = fake_of(c->name);

	CHECK(f != NULL);
	*f = (struct fake_window){ mcps, value_ns, count };
	c->win.start_ns = now_ns() - 100 * NSEC_PER_MSEC;
	c->win.next_ns = 1;
}

static void tick_one(struct cell *c, int mcps, uint64_t value_ns,
		     uint64_t count)
{
	window(c, mcps, value_ns, count);
	latctl_tick(&sup);
}

static void check_free_first(void)
{
	struct cell *kv, *batch;

	reset();
	kv = add("kv", "0", 10, 0, true);
	batch = add("batch", "1-3", 0, 0, false);
	tick_one(kv, 1, 5 * UT, 100);              /* 4-7 are free */
	CHECK_CPUS(kv, "0,4");
	CHECK_CPUS(batch, "1-3");
	CHECK_EQ(kv->nloans, 1);
	CHECK(!strcmp(kv->loans[0].from, ""));
	CHECK_EQ(kv->win.action, LAT_GREW);
	/* a provision reserves the free cores: taken from batch instead */
	batch->provision = 3;
	add("res", "5", 0, 3, false);              /* reserves 3: 5-7 */
	tick_one(kv, 1, 5 * UT, 100);
	CHECK_CPUS(kv, "0,4");                     /* batch at its floor 3 */
	CHECK_EQ(kv->win.action, LAT_BLOCKED);
	batch->provision = 0;
	tick_one(kv, 1, 5 * UT, 100);
	CHECK_CPUS(kv, "0,3-4");
	CHECK_CPUS(batch, "1-2");
	CHECK(!strcmp(kv->loans[1].from, "batch"));
	printf("free cores first, admission respected\n");
}

static void check_donor_choice(void)
{
	struct cell *kv, *low, *mid, *mid2;

	reset();
	kv = add("kv", "0", 10, 0, true);
	mid = add("mid", "1-2", 5, 0, false);
	low = add("low", "3-4", 1, 2, false);      /* at its floor: 2 */
	mid2 = add("amid", "5-7", 5, 0, false);    /* same priority, more spare */
	tick_one(kv, 1, 5 * UT, 100);
	CHECK_CPUS(low, "3-4");
	CHECK_CPUS(mid2, "5-6");                   /* highest core of amid */
	CHECK_CPUS(kv, "0,7");
	tick_one(kv, 1, 5 * UT, 100);              /* 1 spare each: by name */
	CHECK_CPUS(mid2, "5");
	CHECK_CPUS(mid, "1-2");
	tick_one(kv, 1, 5 * UT, 100);
	CHECK_CPUS(mid, "1");
	CHECK_CPUS(kv, "0,2,6-7");
	tick_one(kv, 1, 5 * UT, 100);              /* everyone at a floor */
	CHECK_CPUS(kv, "0,2,6-7");
	CHECK_EQ(kv->win.action, LAT_BLOCKED);
	CHECK(strstr(kv->win.reason, "no core can be taken") != NULL);
	CHECK_EQ(moves_done, 3);
	/* equal priority gives nothing */
	reset();
	kv = add("kv", "0", 5, 0, true);
	mid = add("mid", "1-7", 5, 0, false);
	tick_one(kv, 1, 5 * UT, 100);
	CHECK_CPUS(kv, "0");
	CHECK_EQ(moves_done, 0);
	printf("donors: lowest priority below the cell, floors, ties\n");
}

static void check_give_back(void)
{
	struct cell *kv, *a, *b;

	reset();
	kv = add("kv", "0", 10, 0, true);
	a = add("a", "1-3", 0, 0, false);
	b = add("b", "4-7", 1, 0, false);
	tick_one(kv, 1, 5 * UT, 100);              /* from a (prio 0): 3 */
	a->priority = 2;                           /* now b is the lowest */
	tick_one(kv, 1, 5 * UT, 100);              /* from b: 7 */
	CHECK_CPUS(kv, "0,3,7");
	tick_one(kv, 1, (LT + UT) / 2, 100);       /* within: nothing */
	CHECK_CPUS(kv, "0,3,7");
	CHECK_EQ(kv->win.action, LAT_NONE);
	tick_one(kv, 1, LT / 2, 100);              /* last in, first out */
	CHECK_CPUS(kv, "0,3");
	CHECK_CPUS(b, "4-7");
	CHECK_EQ(kv->win.action, LAT_SHRANK);
	latctl_forget_lender(&sup, "a");           /* a destroyed */
	CHECK_EQ(idle_windows(kv), 20);            /* 2 s of 100 ms windows */
	for (int i = 1; i < 20; i++) {             /* quiet: maybe stalled */
		tick_one(kv, 1, 0, 0);
		CHECK_CPUS(kv, "0,3");
	}
	CHECK(strstr(kv->win.reason, "no request in the window") != NULL);
	tick_one(kv, 1, 0, 0);                     /* 20 in a row: idle */
	CHECK_CPUS(kv, "0");
	CHECK_CPUS(a, "1-2");                      /* went to the free pool */
	tick_one(kv, 1, LT / 2, 100);              /* its own core stays */
	CHECK_CPUS(kv, "0");
	CHECK(strstr(kv->win.reason, "nothing borrowed") != NULL);
	tick_one(kv, 0, 0, 0);                     /* no MCP: no data */
	CHECK(strstr(kv->win.reason, "no data") != NULL);
	CHECK_EQ(moves_done, 4);
	printf("give back: LIFO to the lender, free pool when gone, own cores kept\n");
}

static void check_chain(void)
{
	struct cell *kv, *web, *batch;

	reset();
	kv = add("kv", "0", 10, 0, true);
	web = add("web", "1", 5, 0, true);
	batch = add("batch", "2-7", 0, 0, false);
	tick_one(web, 1, 5 * UT, 100);             /* web takes 7 from batch */
	CHECK_CPUS(web, "1,7");
	batch->provision = 5;                      /* batch: no more spare */
	tick_one(kv, 1, 5 * UT, 100);              /* kv takes web's loan */
	CHECK_CPUS(kv, "0,7");
	CHECK_CPUS(web, "1");
	CHECK_EQ(web->nloans, 0);
	CHECK(!strcmp(kv->loans[0].from, "batch"));
	tick_one(kv, 1, LT / 2, 100);
	CHECK_CPUS(batch, "2-7");                  /* back to its owner */
	printf("a loan is owed to the core's owner\n");
}

static void check_one_per_window(void)
{
	struct cell *kv;

	reset();
	kv = add("kv", "0", 10, 0, true);
	add("batch", "1-7", 0, 0, false);
	tick_one(kv, 1, 5 * UT, 100);
	latctl_tick(&sup);                         /* the window did not end */
	latctl_tick(&sup);
	CHECK_EQ(moves_done, 1);
	CHECK(latctl_timeout_ms(&sup) > 0 && latctl_timeout_ms(&sup) <= 100);
	CHECK_EQ(kv->win.samples, 100);
	CHECK(kv->win.ms >= 100 && kv->win.ms < 10000);
	CHECK(kv->win.tail_ns > 5 * UT - 5 * UT / 100 &&
	      kv->win.tail_ns < 5 * UT + 5 * UT / 100);
	printf("one move per window\n");
}

static struct json_doc *parse(struct json_w *w)
{
	char err[128];
	struct json_doc *d;

	CHECK(!w->oom);
	d = json_parse(w->buf, w->len, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "FAIL: not JSON (%s): %s\n", err, w->buf);
		exit(TEST_FAIL);
	}
	return d;
}

static void check_reports(void)
{
	static const char *const reqs[] = { "{\"op\":\"cell.top\"}",
		"{\"op\":\"cell.top\",\"moves_since\":0}",
		"{\"op\":\"cell.top\",\"moves_since\":3}" };
	uint64_t total = moves_total;
	struct json_w w;
	struct json_doc *d, *req;
	struct req_ctx c;
	char err[64];

	/* 20 more moves: cell.top sends the last 16 unless asked */
	reset();
	add("kv", "0", 10, 0, true);
	add("batch", "1-7", 0, 0, false);
	for (int i = 0; i < 10; i++) {
		tick_one(sup.cells[0], 1, 5 * UT, 100);
		tick_one(sup.cells[0], 1, LT / 2, 100);
	}
	CHECK_EQ(moves_total, total + 20);
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		const struct json *list, *first;
		size_t want = i == 0 ? 16 : i == 1 ? (size_t)moves_total :
			      (size_t)moves_total - 3;

		req = json_parse(reqs[i], strlen(reqs[i]), err, sizeof(err));
		CHECK(req != NULL);
		memset(&c, 0, sizeof(c));
		jw_init(&w);
		jw_obj(&w);
		CHECK_OK(latctl_op_top(&sup, json_root(req), &c, &w));
		jw_obj_end(&w);
		d = parse(&w);
		list = json_get(json_root(d), "moves");
		CHECK_EQ(list->len, want);
		first = list->kids[0];
		CHECK_EQ(json_get(first, "seq")->i,
			 (int64_t)(moves_total - want + 1));
		CHECK_EQ(json_get(json_get(json_root(d), "cells")->kids[0],
				  "cores")->i, 1);
		json_free(d);
		json_free(req);
		jw_free(&w);
	}
	jw_init(&w);
	jw_obj(&w);
	jw_key(&w, "latctl");
	latctl_status_json(&sup, &w);
	jw_obj_end(&w);
	d = parse(&w);
	CHECK_EQ(json_get(json_get(json_root(d), "latctl"), "moves_total")->i,
		 (int64_t)moves_total);
	CHECK(!strcmp(json_get(json_get(json_get(json_root(d), "latctl"),
					"last_move"), "direction")->s,
		      "shrink"));
	json_free(d);
	jw_free(&w);
	printf("reports: cell.top moves and status\n");
}

int main(void)
{
	check_free_first();
	check_donor_choice();
	check_give_back();
	check_chain();
	check_one_per_window();
	check_reports();
	reset();
	printf("ok\n");
	return TEST_PASS;
}
