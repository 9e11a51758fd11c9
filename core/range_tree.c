/* SPDX-License-Identifier: MIT */
/*
 * range_tree: coalesced [start, end) segments in an augmented AVL tree.
 *
 * Theory of operation
 *
 * Every segment is one node keyed by its start. Because segments are disjoint, ordering by start
 * also orders them by end, so "the segment containing x" is the node with the largest start <= x
 * (floor lookup). Each node caches the height of its subtree (AVL balance) and the largest
 * segment length in its subtree (maxlen), recomputed bottom-up by node_fix() on every path that
 * changes.
 *
 * add() looks at the floor and the successor of the new start: it extends a neighbour in place
 * (merging both when the new range bridges them) and only inserts a node when neither touches.
 * remove() trims the covering segment in place or splits it in two. Changing a node's start or
 * end in place never breaks the key order (the changed node still lies strictly between its
 * neighbours), so only maxlen must be refreshed along the root-to-node path (path_refresh).
 * When a node is needed (insert, split) it is allocated before anything changes, so -ENOMEM
 * leaves the tree untouched.
 *
 * First fit walks in key order but skips every subtree whose maxlen is below the request and
 * every left subtree lying wholly before the cursor; a candidate is then tested with its start
 * raised to the cursor and aligned up. Alignment can reject a long enough segment; the search
 * then simply continues with the next candidate in order.
 *
 * Invariants (checked by range_tree_check):
 *   1. In-order starts strictly increase and each segment is non-empty.
 *   2. Consecutive segments are neither overlapping nor adjacent: prev.end < next.start.
 *   3. height = 1 + max(child heights), and child heights differ by at most one.
 *   4. maxlen = max(own length, children's maxlen).
 *   5. space = sum of lengths, count = number of nodes.
 */
#include "core/range_tree.h"

#include <errno.h>
#include <stdlib.h>

#include "common/assert.h"
#include "common/err.h"

struct rt_node {
    uint64_t start;  /* key */
    uint64_t end;    /* exclusive, > start */
    uint64_t maxlen; /* largest end - start in this subtree */
    struct rt_node *left, *right;
    int height; /* leaf = 1 */
};

struct range_tree {
    struct rt_node *root;
    uint64_t space; /* sum of segment lengths */
    size_t count;   /* number of segments */
};

static inline int
node_height(const struct rt_node *n)
{
    return n != NULL ? n->height : 0;
}

static inline uint64_t
node_maxlen(const struct rt_node *n)
{
    return n != NULL ? n->maxlen : 0;
}

static inline uint64_t
max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Recomputes n's height and maxlen from its children. */
static void
node_fix(struct rt_node *n)
{
    int hl = node_height(n->left), hr = node_height(n->right);
    n->height = 1 + (hl > hr ? hl : hr);
    n->maxlen = max_u64(n->end - n->start, max_u64(node_maxlen(n->left), node_maxlen(n->right)));
}

static struct rt_node *
rotate_right(struct rt_node *n)
{
    struct rt_node *l = n->left;
    n->left = l->right;
    l->right = n;
    node_fix(n);
    node_fix(l);
    return l;
}

static struct rt_node *
rotate_left(struct rt_node *n)
{
    struct rt_node *r = n->right;
    n->right = r->left;
    r->left = n;
    node_fix(n);
    node_fix(r);
    return r;
}

/* Restores the AVL balance of n (children already balanced, heights off by at most 2). */
static struct rt_node *
node_balance(struct rt_node *n)
{
    node_fix(n);
    int bf = node_height(n->left) - node_height(n->right);
    if (bf > 1) {
        if (node_height(n->left->left) < node_height(n->left->right))
            n->left = rotate_left(n->left);
        return rotate_right(n);
    }
    if (bf < -1) {
        if (node_height(n->right->right) < node_height(n->right->left))
            n->right = rotate_right(n->right);
        return rotate_left(n);
    }
    return n;
}

static struct rt_node *
node_insert(struct rt_node *n, struct rt_node *nn)
{
    if (n == NULL)
        return nn;
    if (nn->start < n->start)
        n->left = node_insert(n->left, nn);
    else
        n->right = node_insert(n->right, nn);
    return node_balance(n);
}

/* Detaches the leftmost node of subtree n into *min; returns the new subtree root. */
static struct rt_node *
node_remove_min(struct rt_node *n, struct rt_node **min)
{
    if (n->left == NULL) {
        *min = n;
        return n->right;
    }
    n->left = node_remove_min(n->left, min);
    return node_balance(n);
}

/*
 * Unlinks the node with start == key (it must exist) and stores it in *out. Nodes are relinked,
 * never copied, so pointers to other nodes stay valid.
 */
