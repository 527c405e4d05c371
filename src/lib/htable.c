/*
 * htable.c - chained hash table with string keys; see htable.h.
 *
 * Buckets are a power-of-two array of singly linked chains. Each entry is one
 * allocation holding its hash, its value and a copy of its key. The table
 * doubles its bucket array when the number of entries reaches the number of
 * buckets, re-linking entries by their stored hash (keys are not re-hashed).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "htable.h"
#include "log.h"
#include "mem.h"

#define HTABLE_MIN_BUCKETS  16
#define HTABLE_MAX_BUCKETS  ((size_t) 1 << (sizeof(size_t) * 8 - 2))

struct htable_entry {
    struct htable_entry *next;
    uint64_t hash;
    void   *value;
    char    key[];
};

struct htable {
    struct htable_entry **buckets;
    size_t  nbuckets;           /* always a power of two */
    size_t  count;
};

static uint64_t htable_key[2];
static bool htable_seeded;

/*
 * Choose the per-process SipHash key. getrandom() is the source; if the
 * kernel cannot give one (very old kernels), fall back to a mix of clock,
 * pid and addresses: weaker against a determined peer, but still not fixed.
 */
static void
htable_seed(void)
{
    unsigned char buf[16];
    size_t  got = 0;

    while (got < sizeof(buf)) {
        ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);

        if (n > 0) {
            got += (size_t) n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    if (got == sizeof(buf)) {
        memcpy(&htable_key[0], buf, 8);
        memcpy(&htable_key[1], buf + 8, 8);
    } else {
        struct timespec ts = {0};

        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            ts.tv_nsec = 0;
        htable_key[0] = (uint64_t) ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t) getpid();
        htable_key[1] = (uint64_t) ts.tv_sec ^ (uint64_t) (uintptr_t) &got;
    }
    htable_seeded = true;
}

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

/* SipHash-1-3 of len bytes at data, keyed with htable_key. */
static uint64_t
htable_hash(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *) data;
    uint64_t v0 = htable_key[0] ^ 0x736f6d6570736575ULL;
    uint64_t v1 = htable_key[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = htable_key[0] ^ 0x6c7967656e657261ULL;
    uint64_t v3 = htable_key[1] ^ 0x7465646279746573ULL;
    uint64_t m;
    size_t  blocks = len / 8;

    for (size_t i = 0; i < blocks; i++, p += 8) {
        m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | p[j];
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    m = (uint64_t) len << 56;
    for (size_t j = 0; j < (len & 7); j++)
        m |= (uint64_t) p[j] << (8 * j);
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

htable_t *
htable_new(size_t hint)
{
    htable_t *t = mem_zalloc(sizeof(*t));
    size_t  n = HTABLE_MIN_BUCKETS;

    if (!htable_seeded)
        htable_seed();
    while (n < hint && n < HTABLE_MAX_BUCKETS)
        n *= 2;
    t->buckets = mem_array(n, sizeof(*t->buckets));
    t->nbuckets = n;
    return t;
}

void
htable_free(htable_t *t, void (*free_value)(void *value))
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct htable_entry *e = t->buckets[i];

        while (e) {
            struct htable_entry *next = e->next;

            if (free_value && e->value)
                free_value(e->value);
            mem_free(e);
            e = next;
        }
    }
    mem_free(t->buckets);
    mem_free(t);
}

/* Double the bucket array and re-link every entry by its stored hash. */
static void
htable_grow(htable_t *t)
{
    size_t  n = t->nbuckets * 2;
    struct htable_entry **b;

    if (t->nbuckets >= HTABLE_MAX_BUCKETS)
        return;
    b = mem_array(n, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct htable_entry *e = t->buckets[i];

        while (e) {
            struct htable_entry *next = e->next;
            size_t  j = (size_t) e->hash & (n - 1);

            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    mem_free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

/*
 * Find the link that points at key's entry (or at the NULL ending its chain
 * when absent), so callers can both test and unlink. *hash receives the hash.
 */
static struct htable_entry **
htable_slot(const htable_t *t, const char *key, size_t len, uint64_t *hash)
{
    uint64_t h = htable_hash(key, len);
    struct htable_entry **pp = &t->buckets[(size_t) h & (t->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
            break;
    *hash = h;
    return pp;
}

/* Add a new entry for a key known to be absent. */
static void
htable_add(htable_t *t, const char *key, size_t len, uint64_t hash, void *value)
{
    struct htable_entry *e;
    size_t  i;

    if (t->count >= t->nbuckets)
        htable_grow(t);
    if (len > SIZE_MAX - sizeof(*e) - 1)
        log_panic("htable_add: key length overflow");
    e = mem_alloc(sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->value = value;
    i = (size_t) hash & (t->nbuckets - 1);
    e->next = t->buckets[i];
    t->buckets[i] = e;
    t->count++;
}

bool
htable_insert(htable_t *t, const char *key, void *value)
{
    size_t  len = strlen(key);
    uint64_t hash;
    struct htable_entry **pp = htable_slot(t, key, len, &hash);

    if (*pp)
        return false;
    htable_add(t, key, len, hash, value);
    return true;
}

bool
htable_set(htable_t *t, const char *key, void *value, void **old)
{
    size_t  len = strlen(key);
    uint64_t hash;
    struct htable_entry **pp = htable_slot(t, key, len, &hash);

    if (*pp) {
        if (old)
            *old = (*pp)->value;
        (*pp)->value = value;
        return true;
    }
    htable_add(t, key, len, hash, value);
    return false;
}

bool
htable_lookup(const htable_t *t, const char *key, void **value)
{
    uint64_t hash;
    struct htable_entry **pp = htable_slot(t, key, strlen(key), &hash);

    if (*pp == NULL)
        return false;
    if (value)
        *value = (*pp)->value;
    return true;
}

void   *
htable_find(const htable_t *t, const char *key)
{
    void   *value = NULL;

    return htable_lookup(t, key, &value) ? value : NULL;
}

bool
htable_remove(htable_t *t, const char *key, void **old)
{
    uint64_t hash;
    struct htable_entry **pp = htable_slot(t, key, strlen(key), &hash);
    struct htable_entry *e = *pp;

    if (e == NULL)
        return false;
    if (old)
        *old = e->value;
    *pp = e->next;
    mem_free(e);
    t->count--;
    return true;
}

size_t
htable_count(const htable_t *t)
{
    return t->count;
}

void
htable_iter_init(htable_iter_t *it, const htable_t *t)
{
    it->table = t;
    it->bucket = 0;
    it->next = NULL;
}

/*
 * The iterator remembers the entry after the one it returns, so removing the
 * returned entry does not disturb it.
 */
bool
htable_iter_next(htable_iter_t *it, const char **key, void **value)
{
    const htable_t *t = it->table;
    struct htable_entry *e = it->next;

    while (e == NULL) {
        if (it->bucket >= t->nbuckets)
            return false;
        e = t->buckets[it->bucket++];
    }
    it->next = e->next;
    if (key)
        *key = e->key;
    if (value)
        *value = e->value;
    return true;
}
