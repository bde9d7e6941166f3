/* fuzz_main.c - run fuzz_session.c's target without libFuzzer, so every
 * build (gcc, sanitizers) runs it: each file of the seed corpus (argv[1]),
 * then pseudo-random inputs made of protocol words and random bytes.
 */
#include <dirent.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t replay_corpus(const char *dir)
{
	static uint8_t buf[1 << 20];
	struct dirent *e;
	size_t files = 0;
	DIR *d = opendir(dir);

	CHECK(d);
	while ((e = readdir(d))) {
		char path[4096];
		FILE *f;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		CHECK(f);
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		files++;
	}
	closedir(d);
	return files;
}

static void random_inputs(int count)
{
	static const char *const words[] = {
		"get ", "gets ", "gat 0 ", "set ", "add ", "replace ",
		"append ", "prepend ", "cas ", "incr ", "decr ", "touch ",
		"delete ", "flush_all", "stats", "version", "verbosity ",
		"noreply", "mn", "quit", " ", " ", "\r\n", "\r\n", "\n", "\r",
		"a", "b", "key", "0 ", "1 ", "5 ", "-1 ", "2592001 ",
		"4294967296 ", "99999999999 ", "18446744073709551615 ",
		"abc", "HTTP/1.1",
	};
	uint8_t buf[4096];

	for (int i = 0; i < count; i++) {
		size_t len = 2, want = 2 + rnd() % (sizeof(buf) - 2);

		buf[0] = (uint8_t)rnd();
		buf[1] = (uint8_t)rnd();
		while (len < want) {
			const char *w = words[rnd() % ARRAY_SIZE(words)];
			size_t wl = strlen(w);

			if (rnd() % 16 == 0) {
				buf[len++] = (uint8_t)rnd();
				continue;
			}
			if (len + wl > sizeof(buf))
				break;
			memcpy(buf + len, w, wl);
			len += wl;
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return TEST_FAIL;
	}
	CHECK(replay_corpus(argv[1]) > 0);
	random_inputs((int)test_scale(3000));
	return TEST_PASS;
}
