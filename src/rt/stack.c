/* stack.c - uthread stacks: an mmap with a guard page, cached per vcore.
 *
 * Layout of one mapping, low to high: a PROT_NONE guard page (a stack
 * overflow faults instead of corrupting the neighbour), the usable stack,
 * and struct rt_stack in the last bytes. Stacks are reserved, not
 * committed: the kernel backs only the pages a uthread touches, so an idle
 * uthread costs the few pages its deepest call used.
 *
 * The cache keeps up to STACK_CACHE_MAX stacks per vcore so that creating
 * and ending uthreads needs no system call in the steady state. Only the
 * owner vcore touches its cache; no lock.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define STACK_CACHE_MAX 64u

static size_t page_size(void)
{
	static size_t pg;

	if (!pg)
		pg = (size_t)sysconf(_SC_PAGESIZE);
	return pg;
}

static struct rt_stack *stack_map(size_t size)
{
	size_t pg = page_size();
	/* Room for the header on top, so the usable part is >= size. */
	size_t map_size = ALIGN_UP(size + 2 * CACHE_LINE, pg) + pg;
	struct rt_stack *st;
	char *map;

	/* MAP_NORESERVE: commit on touch only; MAP_STACK documents intent. */
	map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		   -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map, pg, PROT_NONE)) {
		munmap(map, map_size);
		return NULL;
	}
	st = (struct rt_stack *)(map + map_size - sizeof(*st));
	st = (struct rt_stack *)((uintptr_t)st & ~(uintptr_t)63);
	st->next = NULL;
	st->map = map;
	st->map_size = map_size;
	st->size = (size_t)((char *)st - (map + pg));
	st->san_fiber = san_fiber_create();
	return st;
}

static void stack_unmap(struct rt_stack *st)
{
	san_fiber_destroy(st->san_fiber);
	munmap(st->map, st->map_size);
}

/* A stack of at least size usable bytes; NULL when memory is exhausted.
 * vc may be NULL (no cache). Called by vc's owner. */
struct rt_stack *stack_get(struct vcore *vc, size_t size)
{
	struct rt_stack *st, **pp;

	if (vc) {
		for (pp = &vc->stack_cache; (st = *pp); pp = &st->next) {
			if (st->size >= size && st->size - size < page_size() * 2) {
				*pp = st->next;
				vc->nr_stacks_cached--;
				st->next = NULL;
				return st;
			}
		}
	}
	return stack_map(size);
}

void stack_put(struct vcore *vc, struct rt_stack *st)
{
	if (vc && vc->nr_stacks_cached < STACK_CACHE_MAX) {
		st->next = vc->stack_cache;
		vc->stack_cache = st;
		vc->nr_stacks_cached++;
		return;
	}
	stack_unmap(st);
}

void stack_cache_drain(struct vcore *vc)
{
	struct rt_stack *st;

	while ((st = vc->stack_cache)) {
		vc->stack_cache = st->next;
		stack_unmap(st);
	}
	vc->nr_stacks_cached = 0;
}
