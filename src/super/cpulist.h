/* cpulist.h - the kernel's cpu-list syntax ("0-3,8,10-11") to and from a
 * cpu_set_t, and byte sizes ("64M"). Shared by atolld and the atoll CLI.
 *
 * Owns: nothing. Pure functions; any thread.
 */
#ifndef ATOLL_SUPER_CPULIST_H
#define ATOLL_SUPER_CPULIST_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a list strictly: ascending or not, no spaces, no empty items, each
 * number < CPU_SETSIZE, ranges low-high with low <= high. An empty string
 * (or only "\n") gives an empty set. Returns 0, -EINVAL (syntax) or
 * -ERANGE (a number too large). */
int cpulist_parse(const char *s, cpu_set_t *out);

/* Format as a canonical list ("" for an empty set) into buf (len bytes).
 * Returns 0 or -ENOSPC. */
int cpulist_format(const cpu_set_t *set, char *buf, size_t len);

/* Parse a size: digits with an optional K, M, G or T suffix (powers of
 * 1024, also KiB/MiB/GiB/TiB, or B). Returns 0 or -EINVAL / -ERANGE. */
int size_parse(const char *s, uint64_t *out);

/* Format bytes as "512M"-style when exact, else bytes. */
void size_format(uint64_t bytes, char *buf, size_t len);

#endif /* ATOLL_SUPER_CPULIST_H */
