/* ring.c - setup and header checks for the SPSC and MPSC rings (ring.h).
 *
 * The hot paths are static inline in ring.h. This file only lays a ring out
 * in the caller's memory and checks the header another process finds
 * there. Init writes everything else first and the magic last, with a
 * release store; attach loads the magic with acquire, so an attacher that
 * recognises the magic also sees the geometry and the initial indices.
 */
#include <atoll/ring.h>

/* Bytes for the header plus nslots slots, or 0 for an invalid count. */
static size_t ring__size(uint32_t nslots)
{
	if (!IS_POW2(nslots) || nslots < RING_MIN_SLOTS ||
	    nslots > RING_MAX_SLOTS)
		return 0;
	return RING_HDR_SIZE + (size_t)nslots * RING_SLOT_SIZE;
}

size_t ring_spsc_size(uint32_t nslots)
{
	return ring__size(nslots);
}

size_t ring_mpsc_size(uint32_t nslots)
{
	return ring__size(nslots);
}

static bool ring__aligned(const void *p)
{
	return ((uintptr_t)p & (CACHE_LINE - 1)) == 0;
}

/* Check the arguments of init and fill in line 0, except the magic. */
static int ring__geom_init(struct ring_geom *g, size_t memsize,
			   uint32_t nslots)
{
	size_t need = ring__size(nslots);

	if (need == 0 || memsize < need)
		return -EINVAL;
	/* Clear the magic first, so an attacher never sees an old magic with
	 * half-written geometry. Relaxed: init runs with no concurrent user
	 * of the ring; attach checks the rest only after the magic. */
	store_relaxed(&g->magic, 0);
	g->version = RING_VERSION;
	g->slot_size = RING_SLOT_SIZE;
	g->nslots = nslots;
	g->reserved = 0;
	g->total_size = need;
	return 0;
}

/* Validate line 0 against the expected kind and the mapping size. */
static int ring__geom_check(const struct ring_geom *g, size_t memsize,
			    uint32_t magic)
{
	if (memsize < RING_HDR_SIZE)
		return -EINVAL;
	/* Acquire pairs with the store_release of the magic at the end of
	 * ring_*_init(): the geometry and indices it wrote are visible. */
	if (load_acquire(&g->magic) != magic)
		return -EPROTO;
	if (g->version != RING_VERSION || g->slot_size != RING_SLOT_SIZE ||
	    g->reserved != 0)
		return -EPROTO;
	if (ring__size(g->nslots) == 0 ||
	    g->total_size != ring__size(g->nslots) || g->total_size > memsize)
		return -EPROTO;
	return 0;
}

int ring_spsc_init(struct ring_spsc *r, size_t memsize, uint32_t nslots)
{
	int err;

	/* Check the pointer before touching a member through it. */
	if (!r || !ring__aligned(r))
		return -EINVAL;
	err = ring__geom_init(&r->geom, memsize, nslots);
	if (err)
		return err;
	r->prod.tail = 0;
	r->prod.head_cache = 0;
	r->prod.full = 0;
	r->cons.head = 0;
	r->cons.tail_cache = 0;
	/* Release pairs with the load_acquire of the magic in
	 * ring__geom_check() (attach): everything above is visible first. */
	store_release(&r->geom.magic, RING_SPSC_MAGIC);
	return 0;
}

int ring_spsc_attach(const struct ring_spsc *r, size_t memsize)
{
	/* Check the pointer before touching a member through it. */
	if (!r || !ring__aligned(r))
		return -EINVAL;
	return ring__geom_check(&r->geom, memsize, RING_SPSC_MAGIC);
}

int ring_mpsc_init(struct ring_mpsc *r, size_t memsize, uint32_t nslots)
{
	int err;

	/* Check the pointer before touching a member through it. */
	if (!r || !ring__aligned(r))
		return -EINVAL;
	err = ring__geom_init(&r->geom, memsize, nslots);
	if (err)
		return err;
	r->prod.tail = 0;
	r->prod.full = 0;
	r->cons.head = 0;
	/* Slot i starts free for position i (see the seq states in ring.h). */
	for (uint32_t i = 0; i < nslots; i++)
		r->slots[i].seq = i;
	/* Release pairs with the load_acquire of the magic in
	 * ring__geom_check() (attach): everything above is visible first. */
	store_release(&r->geom.magic, RING_MPSC_MAGIC);
	return 0;
}

int ring_mpsc_attach(const struct ring_mpsc *r, size_t memsize)
{
	/* Check the pointer before touching a member through it. */
	if (!r || !ring__aligned(r))
		return -EINVAL;
	return ring__geom_check(&r->geom, memsize, RING_MPSC_MAGIC);
}
