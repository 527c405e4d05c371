/*
 * test_queue.c - unit tests for queue.c: queue IDs (form, uniqueness,
 * round trip, order), the ID checker, hashed paths, queue_move and
 * queue_walk (in a private temporary directory, removed at the end).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "mem.h"
#include "queue.h"
#include "str.h"
#include "unit.h"

#define ALPHABET "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"

/* Independent decoder: base-51 digits of s[0..n) into *v; false on a bad digit. */
static bool
decode(const char *s, size_t n, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(ALPHABET, s[i]);

        if (s[i] == 0 || p == NULL)
            return false;
        *v = *v * 51 + (uint64_t) (p - ALPHABET);
    }
    return true;
}

static void
setup(const char *names, const char *depth)
{
    config_t *cfg = config_new();

    config_set(cfg, "hash_queue_names", names);
    config_set(cfg, "hash_queue_depth", depth);
    queue_init(cfg);
    config_free(cfg);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

TEST(id_round_trip_and_unique)
{
    enum { NT = 60, NI = 60 };
    char  **ids = mem_array(NT * NI, sizeof(char *));
    str_t  *id = str_new(0);
    size_t  n = 0;
    uint64_t seed = 12345;
    int     bad = 0;

    for (int t = 0; t < NT; t++) {
        struct timeval tv;

        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        tv.tv_sec = t < 2 ? t : (time_t) (1700000000 + (seed >> 40) % 100000000);
        tv.tv_usec = t == 3 ? 999999 : (suseconds_t) ((seed >> 20) % 1000000);
        for (int i = 0; i < NI; i++) {
            ino_t   ino = i == 0 ? 0 : i == 1 ? (ino_t) UINT64_MAX : (ino_t) (seed % 1000003 + (uint64_t) i * 7919);
            uint64_t vt, vi;
            const char *z;

            queue_id_make(id, &tv, ino);
            if (!queue_id_ok(str_cstr(id)) || str_len(id) > QUEUE_ID_MAX)
                bad++;
            z = strchr(str_cstr(id), 'z');
            if (z == NULL || z - str_cstr(id) != 10 || !decode(str_cstr(id), 10, &vt)
                || !decode(z + 1, strlen(z + 1), &vi)
                || vt != (uint64_t) tv.tv_sec * 1000000 + (uint64_t) tv.tv_usec || vi != (uint64_t) ino)
                bad++;
            ids[n++] = mem_strdup(str_cstr(id));
        }
    }
    CHECK_INTEQ(bad, 0);
    qsort(ids, n, sizeof(*ids), cmp_str);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(ids[i - 1], ids[i]) != 0);
    for (size_t i = 0; i < n; i++)
        mem_free(ids[i]);
    mem_free(ids);
    str_free(id);
}

TEST(id_sorts_by_time)
{
    str_t  *a = str_new(0), *b = str_new(0);
    struct timeval t1 = {1700000000, 5}, t2 = {1700000000, 6}, t3 = {1800000000, 0};

    queue_id_make(a, &t1, 99999);
    queue_id_make(b, &t2, 1);
    CHECK(strcmp(str_cstr(a), str_cstr(b)) < 0);
    queue_id_make(a, &t3, 1);
    CHECK(strcmp(str_cstr(b), str_cstr(a)) < 0);
    str_free(a);
    str_free(b);
}

TEST(id_checker_rejects)
{
    static const char *bad[] = {
        "", "../x", "..", "/", "4bKj7Pq2Rtz", "4bKj7Pq2Rt", "4bKj7Pq2RtzM3x/", "4bKj7Pq2Rt/M3x",
        "4bKj7Pq2RtzM3xM3xM3xM3xM3xM3xM3x", "4bKj7Pq2RtzM3xM3xM3xM3xM", /* inode part too long */
        "4bKj7Pq2RazM3x",       /* vowel */
        "4bKj7Pq2RtzM3z",       /* z in the inode part */
        "4bKj7Pq2RtZM3x",       /* no separator */
        "4bKj7Pq2RtzM-x", "4bKj7Pq2Rtz03x",    /* leading zero */
        "4bKj7Pq2Rtzyyyyyyyyyyyy",             /* inode over 64 bits */
        "4bKj7Pq2Rt zM3x", "4bKj7Pq2R\ntzM3x", "4bKj7Pq2RtzM3x\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (queue_id_ok(bad[i]))
            fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
        CHECK(!queue_id_ok(bad[i]));
    }
    CHECK(!queue_id_ok(NULL));
    CHECK(queue_id_ok("4bKj7Pq2RtzM3x"));
    CHECK(queue_id_ok("0000000000z0"));
    CHECK(queue_name_ok("deferred"));
    CHECK(!queue_name_ok("../deferred"));
    CHECK(!queue_name_ok(""));
}

TEST(path_layout)
{
    str_t  *p = str_new(0);

    setup("deferred, defer", "1");
    queue_path(p, "deferred", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "deferred/t/4bKj7Pq2RtzM3x");
    queue_path(p, "defer", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "defer/t/4bKj7Pq2RtzM3x");
    queue_path(p, "active", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "active/4bKj7Pq2RtzM3x");
    queue_dir_path(p, "active", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "active");
    setup("incoming deferred", "3");
    queue_path(p, "incoming", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "incoming/t/R/2/4bKj7Pq2RtzM3x");
    queue_dir_path(p, "deferred", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "deferred/t/R/2");
    queue_path(p, "defer", "4bKj7Pq2RtzM3x");
    CHECK_STREQ(str_cstr(p), "defer/4bKj7Pq2RtzM3x");
    str_free(p);
}

