/* named.c - atoll-names, the node's name server daemon.
 *
 * Serves the name service's line protocol (docs/names-protocol.md) on a
 * UNIX socket: --socket PATH, else $ATOLL_NAMES_SOCKET, else
 * /run/atoll/names.sock. The server itself is name_server_run() (name.c);
 * this file only parses arguments, prepares the socket's directory and
 * turns SIGINT/SIGTERM into an orderly stop.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <atoll/name.h>

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: atoll-names [--socket PATH]\n"
		"Serve the Atoll name service on the UNIX socket PATH\n"
		"(default: $%s, else %s).\n"
		"Stops on SIGINT or SIGTERM.\n",
		NAME_SOCKET_ENV, NAME_SOCKET_DEFAULT);
}

/* Create the directory that will hold path, one level (like mkdir -p for
 * the last component; /run/atoll under /run). */
static void make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(dir))
		return;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		fprintf(stderr, "atoll-names: cannot create directory '%s': "
			"%s\n", dir, strerror(errno));
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	struct sigaction sa;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "atoll-names: unknown argument '%s'\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!path)
		path = getenv(NAME_SOCKET_ENV);
	if (!path || !*path)
		path = NAME_SOCKET_DEFAULT;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	make_parent(path);
	fprintf(stderr, "atoll-names: starting on %s\n", path);
	err = name_server_run(path, &stop_flag);
	if (err == -EEXIST) {
		fprintf(stderr, "atoll-names: cannot serve '%s': a file that "
			"is not a socket is in the way\n", path);
		return 1;
	}
	if (err) {
		fprintf(stderr, "atoll-names: cannot serve '%s': %s\n", path,
			strerror(-err));
		return 1;
	}
	return 0;
}
