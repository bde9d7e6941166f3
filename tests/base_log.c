/* base_log.c - logging: level parsing and the environment, filtering that
 * skips argument evaluation, the exact line format, truncation at
 * LOG_LINE_MAX, and two threads writing many lines into one pipe without
 * any line being split or interleaved. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/log.h>

#include "harness.h"

#define NWRITERS 2
#define LINES 20000
#define PAYLOAD 200

static int unit_rd; /* read end of the unit tests' pipe, non-blocking */

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* Read everything currently in the unit tests' pipe into buf (NUL-ended). */
static size_t drain(char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(unit_rd, buf + len, cap - 1 - len);

		if (n <= 0) {
			CHECK(n < 0 && errno == EAGAIN);
			break;
		}
		len += (size_t)n;
		CHECK(len < cap - 1);
	}
	buf[len] = '\0';
	return len;
}

/*
 * Check that line (len bytes, no newline) is "[SSSSS.UUUUUU] LEVEL msg":
 * seconds right-aligned in at least 5 columns, exactly 6 digits of
 * microseconds within 5 s of now, the level name padded to 5 columns,
 * one space. Returns the message and sets *lvl, or NULL if malformed.
 */
static const char *parse_line(const char *line, size_t len,
			      enum log_level *lvl)
{
	uint64_t sec = 0, usec = 0, now = now_ns();
	size_t i = 1, digits = 0;
	char name[6];
	int parsed;

	if (len < 21 || line[0] != '[')
		goto bad;
	while (i < len && line[i] == ' ')
		i++;
	while (i < len && line[i] >= '0' && line[i] <= '9') {
		sec = sec * 10 + (uint64_t)(line[i++] - '0');
		digits++;
	}
	if (!digits || i < 6 || i + 15 > len || line[i++] != '.')
		goto bad;
	for (int k = 0; k < 6; k++, i++) {
		if (line[i] < '0' || line[i] > '9')
			goto bad;
		usec = usec * 10 + (uint64_t)(line[i] - '0');
	}
	if (line[i++] != ']' || line[i++] != ' ')
		goto bad;
	if (absdiff(sec * 1000000 + usec, now / 1000) > 5000000)
		goto bad;
	if (line[i + 5] != ' ')
		goto bad;
	memcpy(name, line + i, 5);
	name[5] = '\0';
	for (int k = 4; k > 0 && name[k] == ' '; k--)
		name[k] = '\0';
	parsed = log_level_parse(name);
	if (parsed < 0 || strcmp(log_level_name((enum log_level)parsed), name))
		goto bad;
	*lvl = (enum log_level)parsed;
	return line + i + 6;
bad:
	fprintf(stderr, "malformed line: '%.*s'\n", (int)len, line);
	return NULL;
}

/* Expect exactly one line in the pipe, at level lvl with message msg. */
static void expect_line(enum log_level lvl, const char *msg)
{
	char buf[2 * LOG_LINE_MAX];
	size_t len = drain(buf, sizeof(buf));
	enum log_level got;
	const char *m;

	CHECK(len > 0 && buf[len - 1] == '\n');
	CHECK(memchr(buf, '\n', len) == buf + len - 1);
	m = parse_line(buf, len - 1, &got);
	CHECK(m != NULL);
	CHECK_EQ(got, lvl);
	if (strlen(msg) != (size_t)(buf + len - 1 - m) ||
	    memcmp(m, msg, strlen(msg))) {
		fprintf(stderr, "FAIL: message '%.*s', expected '%s'\n",
			(int)(buf + len - 1 - m), m, msg);
		exit(TEST_FAIL);
	}
}

static void expect_nothing(void)
{
	char buf[2 * LOG_LINE_MAX];

	CHECK_EQ(drain(buf, sizeof(buf)), 0);
}