static struct rt_node *
node_delete(struct rt_node *n, uint64_t key, struct rt_node **out)
{
    VERIFY(n != NULL);
    if (key < n->start) {
        n->left = node_delete(n->left, key, out);
    } else if (key > n->start) {
        n->right = node_delete(n->right, key, out);
    } else {
        *out = n;
        if (n->left == NULL)
            return n->right;
        if (n->right == NULL)
            return n->left;
        struct rt_node *succ;
        struct rt_node *right = node_remove_min(n->right, &succ);
        succ->left = n->left;
        succ->right = right;
        return node_balance(succ);
    }
    return node_balance(n);
}

/* Recomputes maxlen along the path to the node keyed `key` after its bounds changed in place. */
static void
path_refresh(struct rt_node *n, uint64_t key)
{
    VERIFY(n != NULL);
    if (key < n->start)
        path_refresh(n->left, key);
    else if (key > n->start)
        path_refresh(n->right, key);
    node_fix(n);
}

/* The node with the largest start <= x, or NULL. */
static struct rt_node *
node_floor(const struct range_tree *rt, uint64_t x)
{
    struct rt_node *n = rt->root, *best = NULL;
    while (n != NULL) {
        if (n->start <= x) {
            best = n;
            n = n->right;
        } else {
            n = n->left;
        }
    }
    return best;
}

