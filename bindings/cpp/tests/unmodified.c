/* SPDX-License-Identifier: MIT */
/*
 * unmodified.c -- a program that knows nothing of VolipMem: it builds a
 * linked list with malloc and exits without freeing it. Run under
 * libvolipmem_preload.so, the nodes must end up (durably) in the pool;
 * test_preload checks the pool's heap usage afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	char payload[112];
};

int main(void)
{
	struct node *head = NULL;
	for (int i = 0; i < 1000; i++) {
		struct node *n = malloc(sizeof *n);
		if (n == NULL)
			return 1;
		memset(n->payload, 'a' + i % 26, sizeof n->payload);
		n->next = head;
		head = n;
	}
	printf("head %p\n", (void *)head);
	return 0;
}