static void test_levels(void)
{
	CHECK_EQ(log_get_level(), LOG_LVL_INFO); /* the default */
	CHECK_EQ(log_level_parse("error"), LOG_LVL_ERROR);
	CHECK_EQ(log_level_parse("WARN"), LOG_LVL_WARN);
	CHECK_EQ(log_level_parse("warning"), LOG_LVL_WARN);
	CHECK_EQ(log_level_parse("Info"), LOG_LVL_INFO);
	CHECK_EQ(log_level_parse("debug"), LOG_LVL_DEBUG);
	CHECK_EQ(log_level_parse("trace"), LOG_LVL_TRACE);
	CHECK_EQ(log_level_parse("3"), LOG_LVL_DEBUG);
	CHECK_EQ(log_level_parse("5"), -EINVAL);
	CHECK_EQ(log_level_parse("34"), -EINVAL);
	CHECK_EQ(log_level_parse("verbose"), -EINVAL);
	CHECK_EQ(log_level_parse(""), -EINVAL);
	CHECK_EQ(log_level_parse(NULL), -EINVAL);
	CHECK(!strcmp(log_level_name(LOG_LVL_ERROR), "ERROR"));
	CHECK(!strcmp(log_level_name(LOG_LVL_TRACE), "TRACE"));
	CHECK(!strcmp(log_level_name((enum log_level)7), "?"));
	CHECK_EQ(log_set_level((enum log_level)5), -EINVAL);
	CHECK_EQ(log_set_level((enum log_level)-1), -EINVAL);
	CHECK_EQ(log_get_level(), LOG_LVL_INFO);
}

static void test_env(void)
{
	char buf[2 * LOG_LINE_MAX];

	CHECK_OK(setenv("ATOLL_LOG", "debug", 1));
	CHECK_EQ(log_init_from_env(), 0);
	CHECK_EQ(log_get_level(), LOG_LVL_DEBUG);
	CHECK_OK(setenv("ATOLL_LOG", "TRACE", 1));
	CHECK_EQ(log_init_from_env(), 0);
	CHECK_EQ(log_get_level(), LOG_LVL_TRACE);
	CHECK_OK(unsetenv("ATOLL_LOG"));
	CHECK_EQ(log_init_from_env(), 0);
	CHECK_EQ(log_get_level(), LOG_LVL_TRACE);
	CHECK_OK(setenv("ATOLL_LOG", "", 1));
	CHECK_EQ(log_init_from_env(), 0);
	CHECK_EQ(log_get_level(), LOG_LVL_TRACE);
	expect_nothing();

	/* A bad value is refused, the level kept, and a warning shown even
	 * at level ERROR. */
	CHECK_EQ(log_set_level(LOG_LVL_ERROR), 0);
	CHECK_OK(setenv("ATOLL_LOG", "bogus", 1));
	CHECK_EQ(log_init_from_env(), -EINVAL);
	CHECK_EQ(log_get_level(), LOG_LVL_ERROR);
	CHECK(drain(buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "] WARN  ATOLL_LOG='bogus' is not a log level"));
	CHECK_OK(unsetenv("ATOLL_LOG"));
}

static int side;

static int bump(void)
{
	return ++side;
}

static void test_filter(void)
{
	CHECK_EQ(log_set_level(LOG_LVL_WARN), 0);
	CHECK(log_enabled(LOG_LVL_ERROR) && log_enabled(LOG_LVL_WARN));
	CHECK(!log_enabled(LOG_LVL_INFO) && !log_enabled(LOG_LVL_TRACE));

	/* Disabled: arguments are not evaluated, nothing is written. */
	side = 0;
	LOG_INFO("info %d", bump());
	LOG_DEBUG("debug %d %d", side++, bump());
	LOG_TRACE("trace %d", bump());
	CHECK_EQ(side, 0);
	expect_nothing();

	/* Enabled: evaluated once each, one line each. */
	LOG_WARN("warn %d", bump());
	CHECK_EQ(side, 1);
	expect_line(LOG_LVL_WARN, "warn 1");
	LOG_ERROR("error %d", bump());
	CHECK_EQ(side, 2);
	expect_line(LOG_LVL_ERROR, "error 2");

	CHECK_EQ(log_set_level(LOG_LVL_TRACE), 0);
	LOG_TRACE("trace %d", bump());
	expect_line(LOG_LVL_TRACE, "trace 3");
	LOG_DEBUG("no arguments");
	expect_line(LOG_LVL_DEBUG, "no arguments");
	CHECK_EQ(log_set_level(LOG_LVL_ERROR), 0);
	LOG_WARN("%d", bump());
	expect_nothing();
	CHECK_EQ(side, 3);
}

