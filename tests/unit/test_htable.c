/*
 * test_htable.c - unit tests for htable.c: basic operations, replace,
 * removal while iterating, and thousands of inserts and removes checked
 * against a plain array model.
 */
#include <stdint.h>

#include "htable.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

TEST(insert_find_remove)
{
    htable_t *t = htable_new(0);
    int     a = 1, b = 2, c = 3;
    void   *v = NULL;

    CHECK_INTEQ(htable_count(t), 0);
    CHECK(htable_find(t, "a") == NULL);
    CHECK(htable_insert(t, "a", &a));
    CHECK(htable_insert(t, "b", &b));
    CHECK(!htable_insert(t, "a", &c));          /* present: unchanged */
    CHECK(htable_find(t, "a") == &a);
    CHECK_INTEQ(htable_count(t), 2);
    CHECK(htable_lookup(t, "b", &v) && v == &b);
    CHECK(!htable_lookup(t, "B", &v));          /* keys are case-sensitive */
    CHECK(!htable_lookup(t, "", NULL));
    CHECK(htable_remove(t, "a", &v) && v == &a);
    CHECK(!htable_remove(t, "a", NULL));
    CHECK(htable_find(t, "a") == NULL);
    CHECK_INTEQ(htable_count(t), 1);
    htable_free(t, NULL);
}

TEST(set_replaces_and_reports_old)
{
    htable_t *t = htable_new(4);
    int     a = 1, b = 2;
    void   *old = NULL;

    CHECK(!htable_set(t, "k", &a, &old));
    CHECK(old == NULL);
    CHECK(htable_set(t, "k", &b, &old));
    CHECK(old == &a);
    CHECK(htable_find(t, "k") == &b);
    CHECK_INTEQ(htable_count(t), 1);
    htable_free(t, NULL);
}

TEST(empty_key_and_null_values)
{
    htable_t *t = htable_new(0);
    void   *v = &v;

    CHECK(htable_insert(t, "", NULL));
    CHECK(htable_lookup(t, "", &v) && v == NULL);   /* present, value NULL */
    CHECK(htable_find(t, "") == NULL);
    CHECK(htable_remove(t, "", NULL));
    CHECK_INTEQ(htable_count(t), 0);
    htable_free(t, NULL);
}

TEST(keys_are_copied)
{
    htable_t *t = htable_new(0);
    char    key[] = "mutable";
    int     x = 7;

    CHECK(htable_insert(t, key, &x));
    key[0] = 'M';
    CHECK(htable_find(t, "mutable") == &x);
    CHECK(htable_find(t, key) == NULL);
    htable_free(t, NULL);
}

TEST(free_calls_value_destructor)
{
    htable_t *t = htable_new(0);

    /* LeakSanitizer (make SAN=1) checks that every value is freed. */
    for (int i = 0; i < 100; i++) {
        char    k[16];

        snprintf(k, sizeof(k), "k%d", i);
        CHECK(htable_insert(t, k, mem_strdup(k)));
    }
    CHECK(htable_insert(t, "null", NULL));      /* NULL values are skipped */
    htable_free(t, mem_free);
    htable_free(NULL, mem_free);
}

TEST(iterate_visits_each_once_and_may_remove_current)
{
    htable_t *t = htable_new(0);
    enum { N = 1000 };
    static int vals[N];
    static unsigned char seen[N];
    htable_iter_t it;
    const char *key;
    void   *value;
    size_t  visits = 0;

    for (int i = 0; i < N; i++) {
        char    k[16];

        vals[i] = i;
        snprintf(k, sizeof(k), "key-%d", i);
        CHECK(htable_insert(t, k, &vals[i]));
    }
    memset(seen, 0, sizeof(seen));
    htable_iter_init(&it, t);
    while (htable_iter_next(&it, &key, &value)) {
        int     i = *(int *) value;
        char    k[16];

        snprintf(k, sizeof(k), "key-%d", i);
        CHECK_STREQ(key, k);
        seen[i]++;
        visits++;
        if (i % 2 == 0)
            CHECK(htable_remove(t, key, NULL));     /* remove the current entry */
    }
    CHECK_INTEQ(visits, N);
    for (int i = 0; i < N; i++)
        CHECK_INTEQ(seen[i], 1);
    CHECK_INTEQ(htable_count(t), N / 2);

    /* A second pass sees only the odd ones. */
    visits = 0;
    htable_iter_init(&it, t);
    while (htable_iter_next(&it, NULL, &value)) {
        CHECK(*(int *) value % 2 == 1);
        visits++;
    }
    CHECK_INTEQ(visits, N / 2);
    htable_free(t, NULL);

    /* An empty table iterates zero times. */
    t = htable_new(0);
    htable_iter_init(&it, t);
    CHECK(!htable_iter_next(&it, &key, &value));
    htable_free(t, NULL);
}

