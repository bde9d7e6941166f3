/* cgroup.c - enforcement backends for cells: cgroup v2 (cpuset+memory
 * controllers), cgroup v1 (the cpuset and memory hierarchies), or, with
 * neither, CPU affinity only (weak: children and new threads of attached
 * processes are not followed, memory is not limited). Cells squeezed to
 * no core are frozen: v2's cgroup.freeze, or the v1 freezer hierarchy
 * when it is mounted (its cell directories are made on demand, at the
 * first freeze, so cells that are never frozen do not pay for them).
 *
 * Layout: each atolld instance owns one directory per hierarchy,
 * "atoll-<instance>", and each cell is a directory below it. v2 puts the
 * instance root at the top of the cgroup2 mount; v1 puts it below the
 * cgroup atolld itself runs in, in each hierarchy, so a delegated or
 * limited parent keeps accounting for the cells. Nothing outside these
 * directories is ever written.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(s);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, s, n);
	if (w < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	return (size_t)w == n ? 0 : -EIO;
}

int file_read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (len)
		buf[0] = '\0';
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

const char *enf_name(enum enf k)
{
	switch (k) {
	case ENF_V2: return PROTO_ENF_V2;
	case ENF_V1: return PROTO_ENF_V1;
	default: return PROTO_ENF_AFFINITY;
	}
}

int enf_parse(const char *s, enum enf *out)
{
	if (!strcmp(s, PROTO_ENF_V2) || !strcmp(s, "v2"))
		*out = ENF_V2;
	else if (!strcmp(s, PROTO_ENF_V1) || !strcmp(s, "v1"))
		*out = ENF_V1;
	else if (!strcmp(s, PROTO_ENF_AFFINITY))
		*out = ENF_AFFINITY;
	else
		return -EINVAL;
	return 0;
}

/* Mount point of the cgroup v1 hierarchy with controller ctl (or of the
 * cgroup2 hierarchy when ctl is NULL), with the mount's root path. */