static void test_format(void)
{
	char buf[2 * LOG_LINE_MAX];
	size_t len;

	CHECK_EQ(log_set_level(LOG_LVL_INFO), 0);
	LOG_INFO("hello %s %d", "world", 42);
	expect_line(LOG_LVL_INFO, "hello world 42");

	/* Exact layout of the level column: name padded to 5, one space. */
	LOG_INFO("x");
	len = drain(buf, sizeof(buf));
	CHECK(!memcmp(buf + len - 10, "] INFO  x\n", 10));
	LOG_ERROR("y");
	len = drain(buf, sizeof(buf));
	CHECK(!memcmp(buf + len - 10, "] ERROR y\n", 10));

	/* Trailing newlines in the message are dropped; inner text kept. */
	LOG_INFO("two\n\n");
	expect_line(LOG_LVL_INFO, "two");
	LOG_INFO("%s", "");
	expect_line(LOG_LVL_INFO, "");

	/* Logging leaves errno alone. */
	errno = 1234;
	LOG_INFO("errno %d", 1);
	CHECK_EQ(errno, 1234);
	expect_line(LOG_LVL_INFO, "errno 1");
}

static void test_truncation(void)
{
	static char msg[5000], buf[2 * LOG_LINE_MAX];
	size_t hdr, len, fit;

	CHECK_EQ(log_set_level(LOG_LVL_INFO), 0);
	LOG_INFO("x");
	hdr = drain(buf, sizeof(buf)) - 2; /* minus "x\n" */
	fit = LOG_LINE_MAX - hdr - 1;      /* longest message kept whole */

	/* Exactly fits: LOG_LINE_MAX bytes, no marker. */
	memset(msg, 'a', fit);
	msg[fit] = '\0';
	LOG_INFO("%s", msg);
	len = drain(buf, sizeof(buf));
	CHECK_EQ(len, LOG_LINE_MAX);
	CHECK_EQ(buf[len - 1], '\n');
	CHECK_EQ(buf[len - 2], 'a');
	CHECK(!strstr(buf, LOG_TRUNC_MARK));

	/* One more byte, and far more: cut to LOG_LINE_MAX with the marker. */
	for (size_t n = fit + 1; n < sizeof(msg); n += sizeof(msg) - fit - 2) {
		enum log_level lvl;
		const char *m;

		memset(msg, 'b', n);
		msg[n] = '\0';
		LOG_INFO("%s", msg);
		len = drain(buf, sizeof(buf));
		CHECK_EQ(len, LOG_LINE_MAX);
		CHECK(!memcmp(buf + len - sizeof(LOG_TRUNC_MARK),
			      LOG_TRUNC_MARK "\n", sizeof(LOG_TRUNC_MARK)));
		m = parse_line(buf, len - 1, &lvl);
		CHECK(m != NULL);
		CHECK_EQ(lvl, LOG_LVL_INFO);
		CHECK(m[0] == 'b' && buf[len - sizeof(LOG_TRUNC_MARK) - 1] ==
					     'b');
	}
}

/* ---- two writers, one pipe --------------------------------------------- */

static uint64_t lines;

