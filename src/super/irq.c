/* irq.c - keep interrupts off the cores of CG cells.
 *
 * For every IRQ whose smp_affinity_list meets a CG cell's cores, write the
 * list without those cores (or, if nothing would remain, the online cores
 * outside every CG cell) and remember the original so destroying the cell,
 * or turning it LL, puts it back. The kernel refuses some IRQs (per-CPU
 * and managed interrupts, or everything inside a container): those are
 * skipped and counted in a note, never an error.
 */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cg_union(struct super *s, cpu_set_t *out)
{
	CPU_ZERO(out);
	for (int i = 0; i < s->ncells; i++)
		if (s->cells[i]->cls == CLASS_CG && !s->cells[i]->destroying)
			CPU_OR(out, out, &s->cells[i]->cpus);
}

void irq_isolate(struct super *s, struct cell *cell, struct notes *nt)
{
	DIR *d;
	struct dirent *de;
	cpu_set_t cg;
	int moved = 0, refused = 0, last_err = 0;

	if (s->no_irq) {
		note_add(nt, "IRQs were not moved: atolld runs with --no-irq");
		return;
	}
	cg_union(s, &cg);
	CPU_OR(&cg, &cg, &cell->cpus);
	d = opendir("/proc/irq");
	if (!d) {
		note_add(nt, "IRQs were not moved: /proc/irq is not readable");
		return;
	}
	while ((de = readdir(d))) {
		char path[128], cur[256], list[1024];
		cpu_set_t set, inter, next;
		int irq, r;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		irq = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/irq/%d/smp_affinity_list", irq);
		if (file_read_str(path, cur, sizeof(cur)) ||
		    cpulist_parse(cur, &set))
			continue;
		CPU_AND(&inter, &set, &cell->cpus);
		if (CPU_COUNT(&inter) == 0)
			continue;
		if (cell->nirqs >= CELL_IRQS_MAX) {
			refused++;
			continue;
		}
		/* next = set minus every CG core; else online minus CG. */
		CPU_XOR(&next, &set, &inter);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &cg))
				CPU_CLR(c, &next);
		if (CPU_COUNT(&next) == 0) {
			next = s->inv.online;
			for (int c = 0; c < CPU_SETSIZE; c++)
				if (CPU_ISSET(c, &cg))
					CPU_CLR(c, &next);
		}
		if (CPU_COUNT(&next) == 0 ||
		    cpulist_format(&next, list, sizeof(list))) {
			refused++;
			continue;
		}
		r = file_write_str(path, list);
		if (r) {
			refused++;
			last_err = -r;
			continue;
		}
		cell->irqs[cell->nirqs].irq = irq;
		snprintf(cell->irqs[cell->nirqs].orig,
			 sizeof(cell->irqs[0].orig), "%s", cur);
		cell->nirqs++;
		moved++;
	}
	closedir(d);
	if (moved || refused)
		note_add(nt, "IRQs moved off cores of cell '%s': %d; left in place (kernel refused%s%s): %d",
			 cell->name, moved, last_err ? ": " : "",
			 last_err ? strerror(last_err) : "", refused);
}

void irq_restore(struct cell *cell, struct notes *nt)
{
	int failed = 0;

	for (int i = 0; i < cell->nirqs; i++) {
		char path[128];

		snprintf(path, sizeof(path), "/proc/irq/%d/smp_affinity_list",
			 cell->irqs[i].irq);
		if (file_write_str(path, cell->irqs[i].orig))
			failed++;
	}
	if (cell->nirqs)
		note_add(nt, "IRQs restored: %d of %d", cell->nirqs - failed,
			 cell->nirqs);
	cell->nirqs = 0;
}
