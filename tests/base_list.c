/* base_list.c - intrusive list and squeue: order, removal, splice, concat. */
#include <atoll/list.h>

#include "harness.h"

struct item {
	int v;
	struct list_head link;
	struct snode qlink;
};

static void test_list(void)
{
	struct list_head h, h2, *pos, *tmp;
	struct item it[8];
	int expect = 0, n = 0;

	list_init(&h);
	list_init(&h2);
	CHECK(list_empty(&h));
	for (int i = 0; i < 8; i++) {
		it[i].v = i;
		list_init(&it[i].link);
		CHECK(!list_linked(&it[i].link));
		list_add_tail(i < 4 ? &h : &h2, &it[i].link);
		CHECK(list_linked(&it[i].link));
	}
	list_splice_tail(&h, &h2);
	CHECK(list_empty(&h2));
	list_for_each(pos, &h)
		CHECK_EQ(list_entry(pos, struct item, link)->v, expect++);
	CHECK_EQ(expect, 8);

	/* Remove the odd ones while iterating. */
	list_for_each_safe(pos, tmp, &h) {
		if (list_entry(pos, struct item, link)->v % 2)
			list_del(pos);
	}
	list_del(&it[1].link); /* a second delete is harmless */
	list_for_each(pos, &h) {
		CHECK_EQ(list_entry(pos, struct item, link)->v % 2, 0);
		n++;
	}
	CHECK_EQ(n, 4);
	CHECK_EQ(list_first_entry(&h, struct item, link)->v, 0);
	CHECK_EQ(list_last_entry(&h, struct item, link)->v, 6);

	list_add(&h, &it[1].link); /* stack order: at the front */
	CHECK_EQ(list_first_entry(&h, struct item, link)->v, 1);
}

static void test_squeue(void)
{
	struct squeue q, q2;
	struct item it[6];
	struct snode *n;

	squeue_init(&q);
	squeue_init(&q2);
	CHECK(squeue_empty(&q));
	CHECK(squeue_pop(&q) == NULL);
	for (int i = 0; i < 6; i++) {
		it[i].v = i;
		squeue_push(i < 3 ? &q : &q2, &it[i].qlink);
	}
	squeue_concat(&q, &q2);
	CHECK(squeue_empty(&q2));
	CHECK_EQ(q.len, 6);
	n = squeue_pop(&q);
	CHECK_EQ(squeue_entry(n, struct item, qlink)->v, 0);
	squeue_push_front(&q, n);
	for (int i = 0; i < 6; i++) {
		n = squeue_pop(&q);
		CHECK(n != NULL);
		CHECK_EQ(squeue_entry(n, struct item, qlink)->v, i);
	}
	CHECK(squeue_pop(&q) == NULL);
	CHECK_EQ(q.len, 0);
	CHECK(q.tail == NULL);
	/* After draining, the queue must accept pushes again. */
	squeue_push(&q, &it[2].qlink);
	CHECK(squeue_pop(&q) == &it[2].qlink);
}

int main(void)
{
	test_list();
	test_squeue();
	return TEST_PASS;
}