/* A small deterministic generator for the stress test. */
static uint64_t
next_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

TEST(thousands_of_inserts_and_removes_match_a_model)
{
    enum { KEYS = 5000, OPS = 200000 };
    static signed char model[KEYS];     /* 1 when key i is in the table */
    static int vals[KEYS];
    htable_t *t = htable_new(0);
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    size_t  count = 0;
    int     mismatches = 0;

    memset(model, 0, sizeof(model));
    for (int op = 0; op < OPS; op++) {
        uint64_t r = next_rand(&state);
        int     i = (int) (r % KEYS);
        char    k[32];
        void   *v = NULL;

        vals[i] = i;
        snprintf(k, sizeof(k), "%d.example.com", i);
        switch ((r >> 32) % 3) {
        case 0:
            if (htable_insert(t, k, &vals[i]) != !model[i])
                mismatches++;
            if (!model[i])
                count++;
            model[i] = 1;
            break;
        case 1:
            if (htable_remove(t, k, &v) != (bool) model[i] || (model[i] && v != &vals[i]))
                mismatches++;
            if (model[i])
                count--;
            model[i] = 0;
            break;
        default:
            if (htable_lookup(t, k, &v) != (bool) model[i] || (model[i] && v != &vals[i]))
                mismatches++;
            break;
        }
        if (htable_count(t) != count)
            mismatches++;
    }
    CHECK_INTEQ(mismatches, 0);
    for (int i = 0; i < KEYS; i++) {
        char    k[32];

        snprintf(k, sizeof(k), "%d.example.com", i);
        if ((htable_find(t, k) != NULL) != (bool) model[i])
            mismatches++;
    }
    CHECK_INTEQ(mismatches, 0);

    /* Grow from empty to 100k entries, then remove them all. */
    htable_t *big = htable_new(0);

    for (int i = 0; i < 100000; i++) {
        char    k[32];

        snprintf(k, sizeof(k), "host%d", i);
        if (!htable_insert(big, k, &vals[i % KEYS]))
            mismatches++;
    }
    CHECK_INTEQ(htable_count(big), 100000);
    for (int i = 0; i < 100000; i++) {
        char    k[32];

        snprintf(k, sizeof(k), "host%d", i);
        if (htable_find(big, k) != &vals[i % KEYS] || !htable_remove(big, k, NULL))
            mismatches++;
    }
    CHECK_INTEQ(mismatches, 0);
    CHECK_INTEQ(htable_count(big), 0);
    htable_free(big, NULL);
    htable_free(t, NULL);
}

TEST(long_and_binary_looking_keys)
{
    htable_t *t = htable_new(0);
    str_t  *k = str_new(0);
    int     x = 1, y = 2;

    /* Keys of every length 0..64 exercise each SipHash tail size. */
    for (int len = 0; len <= 64; len++) {
        str_reset(k);
        for (int i = 0; i < len; i++)
            str_putc(k, 'a' + (i % 26));
        CHECK(htable_insert(t, str_cstr(k), &x));
    }
    CHECK_INTEQ(htable_count(t), 65);
    str_reset(k);
    for (int i = 0; i < 100000; i++)
        str_putc(k, (char) (0x80 | (i & 0x7f)));
    CHECK(htable_insert(t, str_cstr(k), &y));
    CHECK(htable_find(t, str_cstr(k)) == &y);
    str_free(k);
    htable_free(t, NULL);
}
