/*
 * htable.h - a hash table from C-string keys to void * values.
 *
 * A general tool: knows nothing of mail. Keys are copied into the table and
 * owned by it; values are the caller's (htable_free() can call a function on
 * each). Keys compare byte for byte (fold them first if case must not
 * matter). The table grows by itself as entries are added, so lookups stay
 * O(1) on average; it does not shrink when entries are removed.
 *
 * The hash is SipHash-1-3 with a random key chosen once per process, so a
 * peer that chooses keys cannot make every key land in the same bucket.
 *
 * Iteration visits every entry once, in no particular order. While iterating
 * the caller may remove the entry it was just given (and only that one);
 * any other insert or remove during an iteration is a bug.
 *
 * Nothing here fails: allocation failure is fatal (see mem.h).
 */
#ifndef POSTERN_HTABLE_H
#define POSTERN_HTABLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct htable htable_t;
struct htable_entry;

typedef struct htable_iter {
    const htable_t *table;
    size_t  bucket;             /* next bucket to look at */
    struct htable_entry *next;  /* next entry in the current chain, or NULL */
} htable_iter_t;

/* A new empty table; "hint" is the expected number of entries (0 is fine). */
htable_t *htable_new(size_t hint);
/* Free the table and its keys; call free_value on each value unless it is NULL. */
void    htable_free(htable_t *t, void (*free_value)(void *value));

/* Add key -> value. Returns false and changes nothing if key is present. */
bool    htable_insert(htable_t *t, const char *key, void *value);
/*
 * Add or replace. Returns true when key was present; then its old value is
 * stored in *old (when old is not NULL) and the caller owns it.
 */
bool    htable_set(htable_t *t, const char *key, void *value, void **old);
/* true when key is present; its value goes to *value (when value is not NULL). */
bool    htable_lookup(const htable_t *t, const char *key, void **value);
/* The value for key, or NULL when absent (ambiguous if NULL values are stored). */
void   *htable_find(const htable_t *t, const char *key);
/* Remove key. Returns false if absent; else its value goes to *old (when not NULL). */
bool    htable_remove(htable_t *t, const char *key, void **old);
size_t  htable_count(const htable_t *t);

/*
 * Iterate: htable_iter_init(&it, t); while (htable_iter_next(&it, &k, &v)) ...
 * key and value may be NULL when not wanted. A returned key stays valid until
 * its entry is removed or the table is freed.
 */
void    htable_iter_init(htable_iter_t *it, const htable_t *t);
bool    htable_iter_next(htable_iter_t *it, const char **key, void **value);

#endif
