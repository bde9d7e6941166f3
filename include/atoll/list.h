/* list.h - intrusive doubly-linked list and singly-linked FIFO queue.
 *
 * Owns: nothing but the link fields embedded in the caller's structures.
 * Thread safety: none. The caller serialises access (a lock, or ownership
 * by one vcore). Header only; no allocation.
 *
 * struct list_head is a circular list with a sentinel: an empty list points
 * at itself, so insertion and removal never branch on emptiness.
 * struct squeue is a singly-linked FIFO (head, tail) for O(1) push at the
 * tail and pop at the head, one pointer per element.
 */
#ifndef ATOLL_LIST_H
#define ATOLL_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include <atoll/compiler.h>

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name) { &(name), &(name) }

static inline void list_init(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

static inline void list__insert(struct list_head *n, struct list_head *prev,
				struct list_head *next)
{
	n->next = next;
	n->prev = prev;
	prev->next = n;
	next->prev = n;
}

/* Insert n right after h (stack order). */
static inline void list_add(struct list_head *h, struct list_head *n)
{
	list__insert(n, h, h->next);
}

/* Insert n right before h, i.e. at the tail (queue order). */
static inline void list_add_tail(struct list_head *h, struct list_head *n)
{
	list__insert(n, h->prev, h);
}

/* Unlink n. n is left pointing at itself, so a second list_del() and
 * list_linked() are safe. */
static inline void list_del(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

/* Whether n (initialised by list_init or list_del) is on some list. */
static inline bool list_linked(const struct list_head *n)
{
	return n->next != n;
}

/* Move every element of src to the tail of dst; src becomes empty. */
static inline void list_splice_tail(struct list_head *dst,
				    struct list_head *src)
{
	if (list_empty(src))
		return;
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	list_init(src);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)
#define list_last_entry(h, type, member) list_entry((h)->prev, type, member)

#define list_for_each(pos, h) \
	for ((pos) = (h)->next; (pos) != (h); (pos) = (pos)->next)

/* Safe against list_del(pos) inside the loop body. */
#define list_for_each_safe(pos, tmp, h)                                   \
	for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h);        \
	     (pos) = (tmp), (tmp) = (pos)->next)

/* ---- singly-linked FIFO queue ------------------------------------------ */

struct snode {
	struct snode *next;
};

struct squeue {
	struct snode *head;
	struct snode *tail;
	size_t len;
};

static inline void squeue_init(struct squeue *q)
{
	q->head = NULL;
	q->tail = NULL;
	q->len = 0;
}

static inline bool squeue_empty(const struct squeue *q)
{
	return q->head == NULL;
}

static inline void squeue_push(struct squeue *q, struct snode *n)
{
	n->next = NULL;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	q->len++;
}

/* Put n at the front, to be popped next. */
static inline void squeue_push_front(struct squeue *q, struct snode *n)
{
	n->next = q->head;
	q->head = n;
	if (!q->tail)
		q->tail = n;
	q->len++;
}

static inline struct snode *squeue_pop(struct squeue *q)
{
	struct snode *n = q->head;

	if (!n)
		return NULL;
	q->head = n->next;
	if (!q->head)
		q->tail = NULL;
	q->len--;
	n->next = NULL;
	return n;
}

/* Append all of src to dst; src becomes empty. */
static inline void squeue_concat(struct squeue *dst, struct squeue *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		dst->tail->next = src->head;
	else
		dst->head = src->head;
	dst->tail = src->tail;
	dst->len += src->len;
	squeue_init(src);
}

#define squeue_entry(ptr, type, member) container_of(ptr, type, member)

#endif /* ATOLL_LIST_H */
