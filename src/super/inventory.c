/* inventory.c - what the node has, read from /sys and /proc: cores with
 * their NUMA node, package, core id, SMT siblings and caches; memory per
 * NUMA node; NICs with their IRQs. */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYS_CPU "/sys/devices/system/cpu"
#define SYS_NODE "/sys/devices/system/node"

static int read_int(const char *path, int dflt)
{
	char b[32];

	if (file_read_str(path, b, sizeof(b)))
		return dflt;
	return atoi(b);
}

static void load_cpu(struct inv_cpu *c, int id)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;

	c->id = id;
	c->node = -1;
	snprintf(path, sizeof(path), SYS_CPU "/cpu%d/topology/physical_package_id", id);
	c->package = read_int(path, -1);
	snprintf(path, sizeof(path), SYS_CPU "/cpu%d/topology/core_id", id);
	c->core = read_int(path, -1);
	snprintf(path, sizeof(path), SYS_CPU "/cpu%d/topology/thread_siblings_list", id);
	if (file_read_str(path, c->siblings, sizeof(c->siblings)))
		snprintf(c->siblings, sizeof(c->siblings), "%d", id);
	snprintf(path, sizeof(path), SYS_CPU "/cpu%d", id);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			if (!strncmp(de->d_name, "node", 4) &&
			    isdigit((unsigned char)de->d_name[4]))
				c->node = atoi(de->d_name + 4);
		}
		closedir(d);
	}
	for (int i = 0; i < (int)ARRAY_SIZE(c->caches); i++) {
		struct inv_cache *k = &c->caches[c->ncaches];
		char base[PATH_MAX];

		snprintf(base, sizeof(base), SYS_CPU "/cpu%d/cache/index%d", id, i);
		snprintf(path, sizeof(path), "%s/level", base);
		k->level = read_int(path, -1);
		if (k->level < 0)
			break;
		snprintf(path, sizeof(path), "%s/type", base);
		file_read_str(path, k->type, sizeof(k->type));
		snprintf(path, sizeof(path), "%s/size", base);
		file_read_str(path, k->size, sizeof(k->size));
		snprintf(path, sizeof(path), "%s/shared_cpu_list", base);
		file_read_str(path, k->shared, sizeof(k->shared));
		c->ncaches++;
	}
}

static uint64_t node_mem(int id)
{
	char path[PATH_MAX], line[256];
	FILE *f;
	uint64_t kb = 0;

	snprintf(path, sizeof(path), SYS_NODE "/node%d/meminfo", id);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "MemTotal:");

		if (p) {
			kb = strtoull(p + 9, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb * 1024;
}

static uint64_t proc_mem_total(void)
{
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	uint64_t kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemTotal:", 9)) {
			kb = strtoull(line + 9, NULL, 10);
			break;
		}
	fclose(f);
	return kb * 1024;
}

/* IRQs of a NIC: device/msi_irqs, else /proc/interrupts lines naming it
 * or its virtio device. */
static void load_nic_irqs(struct inv_nic *nic)
{
	char path[PATH_MAX], devname[64] = "", line[512];
	DIR *d;
	struct dirent *de;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device/msi_irqs",
		 nic->name);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)) && nic->nirqs < (int)ARRAY_SIZE(nic->irqs))
			if (isdigit((unsigned char)de->d_name[0]))
				nic->irqs[nic->nirqs++] = atoi(de->d_name);
		closedir(d);
		if (nic->nirqs)
			return;
	}
	snprintf(path, sizeof(path), "/sys/class/net/%s/device", nic->name);
	{
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		if (n > 0) {
			char *slash;

			target[n] = '\0';
			slash = strrchr(target, '/');
			snprintf(devname, sizeof(devname), "%s",
				 slash ? slash + 1 : target);
		}
	}
	f = fopen("/proc/interrupts", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) &&
	       nic->nirqs < (int)ARRAY_SIZE(nic->irqs)) {
		char *p = line, *end;
		long irq;
		size_t dl = strlen(devname);
		const char *hit;

		while (*p == ' ')
			p++;
		irq = strtol(p, &end, 10);
		if (end == p || *end != ':')
			continue;
		hit = strstr(end, nic->name);
		if (!hit && dl) {
			hit = strstr(end, devname);
			/* "virtio2" must not match "virtio21" */
			if (hit && isdigit((unsigned char)hit[dl]))
				hit = NULL;
		}
		if (hit)
			nic->irqs[nic->nirqs++] = (int)irq;
	}
	fclose(f);
}

