/* log.h - leveled, line-atomic logging to stderr.
 *
 * Owns: the process-global log level and output file descriptor.
 *
 * A line looks like
 *     [  8123.004211] WARN  cell 'kv': 3 cores requested but only 1 is free
 * The timestamp is CLOCK_MONOTONIC as seconds.microseconds (the kernel's
 * dmesg style): every process on the node shares that clock, so lines from
 * the daemon and from each cell can be merged and ordered, and it never
 * jumps with wall-clock changes. The level name is padded to 5 columns.
 *
 * Each line is formatted into a stack buffer and written with one write(),
 * so lines from concurrent threads (and processes sharing the fd, if it is a
 * pipe) never interleave. Lines longer than LOG_LINE_MAX bytes (with the
 * header and newline) are cut and end in LOG_TRUNC_MARK. A trailing newline
 * in the message is dropped; the logger adds one.
 *
 * LOG_ERROR(fmt, ...) .. LOG_TRACE(fmt, ...) test the level with one relaxed
 * load before evaluating their arguments: a disabled statement costs a load
 * and a branch, and its arguments are not evaluated (so they must have no
 * side effects the program depends on).
 *
 * Thread safety: all functions may be called from any thread at any time.
 * Level and fd changes are single relaxed/atomic stores; a line being
 * written concurrently may still use the old value.
 *
 * Calling context: any thread. Not async-signal-safe (vsnprintf). A LOG_*
 * call may block in write() if stderr is a full pipe; keep them off paths
 * that must not block, or raise the level there.
 *
 * Note: <syslog.h> defines LOG_INFO and LOG_DEBUG too; do not include both
 * headers in one file.
 */
#ifndef ATOLL_LOG_H
#define ATOLL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include <atoll/atomic.h>
#include <atoll/compiler.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2, /* the default */
	LOG_LVL_DEBUG = 3,
	LOG_LVL_TRACE = 4,
};

/* Longest line, header and newline included. At most PIPE_BUF (4096) so a
 * single write() to a pipe is atomic. */
#define LOG_LINE_MAX 1024
#define LOG_TRUNC_MARK "...[truncated]"

/* Current level; read by the macros, set through log_set_level(). */
extern int log__level;

/* Whether statements at level lvl are emitted. One relaxed load. */
static inline bool log_enabled(enum log_level lvl)
{
	return load_relaxed(&log__level) >= (int)lvl;
}

/* Emit at level lvl without checking the level first. Use the macros. */
void log_emit(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vemit(enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define LOG_AT(lvl, fmt, ...)                                               \
	do {                                                                \
		if (unlikely(log_enabled(lvl)))                             \
			log_emit((lvl), fmt, ##__VA_ARGS__);                \
	} while (0)

#define LOG_ERROR(fmt, ...) LOG_AT(LOG_LVL_ERROR, fmt, ##__VA_ARGS__)
#define LOG_WARN(fmt, ...) LOG_AT(LOG_LVL_WARN, fmt, ##__VA_ARGS__)
#define LOG_INFO(fmt, ...) LOG_AT(LOG_LVL_INFO, fmt, ##__VA_ARGS__)
#define LOG_DEBUG(fmt, ...) LOG_AT(LOG_LVL_DEBUG, fmt, ##__VA_ARGS__)
#define LOG_TRACE(fmt, ...) LOG_AT(LOG_LVL_TRACE, fmt, ##__VA_ARGS__)

/* Set the level: statements at lvl and more severe are emitted. Returns 0,
 * or -EINVAL if lvl is not a level (the level is unchanged). */
int log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

/* Parse a level name: "error", "warn" (or "warning"), "info", "debug",
 * "trace", any case, or a digit 0-4. Returns the level or -EINVAL. */
int log_level_parse(const char *name);

/* Name of lvl as printed in lines ("ERROR", ..., "TRACE"); "?" if invalid. */
const char *log_level_name(enum log_level lvl);

/* Set the level from the environment variable ATOLL_LOG if it is set.
 * Returns 0 (also when unset), or -EINVAL when its value is not a level:
 * the level is unchanged and a WARN line says so. Call at startup. */
int log_init_from_env(void);

/* Send lines to fd instead of stderr (2). Returns the previous fd. For
 * tests and daemons that log to a file; the caller keeps fd open. */
int log_set_fd(int fd);

#endif /* ATOLL_LOG_H */