struct seen {
    int     count;
    char    names[16][QUEUE_ID_MAX + 1];
};

static void
remember(const char *queue_name, const char *id, void *ctx)
{
    struct seen *s = ctx;

    if (s->count < 16)
        snprintf(s->names[s->count], sizeof(s->names[0]), "%s", id);
    s->count++;
}

static void
touch(const char *path)
{
    int     fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || close(fd) != 0) {
        perror(path);
        exit(2);
    }
}

TEST(move_and_walk)
{
    char    dir[] = "/tmp/test_queue.XXXXXX";
    char    cwd[4096];
    struct seen s = {0};
    struct stat st;
    const char *id1 = "4bKj7Pq2RtzM3x", *id2 = "4bKj7Pq2RBzM3y";

    if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL || chdir(dir) != 0) {
        perror("setup");
        exit(2);
    }
    setup("deferred", "2");
    CHECK(mkdir("incoming", 0700) == 0 && mkdir("deferred", 0700) == 0);
    touch("incoming/4bKj7Pq2RtzM3x");
    touch("incoming/4bKj7Pq2RBzM3y");
    touch("incoming/.tmp.123");
    touch("incoming/not-an-id");
    CHECK_INTEQ(queue_move("incoming", "deferred", id1), 0);
    CHECK(stat("deferred/t/R/4bKj7Pq2RtzM3x", &st) == 0);
    CHECK_INTEQ(queue_move("incoming", "deferred", id2), 0);
    CHECK(stat("deferred/B/R/4bKj7Pq2RBzM3y", &st) == 0);
    /* A file that is not there: ENOENT, nothing created. */
    errno = 0;
    CHECK_INTEQ(queue_move("incoming", "deferred", "4bKj7Pq2RDzM3y"), -1);
    CHECK_INTEQ(errno, ENOENT);
    CHECK(stat("deferred/D", &st) != 0);
    /* A missing queue is not created either. */
    touch("incoming/4bKj7Pq2RtzM3w");
    CHECK_INTEQ(queue_move("incoming", "hold", "4bKj7Pq2RtzM3w"), -1);
    CHECK(stat("hold", &st) != 0);
    touch("deferred/t/R/junk");
    CHECK_INTEQ(queue_walk("deferred", remember, &s), 2);
    CHECK_INTEQ(s.count, 2);
    s.count = 0;
    CHECK_INTEQ(queue_walk("incoming", remember, &s), 1);
    CHECK_INTEQ(queue_walk("nonexistent", remember, &s), -1);
    CHECK(chdir(cwd) == 0);
    {
        char    cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
}

/* Spare files: put keeps at most QUEUE_SPARE_SLOTS, take hands each out once. */
TEST(spare_put_and_take)
{
    char    dir[] = "/tmp/test_queue_spare.XXXXXX";
    char    cwd[4096], name[64];
    struct stat st, st2;
    int     kept = 0, taken = 0;

    if (mkdtemp(dir) == NULL || getcwd(cwd, sizeof(cwd)) == NULL || chdir(dir) != 0) {
        perror("setup");
        exit(2);
    }
    CHECK(mkdir("active", 0700) == 0);
    /* No spare/ yet (an instance from before): put removes the file. */
    touch("active/a");
    CHECK_INTEQ(queue_spare_put("active/a"), 0);
    CHECK(stat("active/a", &st) != 0);
    CHECK_INTEQ(queue_spare_take("incoming-x"), -1);
    CHECK(mkdir(QUEUE_SPARE, 0700) == 0);
    /*
     * A put keeps the inode, and its bytes (the taker empties it, not the
     * putter); a take moves that same inode to the new name.
     */
    touch("active/b");
    CHECK(truncate("active/b", 5000) == 0);
    CHECK(stat("active/b", &st) == 0);
    CHECK_INTEQ(queue_spare_put("active/b"), 0);
    CHECK(stat("active/b", &st2) != 0);
    CHECK_INTEQ(queue_spare_take("taken"), 0);
    CHECK(stat("taken", &st2) == 0 && st2.st_ino == st.st_ino && st2.st_size == 5000);
    CHECK_INTEQ(queue_spare_take("taken2"), -1);         /* none left */
    /* Found empty, spare/ is not listed again for 100 ms. */
    touch("active/c");
    CHECK_INTEQ(queue_spare_put("active/c"), 0);
    CHECK_INTEQ(queue_spare_take("taken3"), -1);
    usleep(150 * 1000);
    CHECK_INTEQ(queue_spare_take("taken3"), 0);
    CHECK(unlink("taken") == 0 && unlink("taken3") == 0);
    /* Many puts: never more than QUEUE_SPARE_SLOTS kept, the rest removed. */
    for (int i = 0; i < QUEUE_SPARE_SLOTS + 50; i++) {
        snprintf(name, sizeof(name), "active/m%d", i);
        touch(name);
        CHECK_INTEQ(queue_spare_put(name), 0);
        CHECK(stat(name, &st) != 0);
    }
    for (int i = 0; i < QUEUE_SPARE_SLOTS; i++) {
        snprintf(name, sizeof(name), QUEUE_SPARE "/%d", i);
        kept += stat(name, &st) == 0;
    }
    CHECK(kept > QUEUE_SPARE_SLOTS / 2 && kept <= QUEUE_SPARE_SLOTS);
    /* Takes hand out distinct files, and refuse to replace an existing name. */
    touch("exists");
    CHECK_INTEQ(queue_spare_take("exists"), -1);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        taken += queue_spare_take(name) == 0 && stat(name, &st) == 0;
    }
    CHECK(taken > 20);
    CHECK(chdir(cwd) == 0);
    {
        char    cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
}