static char payload_char(int id, uint64_t seq)
{
	return (char)('a' + (id * 7 + seq) % 26);
}

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char payload[PAYLOAD + 1];

	for (uint64_t seq = 0; seq < lines; seq++) {
		memset(payload, payload_char(id, seq), PAYLOAD);
		payload[PAYLOAD] = '\0';
		LOG_INFO("writer %d seq %llu %s end", id,
			 (unsigned long long)seq, payload);
	}
	return NULL;
}

struct reader_arg {
	int fd;
	uint64_t seen[NWRITERS];
};

/* Read until EOF; every line must be whole and in per-writer order. */
static void *reader(void *argp)
{
	struct reader_arg *arg = argp;
	static char buf[64 * 1024 + LOG_LINE_MAX];
	size_t have = 0;

	for (;;) {
		ssize_t n = read(arg->fd, buf + have, sizeof(buf) - have);
		size_t start = 0;
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n >= 0);
		if (n == 0)
			break;
		have += (size_t)n;
		while ((nl = memchr(buf + start, '\n', have - start))) {
			size_t len = (size_t)(nl - (buf + start));
			const char *line = buf + start, *m;
			unsigned long long seq;
			enum log_level lvl;
			int id, used = 0;

			m = parse_line(line, len, &lvl);
			CHECK(m != NULL);
			CHECK_EQ(lvl, LOG_LVL_INFO);
			CHECK_EQ(sscanf(m, "writer %d seq %llu %n", &id, &seq,
					&used), 2);
			CHECK(id >= 0 && id < NWRITERS && used > 0);
			CHECK_EQ(seq, arg->seen[id]);
			arg->seen[id]++;
			CHECK_EQ((size_t)(line + len - (m + used)), PAYLOAD + 4);
			for (int k = 0; k < PAYLOAD; k++)
				CHECK_EQ(m[used + k], payload_char(id, seq));
			CHECK(!memcmp(m + used + PAYLOAD, " end", 4));
			start += len + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		CHECK(have < LOG_LINE_MAX); /* a partial line is never long */
	}
	CHECK_EQ(have, 0); /* no unterminated tail */
	return NULL;
}

static void test_concurrent(void)
{
	struct reader_arg arg = { 0 };
	pthread_t w[NWRITERS], r;
	int fds[2], old;

	lines = test_scale(LINES);
	CHECK_OK(pipe(fds));
	arg.fd = fds[0];
	CHECK_EQ(log_set_level(LOG_LVL_INFO), 0);
	old = log_set_fd(fds[1]);
	CHECK_OK(-pthread_create(&r, NULL, reader, &arg));
	for (int i = 0; i < NWRITERS; i++)
		CHECK_OK(-pthread_create(&w[i], NULL, writer,
					 (void *)(intptr_t)i));
	for (int i = 0; i < NWRITERS; i++)
		CHECK_OK(-pthread_join(w[i], NULL));
	CHECK_EQ(log_set_fd(old), fds[1]);
	close(fds[1]); /* the reader now sees EOF */
	CHECK_OK(-pthread_join(r, NULL));
	close(fds[0]);
	for (int i = 0; i < NWRITERS; i++)
		CHECK_EQ(arg.seen[i], lines);
}

int main(void)
{
	int fds[2];

	CHECK_OK(unsetenv("ATOLL_LOG"));
	test_levels();

	CHECK_OK(pipe(fds));
	CHECK_OK(fcntl(fds[0], F_SETFL, O_NONBLOCK));
	unit_rd = fds[0];
	CHECK_EQ(log_set_fd(-1), -EINVAL);
	CHECK_EQ(log_set_fd(fds[1]), STDERR_FILENO);

	test_env();
	test_filter();
	test_format();
	test_truncation();
	CHECK_EQ(log_set_fd(STDERR_FILENO), fds[1]);
	close(fds[0]);
	close(fds[1]);

	test_concurrent();
	return TEST_PASS;
}