int inventory_load(struct inventory *inv)
{
	char buf[4096];
	DIR *d;
	struct dirent *de;

	memset(inv, 0, sizeof(*inv));
	if (file_read_str(SYS_CPU "/online", buf, sizeof(buf)) ||
	    cpulist_parse(buf, &inv->online))
		return -EIO;
	inv->cpus = calloc((size_t)CPU_COUNT(&inv->online), sizeof(*inv->cpus));
	if (!inv->cpus)
		return -ENOMEM;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &inv->online))
			load_cpu(&inv->cpus[inv->ncpus++], c);

	CPU_ZERO(&inv->mem_nodes);
	if (!file_read_str(SYS_NODE "/has_memory", buf, sizeof(buf)))
		cpulist_parse(buf, &inv->mem_nodes);
	if (CPU_COUNT(&inv->mem_nodes) == 0)
		CPU_SET(0, &inv->mem_nodes);
	inv->nodes = calloc((size_t)CPU_COUNT(&inv->mem_nodes), sizeof(*inv->nodes));
	if (!inv->nodes)
		return -ENOMEM;
	for (int n = 0; n < CPU_SETSIZE; n++) {
		struct inv_node *nd;
		char path[PATH_MAX];

		if (!CPU_ISSET(n, &inv->mem_nodes))
			continue;
		nd = &inv->nodes[inv->nnodes++];
		nd->id = n;
		nd->mem_total = node_mem(n);
		snprintf(path, sizeof(path), SYS_NODE "/node%d/cpulist", n);
		file_read_str(path, nd->cpus, sizeof(nd->cpus));
		inv->mem_total += nd->mem_total;
	}
	if (inv->mem_total == 0)
		inv->mem_total = proc_mem_total();

	d = opendir("/sys/class/net");
	if (d) {
		while ((de = readdir(d))) {
			char path[PATH_MAX];
			struct inv_nic *nics;

			if (de->d_name[0] == '.' || strlen(de->d_name) >= 32)
				continue;
			snprintf(path, sizeof(path), "/sys/class/net/%s/device",
				 de->d_name);
			if (access(path, F_OK))
				continue; /* virtual: lo, bridges, ifb */
			nics = realloc(inv->nics, (size_t)(inv->nnics + 1) *
						  sizeof(*nics));
			if (!nics)
				break;
			inv->nics = nics;
			memset(&nics[inv->nnics], 0, sizeof(*nics));
			snprintf(nics[inv->nnics].name, sizeof(nics->name), "%s",
				 de->d_name);
			load_nic_irqs(&nics[inv->nnics]);
			inv->nnics++;
		}
		closedir(d);
	}
	return 0;
}

void inventory_free(struct inventory *inv)
{
	free(inv->cpus);
	free(inv->nodes);
	free(inv->nics);
	memset(inv, 0, sizeof(*inv));
}

void inventory_json(const struct inventory *inv, struct json_w *w)
{
	char list[1024];

	jw_obj(w);
	cpulist_format(&inv->online, list, sizeof(list));
	jw_kstr(w, "online", list);
	jw_key(w, "cpus");
	jw_arr(w);
	for (int i = 0; i < inv->ncpus; i++) {
		const struct inv_cpu *c = &inv->cpus[i];

		jw_obj(w);
		jw_kint(w, "cpu", c->id);
		jw_kint(w, "node", c->node);
		jw_kint(w, "package", c->package);
		jw_kint(w, "core", c->core);
		jw_kstr(w, "smt_siblings", c->siblings);
		jw_key(w, "caches");
		jw_arr(w);
		for (int k = 0; k < c->ncaches; k++) {
			jw_obj(w);
			jw_kint(w, "level", c->caches[k].level);
			jw_kstr(w, "type", c->caches[k].type);
			jw_kstr(w, "size", c->caches[k].size);
			jw_kstr(w, "shared_with", c->caches[k].shared);
			jw_obj_end(w);
		}
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "nodes");
	jw_arr(w);
	for (int i = 0; i < inv->nnodes; i++) {
		jw_obj(w);
		jw_kint(w, "node", inv->nodes[i].id);
		jw_kint(w, "mem", (int64_t)inv->nodes[i].mem_total);
		jw_kstr(w, "cpus", inv->nodes[i].cpus);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_kint(w, "mem_total", (int64_t)inv->mem_total);
	jw_key(w, "nics");
	jw_arr(w);
	for (int i = 0; i < inv->nnics; i++) {
		jw_obj(w);
		jw_kstr(w, "name", inv->nics[i].name);
		jw_key(w, "irqs");
		jw_arr(w);
		for (int k = 0; k < inv->nics[i].nirqs; k++)
			jw_int(w, inv->nics[i].irqs[k]);
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}