static int find_mount(const char *ctl, char *mnt, size_t len, char *root,
		      size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char rt[PATH_MAX], mp[PATH_MAX], fstype[64], src[256],
			sopts[1024];
		char *dash = strstr(line, " - ");

		if (!dash)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", rt, mp) != 2)
			continue;
		if (sscanf(dash + 3, "%63s %255s %1023s", fstype, src, sopts) != 3)
			continue;
		if (ctl) {
			char *tok, *save = NULL;
			bool hit = false;

			if (strcmp(fstype, "cgroup"))
				continue;
			for (tok = strtok_r(sopts, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				if (!strcmp(tok, ctl))
					hit = true;
			if (!hit)
				continue;
		} else if (strcmp(fstype, "cgroup2")) {
			continue;
		}
		snprintf(mnt, len, "%s", mp);
		snprintf(root, rlen, "%s", rt);
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

/* This process's cgroup path in the hierarchy holding ctl ("" for v2). */
static int own_cgroup(const char *ctl, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *nl;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = '\0';
		nl = strchr(c2 + 1, '\n');
		if (nl)
			*nl = '\0';
		if (ctl) {
			char *tok, *save = NULL;
			bool hit = false;

			for (tok = strtok_r(c1 + 1, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				if (!strcmp(tok, ctl))
					hit = true;
			if (!hit)
				continue;
		} else if (c1[1] != '\0') {
			continue;
		}
		snprintf(out, len, "%s", c2 + 1);
		r = 0;
		break;
	}
	fclose(f);
	return r;
}

/* Directory of this process's cgroup in the v1 hierarchy of ctl. */
static int v1_base(const char *ctl, char *out, size_t len)
{
	char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];
	const char *rel;
	int r;

	r = find_mount(ctl, mnt, sizeof(mnt), root, sizeof(root));
	if (r)
		return r;
	if (own_cgroup(ctl, own, sizeof(own)))
		snprintf(own, sizeof(own), "/");
	rel = own;
	if (strcmp(root, "/") && !strncmp(own, root, strlen(root)))
		rel = own + strlen(root);
	if (!strcmp(rel, "/"))
		rel = "";
	if ((size_t)snprintf(out, len, "%s%s", mnt, rel) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int write_list(const char *dir, const char *file, const cpu_set_t *set)
{
	char path[PATH_MAX + 64], list[4096];

	if (cpulist_format(set, list, sizeof(list)))
		return -ENOSPC;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return file_write_str(path, list);
}

static int write_fmt(const char *dir, const char *file, const char *val)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return file_write_str(path, val);
}

static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int setup_v2(struct enforcer *e, const char *instance,
		    const cpu_set_t *managed, const cpu_set_t *mems, char *msg)
{
	char mnt[PATH_MAX], root[PATH_MAX], ctl[256];
	int r;

	if (find_mount(NULL, mnt, sizeof(mnt), root, sizeof(root))) {
		snprintf(msg, MSG_MAX, "no cgroup2 hierarchy is mounted");
		return -ENOENT;
	}
	snprintf(e->v2_root, sizeof(e->v2_root), "%s/atoll-%s", mnt, instance);
	snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", mnt);
	if (file_read_str(ctl, root, sizeof(root)) || !strstr(root, "cpuset") ||
	    !strstr(root, "memory")) {
		snprintf(msg, MSG_MAX,
			 "the cgroup2 hierarchy at %s lacks the cpuset or memory controller",
			 mnt);
		return -ENOTSUP;
	}
	/* Enabling the controllers for the top level is idempotent. */
	write_fmt(mnt, "cgroup.subtree_control", "+cpuset +memory");
	r = mkdir_ok(e->v2_root);
	if (!r)
		r = write_list(e->v2_root, "cpuset.cpus", managed);
	if (!r)
		r = write_list(e->v2_root, "cpuset.mems", mems);
	if (!r)
		r = write_fmt(e->v2_root, "cgroup.subtree_control",
			      "+cpuset +memory");
	if (r)
		snprintf(msg, MSG_MAX, "cannot set up cgroup %s: %s",
			 e->v2_root, strerror(-r));
	return r;
}

static int setup_v1(struct enforcer *e, const char *instance,
		    const cpu_set_t *managed, const cpu_set_t *mems, char *msg)
{
	char base[PATH_MAX];
	int r;

	if (!e->cpuset_root[0]) {
		if (v1_base("cpuset", base, sizeof(base)) ||
		    strlen(base) + 40 > PATH_MAX) {
			snprintf(msg, MSG_MAX, "no cgroup v1 cpuset hierarchy is mounted");
			return -ENOENT;
		}
		snprintf(e->cpuset_root, sizeof(e->cpuset_root), "%s/atoll-%s",
			 base, instance);
	}
	if (!e->mem_root[0]) {
		if (v1_base("memory", base, sizeof(base)) ||
		    strlen(base) + 40 > PATH_MAX) {
			snprintf(msg, MSG_MAX, "no cgroup v1 memory hierarchy is mounted");
			return -ENOENT;
		}
		snprintf(e->mem_root, sizeof(e->mem_root), "%s/atoll-%s", base,
			 instance);
	}
	/* Optional: without it, cells only cannot be squeezed to 0 cores. */
	if (!e->freezer_root[0] && !v1_base("freezer", base, sizeof(base)) &&
	    strlen(base) + 40 <= PATH_MAX)
		snprintf(e->freezer_root, sizeof(e->freezer_root),
			 "%s/atoll-%s", base, instance);
	if (e->freezer_root[0] && mkdir_ok(e->freezer_root))
		e->freezer_root[0] = '\0';
	r = mkdir_ok(e->cpuset_root);
	if (!r)
		r = write_list(e->cpuset_root, "cpuset.mems", mems);
	if (!r)
		r = write_list(e->cpuset_root, "cpuset.cpus", managed);
	if (r) {
		snprintf(msg, MSG_MAX, "cannot set up cgroup %s: %s",
			 e->cpuset_root, strerror(-r));
		return r;
	}
	r = mkdir_ok(e->mem_root);
	if (r)
		snprintf(msg, MSG_MAX, "cannot set up cgroup %s: %s",
			 e->mem_root, strerror(-r));
	return r;
}

int enf_setup(struct enforcer *e, int want, const char *instance,
	      const cpu_set_t *managed, const cpu_set_t *mems, char *msg)
{
	char why2[MSG_MAX] = "", why1[MSG_MAX] = "";

	msg[0] = '\0';
	if (want == ENF_V2) {
		e->kind = ENF_V2;
		return setup_v2(e, instance, managed, mems, msg);
	}
	if (want == ENF_V1) {
		e->kind = ENF_V1;
		return setup_v1(e, instance, managed, mems, msg);
	}
	if (want == ENF_AFFINITY) {
		e->kind = ENF_AFFINITY;
		if (!e->why_weak[0])
			snprintf(e->why_weak, sizeof(e->why_weak),
				 "affinity-only enforcement was requested");
		return 0;
	}
	if (!setup_v2(e, instance, managed, mems, why2)) {
		e->kind = ENF_V2;
		return 0;
	}
	e->v2_root[0] = '\0';
	if (!setup_v1(e, instance, managed, mems, why1)) {
		e->kind = ENF_V1;
		return 0;
	}
	if (e->freezer_root[0])
		rmdir(e->freezer_root);
	e->cpuset_root[0] = e->mem_root[0] = e->freezer_root[0] = '\0';
	e->kind = ENF_AFFINITY;
	snprintf(e->why_weak, sizeof(e->why_weak), "%.120s; %.120s", why2, why1);
	return 0;
}

static void cell_dir(const char *root, const char *cell, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", root, cell);
}

int enf_cell_create(struct enforcer *e, const char *cell, const cpu_set_t *cpus,
		    const cpu_set_t *mems, uint64_t mem, char *msg)
{
	char d[PATH_MAX + 64], m[PATH_MAX + 64], val[32];
	int r;

	if (e->kind == ENF_AFFINITY)
		return 0;
	if (e->kind == ENF_V2) {
		cell_dir(e->v2_root, cell, d, sizeof(d));
		r = mkdir_ok(d);
		if (!r)
			r = write_list(d, "cpuset.cpus", cpus);
		if (!r)
			r = write_list(d, "cpuset.mems", mems);
		if (!r) {
			if (mem)
				snprintf(val, sizeof(val), "%llu",
					 (unsigned long long)mem);
			else
				snprintf(val, sizeof(val), "max");
			r = write_fmt(d, "memory.max", val);
		}
		if (r) {
			snprintf(msg, MSG_MAX, "cannot configure cgroup %s: %s",
				 d, strerror(-r));
			rmdir(d);
		}
		return r;
	}
	cell_dir(e->cpuset_root, cell, d, sizeof(d));
	cell_dir(e->mem_root, cell, m, sizeof(m));
	r = mkdir_ok(d);
	if (!r)
		r = write_list(d, "cpuset.mems", mems);
	if (!r)
		r = write_list(d, "cpuset.cpus", cpus);
	if (r) {
		snprintf(msg, MSG_MAX, "cannot configure cgroup %s: %s", d,
			 strerror(-r));
		rmdir(d);
		return r;
	}
	r = mkdir_ok(m);
	if (!r) {
		snprintf(val, sizeof(val), "%lld",
			 mem ? (long long)mem : -1LL);
		r = write_fmt(m, "memory.limit_in_bytes", val);
	}
	if (r) {
		snprintf(msg, MSG_MAX, "cannot configure cgroup %s: %s", m,
			 strerror(-r));
		rmdir(m);
		rmdir(d);
	}
	return r;
}

bool enf_cell_exists(struct enforcer *e, const char *cell)
{
	char d[PATH_MAX + 64];
	struct stat st;

	if (e->kind == ENF_AFFINITY)
		return true;
	cell_dir(e->kind == ENF_V2 ? e->v2_root : e->cpuset_root, cell, d,
		 sizeof(d));
	if (stat(d, &st))
		return false;
	if (e->kind == ENF_V1) {
		cell_dir(e->mem_root, cell, d, sizeof(d));
		if (stat(d, &st))
			return false;
	}
	return true;
}

static const char *cpuset_dir(struct enforcer *e, const char *cell, char *d,
			      size_t len)
{
	cell_dir(e->kind == ENF_V2 ? e->v2_root : e->cpuset_root, cell, d, len);
	return d;
}

int enf_cell_set_cpus(struct enforcer *e, const char *cell,
		      const cpu_set_t *cpus, char *msg)
{
	char d[PATH_MAX + 64];
	int r;

	if (e->kind == ENF_AFFINITY)
		return 0;
	r = write_list(cpuset_dir(e, cell, d, sizeof(d)), "cpuset.cpus", cpus);
	if (r)
		snprintf(msg, MSG_MAX, "cannot write %s/cpuset.cpus: %s", d,
			 strerror(-r));
	return r;
}

int enf_cell_set_mems(struct enforcer *e, const char *cell,
		      const cpu_set_t *mems, char *msg)
{
	char d[PATH_MAX + 64];
	int r;

	if (e->kind == ENF_AFFINITY)
		return 0;
	r = write_list(cpuset_dir(e, cell, d, sizeof(d)), "cpuset.mems", mems);
	if (r)
		snprintf(msg, MSG_MAX, "cannot write %s/cpuset.mems: %s", d,
			 strerror(-r));
	return r;
}

int enf_cell_set_mem(struct enforcer *e, const char *cell, uint64_t mem,
		     char *msg)
{
	char d[PATH_MAX + 64], val[32];
	int r;

	if (e->kind == ENF_AFFINITY)
		return 0;
	if (e->kind == ENF_V2) {
		cell_dir(e->v2_root, cell, d, sizeof(d));
		if (mem)
			snprintf(val, sizeof(val), "%llu", (unsigned long long)mem);
		else
			snprintf(val, sizeof(val), "max");
		r = write_fmt(d, "memory.max", val);
	} else {
		cell_dir(e->mem_root, cell, d, sizeof(d));
		snprintf(val, sizeof(val), "%lld", mem ? (long long)mem : -1LL);
		r = write_fmt(d, "memory.limit_in_bytes", val);
	}
	if (r)
		snprintf(msg, MSG_MAX,
			 "cannot set the memory limit of %s to %s: %s", d, val,
			 strerror(-r));
	return r;
}

int enf_cell_attach(struct enforcer *e, const char *cell, pid_t pid, char *msg)
{
	char d[PATH_MAX + 64], val[32];
	int r;

	snprintf(val, sizeof(val), "%d", (int)pid);
	if (e->kind == ENF_AFFINITY)
		return 0;
	if (e->kind == ENF_V1) {
		cell_dir(e->mem_root, cell, d, sizeof(d));
		r = write_fmt(d, "cgroup.procs", val);
		if (r)
			goto fail;
	}
	cpuset_dir(e, cell, d, sizeof(d));
	r = write_fmt(d, "cgroup.procs", val);
	if (!r)
		return 0;
fail:
	snprintf(msg, MSG_MAX, "cannot move pid %d into %s: %s", (int)pid, d,
		 strerror(-r));
	return r;
}

bool enf_can_freeze(const struct enforcer *e)
{
	char p[PATH_MAX + 32];
	struct stat st;

	if (e->kind == ENF_V1)
		return e->freezer_root[0] != '\0';
	if (e->kind != ENF_V2)
		return false;
	/* Every non-root cgroup has it since Linux 5.2. */
	snprintf(p, sizeof(p), "%s/cgroup.freeze", e->v2_root);
	return stat(p, &st) == 0;
}

/* v1: move the cell's processes into its freezer cgroup dir. */
static int freezer_sweep(struct enforcer *e, const char *cell, const char *dir)
{
	static pid_t pids[4096];
	char val[32];
	int n = (int)ARRAY_SIZE(pids), r;

	r = enf_cell_pids(e, cell, pids, &n);
	if (r)
		return r;
	if (n > (int)ARRAY_SIZE(pids))
		return -E2BIG;
	for (int i = 0; i < n; i++) {
		snprintf(val, sizeof(val), "%d", (int)pids[i]);
		r = write_fmt(dir, "cgroup.procs", val);
		if (r && r != -ESRCH)
			return r;
	}
	return 0;
}

int enf_cell_freeze(struct enforcer *e, const char *cell, bool frozen,
		    char *msg)
{
	char d[PATH_MAX + 64];
	struct stat st;
	int r;

	if (!enf_can_freeze(e)) {
		snprintf(msg, MSG_MAX, "no cgroup freezer is available");
		return -ENOTSUP;
	}
	if (e->kind == ENF_V2) {
		cell_dir(e->v2_root, cell, d, sizeof(d));
		r = write_fmt(d, "cgroup.freeze", frozen ? "1" : "0");
	} else {
		cell_dir(e->freezer_root, cell, d, sizeof(d));
		if (!frozen && stat(d, &st))
			return 0; /* never frozen */
		r = mkdir_ok(d);
		if (!r && frozen)
			r = freezer_sweep(e, cell, d);
		if (!r)
			r = write_fmt(d, "freezer.state",
				      frozen ? "FROZEN" : "THAWED");
		/* A task moved into a frozen cgroup freezes too. */
		if (!r && frozen)
			r = freezer_sweep(e, cell, d);
	}
	if (r)
		snprintf(msg, MSG_MAX, "cannot %s the processes of %s: %s",
			 frozen ? "freeze" : "thaw", d,
			 r == -E2BIG ? "it holds more than 4096" : strerror(-r));
	return r;
}

static int read_pids(const char *dir, pid_t *pids, int *n)
{
	char path[PATH_MAX + 64], line[64];
	FILE *f;
	int cap = *n, k = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		int p = atoi(line);

		if (p <= 0)
			continue;
		if (k < cap)
			pids[k] = p;
		k++;
	}
	fclose(f);
	*n = k;
	return 0;
}

int enf_cell_pids(struct enforcer *e, const char *cell, pid_t *pids, int *n)
{
	char d[PATH_MAX + 64];
	int cap = *n, r;

	if (e->kind == ENF_AFFINITY) {
		*n = 0;
		return 0;
	}
	r = read_pids(cpuset_dir(e, cell, d, sizeof(d)), pids, n);
	if (r || e->kind != ENF_V1)
		return r;
	/* v1: a process may sit in the memory cgroup only (moved out of
	 * the cpuset by someone else); count those too. */
	{
		pid_t extra[256];
		int ne = (int)ARRAY_SIZE(extra);

		cell_dir(e->mem_root, cell, d, sizeof(d));
		if (read_pids(d, extra, &ne))
			return 0;
		for (int i = 0; i < ne && i < (int)ARRAY_SIZE(extra); i++) {
			bool dup = false;

			for (int j = 0; j < *n && j < cap; j++)
				if (pids[j] == extra[i])
					dup = true;
			if (!dup) {
				if (*n < cap)
					pids[*n] = extra[i];
				(*n)++;
			}
		}
	}
	return 0;
}

int enf_cell_rmdir(struct enforcer *e, const char *cell, char *msg)
{
	char d[PATH_MAX + 64];

	if (e->kind == ENF_AFFINITY)
		return 0;
	if (e->kind == ENF_V1) {
		cell_dir(e->mem_root, cell, d, sizeof(d));
		if (rmdir(d) && errno != ENOENT)
			goto fail;
		if (e->freezer_root[0]) {
			cell_dir(e->freezer_root, cell, d, sizeof(d));
			if (rmdir(d) && errno != ENOENT)
				goto fail;
		}
	}
	cpuset_dir(e, cell, d, sizeof(d));
	if (rmdir(d) && errno != ENOENT)
		goto fail;
	return 0;
fail:
	snprintf(msg, MSG_MAX, "cannot remove cgroup %s: %s", d,
		 strerror(errno));
	return -EBUSY;
}

static int list_dir(const char *root, char names[][PROTO_NAME_MAX + 1],
		    int k, int max)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return k;
	while ((de = readdir(d)) && k < max) {
		bool dup = false;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    strlen(de->d_name) > PROTO_NAME_MAX)
			continue;
		for (int i = 0; i < k; i++)
			if (!strcmp(names[i], de->d_name))
				dup = true;
		if (!dup)
			snprintf(names[k++], PROTO_NAME_MAX + 1, "%s",
				 de->d_name);
	}
	closedir(d);
	return k;
}

int enf_list(struct enforcer *e, char names[][PROTO_NAME_MAX + 1], int max)
{
	int k = 0;

	if (e->kind == ENF_V2)
		return list_dir(e->v2_root, names, 0, max);
	if (e->kind == ENF_V1) {
		k = list_dir(e->cpuset_root, names, 0, max);
		k = list_dir(e->mem_root, names, k, max);
		if (e->freezer_root[0])
			k = list_dir(e->freezer_root, names, k, max);
	}
	return k;
}

int affinity_set_all(pid_t pid, const cpu_set_t *cpus)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int tid = atoi(de->d_name);

		if (tid > 0 && sched_setaffinity(tid, sizeof(*cpus), cpus) &&
		    errno != ESRCH)
			r = -errno;
	}
	closedir(d);
	return r;
}

