/* super_policy_stubs.h - stand-ins, shared by the policy tests
 * (super_latctl_policy, super_lend_policy), for the parts of atolld they
 * do not compile in: cells are plain structs, processes do not exist.
 * Include after the atolld sources. */
#ifndef ATOLL_TESTS_SUPER_POLICY_STUBS_H
#define ATOLL_TESTS_SUPER_POLICY_STUBS_H

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

#endif
