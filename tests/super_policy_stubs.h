/* super_policy_stubs.h - stand-ins, shared by the policy tests
 * (super_latctl_policy, super_lend_policy), for the parts of atolld they
 * do not compile in: the node is `sup`, cells are plain structs, a core
 * move only rewrites the cpu sets (and counts in moves_done), processes
 * do not exist. Include after the atolld sources and harness.h. */
#ifndef ATOLL_TESTS_SUPER_POLICY_STUBS_H
#define ATOLL_TESTS_SUPER_POLICY_STUBS_H

static struct super sup;
static int moves_done;

struct cell *cell_find(struct super *s, const char *name)
{
	for (int i = 0; i < s->ncells; i++)
		if (!strcmp(s->cells[i]->name, name))
			return s->cells[i];
	return NULL;
}

int cell_pids(struct super *s, struct cell *cell, pid_t *pids, int cap)
{
	(void)s;
	(void)cell;
	(void)pids;
	(void)cap;
	return 0;
}

uint64_t proc_cpu_ns(pid_t pid)
{
	(void)pid;
	return 0;
}

int cell_move_core(struct super *s, struct cell *from, struct cell *to,
		   int cpu, char *msg)
{
	(void)s;
	(void)msg;
	CHECK(!from || CPU_ISSET(cpu, &from->cpus));
	CHECK(!to || !CPU_ISSET(cpu, &to->cpus));
	for (int i = 0; !from && i < sup.ncells; i++)
		CHECK(!CPU_ISSET(cpu, &sup.cells[i]->cpus));
	if (from)
		CPU_CLR(cpu, &from->cpus);
	if (to)
		CPU_SET(cpu, &to->cpus);
	moves_done++;
	return 0;
}

/* c's cpus as a list ("0,4-5"); eight calls may be live at once. */
static const char *cpus_of(const struct cell *c)
{
	static char buf[8][64];
	static int k;
	char *b = buf[k++ % 8];

	cpulist_format(&c->cpus, b, 64);
	return b;
}

#define CHECK_CPUS(c, want)                                                 \
	do {                                                                \
		if (strcmp(cpus_of(c), (want))) {                           \
			fprintf(stderr, "FAIL %s:%d: cell %s holds cpus %s, want %s (%s)\n", \
				__FILE__, __LINE__, (c)->name, cpus_of(c),  \
				(want), (c)->win.reason);                   \
			exit(TEST_FAIL);                                    \
		}                                                           \
	} while (0)

#endif