/* Fields 14 (utime), 15 (stime) and 22 (starttime) of /proc/PID/stat,
 * in clock ticks. 0 or -errno. */
static int proc_stat_times(pid_t pid, unsigned long long *utime,
			   unsigned long long *stime, unsigned long long *start)
{
	char path[64], buf[1024];
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_str(path, buf, sizeof(buf)))
		return -ESRCH;
	/* the command name may hold spaces and parentheses: skip past the
	 * last ')'; after ") " come fields 3.. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
				"%llu %llu %*d %*d %*d %*d %*d %*d %llu",
			 utime, stime, start) != 3)
		return -EINVAL;
	return 0;
}

uint64_t proc_start_time(pid_t pid)
{
	unsigned long long ut, st, start;

	return proc_stat_times(pid, &ut, &st, &start) ? 0 : start;
}

uint64_t proc_cpu_ns(pid_t pid)
{
	unsigned long long ut, st, start;
	long tck = sysconf(_SC_CLK_TCK);

	if (proc_stat_times(pid, &ut, &st, &start) || tck <= 0)
		return 0;
	return (uint64_t)(ut + st) * (1000000000ull / (uint64_t)tck);
}

void enf_remove_roots(struct enforcer *e)
{
	if (e->v2_root[0])
		rmdir(e->v2_root);
	if (e->cpuset_root[0])
		rmdir(e->cpuset_root);
	if (e->mem_root[0])
		rmdir(e->mem_root);
	if (e->freezer_root[0])
		rmdir(e->freezer_root);
}