/* The node with the smallest start > x, or NULL. */
static struct rt_node *
node_higher(const struct range_tree *rt, uint64_t x)
{
    struct rt_node *n = rt->root, *best = NULL;
    while (n != NULL) {
        if (n->start > x) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

static void
node_free_all(struct rt_node *n)
{
    while (n != NULL) {
        node_free_all(n->left);
        struct rt_node *r = n->right;
        free(n);
        n = r;
    }
}

struct range_tree *
range_tree_new(void)
{
    return calloc(1, sizeof(struct range_tree));
}

void
range_tree_free(struct range_tree *rt)
{
    if (rt == NULL)
        return;
    node_free_all(rt->root);
    free(rt);
}

void
range_tree_clear(struct range_tree *rt)
{
    node_free_all(rt->root);
    rt->root = NULL;
    rt->space = 0;
    rt->count = 0;
}

int
range_tree_add(struct range_tree *rt, uint64_t start, uint64_t len)
{
    VERIFY3U(len, >, 0);
    uint64_t end = start + len;
    VERIFY3U(end, >, start); /* no wrap */

    struct rt_node *prev = node_floor(rt, start);
    struct rt_node *next = node_higher(rt, start);
    if (prev != NULL)
        VERIFY3U(prev->end, <=, start);
    if (next != NULL)
        VERIFY3U(next->start, >=, end);
    bool merge_prev = prev != NULL && prev->end == start;
    bool merge_next = next != NULL && next->start == end;

    if (merge_prev && merge_next) {
        uint64_t next_end = next->end;
        struct rt_node *dead;
        rt->root = node_delete(rt->root, next->start, &dead);
        ASSERT(dead == next);
        free(dead);
        prev->end = next_end;
        path_refresh(rt->root, prev->start);
        rt->count--;
    } else if (merge_prev) {
        prev->end = end;
        path_refresh(rt->root, prev->start);
    } else if (merge_next) {
        next->start = start; /* still between prev and next's successor */
        path_refresh(rt->root, start);
    } else {
        struct rt_node *nn = malloc(sizeof(*nn));
        if (nn == NULL)
            return ERR(-ENOMEM);
        nn->start = start;
        nn->end = end;
        nn->maxlen = len;
        nn->left = nn->right = NULL;
        nn->height = 1;
        rt->root = node_insert(rt->root, nn);
        rt->count++;
    }
    rt->space += len;
    return 0;
}

int
range_tree_remove(struct range_tree *rt, uint64_t start, uint64_t len)
{
    VERIFY3U(len, >, 0);
    uint64_t end = start + len;
    VERIFY3U(end, >, start);

    struct rt_node *n = node_floor(rt, start);
    VERIFY(n != NULL);
    VERIFY3U(n->end, >=, end);

    if (n->start == start && n->end == end) {
        struct rt_node *dead;
        rt->root = node_delete(rt->root, start, &dead);
        ASSERT(dead == n);
        free(dead);
        rt->count--;
    } else if (n->start == start) {
        n->start = end;
        path_refresh(rt->root, end);
    } else if (n->end == end) {
        n->end = start;
        path_refresh(rt->root, n->start);
    } else {
        struct rt_node *nn = malloc(sizeof(*nn));
        if (nn == NULL)
            return ERR(-ENOMEM);
        nn->start = end;
        nn->end = n->end;
        nn->maxlen = nn->end - nn->start;
        nn->left = nn->right = NULL;
        nn->height = 1;
        n->end = start;
        path_refresh(rt->root, n->start);
        rt->root = node_insert(rt->root, nn);
        rt->count++;
    }
    rt->space -= len;
    return 0;
}

bool
range_tree_contains(const struct range_tree *rt, uint64_t start, uint64_t len)
{
    if (len == 0)
        return true;
    uint64_t end = start + len;
    if (end < start)
        return false;
    const struct rt_node *n = node_floor(rt, start);
    return n != NULL && n->end >= end;
}

bool
range_tree_intersects(const struct range_tree *rt, uint64_t start, uint64_t len)
{
    if (len == 0)
        return false;
    uint64_t last = start + len - 1;
    if (last < start)
        last = UINT64_MAX;
    /* The only candidate is the last segment starting at or before the range's last byte. */
    const struct rt_node *n = node_floor(rt, last);
    return n != NULL && n->end > start;
}

/* Sets *out to the lowest offset >= max(start, cursor), aligned by mask, with len bytes before
 * end; false when there is none. */
static bool
seg_fit(const struct rt_node *n, uint64_t cursor, uint64_t len, uint64_t mask, uint64_t *out)
{
    uint64_t s = n->start > cursor ? n->start : cursor;
    if (s > UINT64_MAX - mask)
        return false;
    uint64_t x = (s + mask) & ~mask;
    if (x >= n->end || n->end - x < len)
        return false;
    *out = x;
    return true;
}

static bool
node_first_fit(const struct rt_node *n, uint64_t cursor, uint64_t len, uint64_t mask, uint64_t *out)
{
    while (n != NULL && n->maxlen >= len) {
        /* When n ends at or before the cursor, so does all of its left subtree. */
        if (n->end > cursor) {
            if (node_first_fit(n->left, cursor, len, mask, out))
                return true;
            if (seg_fit(n, cursor, len, mask, out))
                return true;
        }
        n = n->right;
    }
    return false;
}

bool
range_tree_find_first_fit(const struct range_tree *rt, uint64_t cursor, uint64_t len,
                          uint64_t align, uint64_t *out_start)
{
    if (align == 0)
        align = 1;
    VERIFY0(align & (align - 1));
    if (len == 0)
        len = 1;
    return node_first_fit(rt->root, cursor, len, align - 1, out_start);
}

uint64_t
range_tree_space(const struct range_tree *rt)
{
    return rt->space;
}

size_t
range_tree_count(const struct range_tree *rt)
{
    return rt->count;
}

uint64_t
range_tree_max_segment(const struct range_tree *rt)
{
    return node_maxlen(rt->root);
}

static int
node_walk(const struct rt_node *n, range_tree_walk_fn fn, void *arg)
{
    while (n != NULL) {
        int rc = node_walk(n->left, fn, arg);
        if (rc != 0)
            return rc;
        rc = fn(arg, n->start, n->end - n->start);
        if (rc != 0)
            return rc;
        n = n->right;
    }
    return 0;
}

int
range_tree_walk(const struct range_tree *rt, range_tree_walk_fn fn, void *arg)
{
    return node_walk(rt->root, fn, arg);
}

int
range_tree_vacate_into(struct range_tree *src, struct range_tree *dst)
{
    ASSERT(src != dst);
    if (dst->root == NULL) {
        /* Nothing to merge with: hand the nodes over whole. */
        dst->root = src->root;
        dst->space = src->space;
        dst->count = src->count;
        src->root = NULL;
        src->space = 0;
        src->count = 0;
        return 0;
    }
    /* Move the lowest segment at a time so that a failed add leaves every byte in one tree. */
    while (src->root != NULL) {
        struct rt_node *m = src->root;
        while (m->left != NULL)
            m = m->left;
        uint64_t start = m->start, len = m->end - m->start;
        int rc = range_tree_add(dst, start, len);
        if (rc != 0)
            return rc;
        struct rt_node *dead;
        src->root = node_delete(src->root, start, &dead);
        free(dead);
        src->space -= len;
        src->count--;
    }
    ASSERT(src->space == 0 && src->count == 0);
    return 0;
}

struct rt_check {
    bool have_prev;
    uint64_t prev_end;
    uint64_t space;
    size_t count;
    bool ok;
};

/* Returns the subtree height, clearing st->ok on the first violated invariant. */
static int
node_check(const struct rt_node *n, struct rt_check *st)
{
    if (n == NULL || !st->ok)
        return 0;
    int hl = node_check(n->left, st);
    if (!st->ok)
        return 0;
    if (n->start >= n->end)
        st->ok = false; /* invariant 1 */
    if (st->have_prev && st->prev_end >= n->start)
        st->ok = false; /* invariants 1, 2 */
    st->have_prev = true;
    st->prev_end = n->end;
    st->space += n->end - n->start;
    st->count++;
    int hr = node_check(n->right, st);
    if (!st->ok)
        return 0;
    int h = 1 + (hl > hr ? hl : hr);
    if (n->height != h || hl - hr > 1 || hr - hl > 1)
        st->ok = false; /* invariant 3 */
    uint64_t ml = max_u64(n->end - n->start, max_u64(node_maxlen(n->left), node_maxlen(n->right)));
    if (n->maxlen != ml)
        st->ok = false; /* invariant 4 */
    return h;
}

bool
range_tree_check(const struct range_tree *rt)
{
    struct rt_check st = { .ok = true };
    node_check(rt->root, &st);
    return st.ok && st.space == rt->space && st.count == rt->count; /* invariant 5 */
}
