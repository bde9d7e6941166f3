/* log.c - leveled logging: format one line on the stack, write it at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/log.h>

/* Read and written with relaxed atomics only: no other data is published
 * through them, a racing line may just use the old value. */
int log__level = LOG_LVL_INFO;
static int log_fd = STDERR_FILENO;

static const char *const log_names[] = {
	[LOG_LVL_ERROR] = "ERROR",
	[LOG_LVL_WARN] = "WARN",
	[LOG_LVL_INFO] = "INFO",
	[LOG_LVL_DEBUG] = "DEBUG",
	[LOG_LVL_TRACE] = "TRACE",
};

BUILD_ASSERT(LOG_LINE_MAX <= 4096); /* PIPE_BUF: one atomic pipe write */
BUILD_ASSERT(sizeof(LOG_TRUNC_MARK) + 64 < LOG_LINE_MAX);

static bool log__valid(int lvl)
{
	return lvl >= LOG_LVL_ERROR && lvl <= LOG_LVL_TRACE;
}

const char *log_level_name(enum log_level lvl)
{
	return log__valid((int)lvl) ? log_names[lvl] : "?";
}

int log_set_level(enum log_level lvl)
{
	if (!log__valid((int)lvl))
		return -EINVAL;
	store_relaxed(&log__level, (int)lvl);
	return 0;
}

enum log_level log_get_level(void)
{
	return (enum log_level)load_relaxed(&log__level);
}

int log_level_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	if (name[0] >= '0' && name[0] <= '4' && name[1] == '\0')
		return name[0] - '0';
	if (!strcasecmp(name, "warning"))
		return LOG_LVL_WARN;
	for (int i = LOG_LVL_ERROR; i <= LOG_LVL_TRACE; i++)
		if (!strcasecmp(name, log_names[i]))
			return i;
	return -EINVAL;
}

int log_init_from_env(void)
{
	const char *v = getenv("ATOLL_LOG");
	int lvl;

	if (!v || !*v)
		return 0;
	lvl = log_level_parse(v);
	if (lvl < 0) {
		/* Always shown: a mistyped level should not go unnoticed. */
		log_emit(LOG_LVL_WARN,
			 "ATOLL_LOG='%.64s' is not a log level (expected error, warn, info, debug or trace); keeping %s.",
			 v, log_level_name(log_get_level()));
		return -EINVAL;
	}
	return log_set_level((enum log_level)lvl);
}

int log_set_fd(int fd)
{
	if (fd < 0)
		return -EINVAL;
	return __atomic_exchange_n(&log_fd, fd, __ATOMIC_RELAXED);
}

void log_vemit(enum log_level lvl, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX];
	const size_t mark_len = sizeof(LOG_TRUNC_MARK) - 1;
	int saved_errno = errno; /* logging must not disturb the caller */
	uint64_t t = now_ns();
	size_t len, room;
	const char *p;
	int n, fd;

	n = snprintf(buf, sizeof(buf), "[%5llu.%06llu] %-5s ",
		     (unsigned long long)(t / NSEC_PER_SEC),
		     (unsigned long long)(t % NSEC_PER_SEC / NSEC_PER_USEC),
		     log_level_name(lvl));
	len = n > 0 ? (size_t)n : 0; /* header is < 64 bytes: never cut */

	/* The body may use buf[len .. LOG_LINE_MAX - 2]; the last byte is
	 * kept for the newline (vsnprintf puts its NUL there at worst). */
	room = sizeof(buf) - len;
	n = vsnprintf(buf + len, room, fmt, ap);
	if (n < 0)
		n = 0; /* encoding error: still emit the header */
	if ((size_t)n < room) {
		len += (size_t)n;
		while (len > 0 && buf[len - 1] == '\n')
			len--;
	} else {
		len = sizeof(buf) - 1;
		memcpy(buf + len - mark_len, LOG_TRUNC_MARK, mark_len);
	}
	buf[len++] = '\n';

	/* One write() per line: pipes (len <= PIPE_BUF) and O_APPEND files
	 * take it whole, so concurrent lines do not interleave. The loop only
	 * matters for signals and for devices that take part of a write. */
	fd = load_relaxed(&log_fd);
	for (p = buf; len > 0;) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* nowhere to report it: drop the line */
		}
		p += w;
		len -= (size_t)w;
	}
	errno = saved_errno;
}

void log_emit(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(lvl, fmt, ap);
	va_end(ap);
}
