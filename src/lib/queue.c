/*
 * queue.c - queue names, queue IDs and queue file paths; see queue.h.
 *
 * Queue ID layout: TTTTTTTTTTzI...
 *   T   the arrival time in microseconds since the epoch, 10 digits in
 *       base 51, most significant first (fixed width, so IDs of one queue
 *       sort by arrival time with strcmp: the alphabet is in ASCII order)
 *   z   separator (not in the alphabet)
 *   I   the inode number, 1 to 12 digits in base 51, no leading zero
 * The alphabet is the ten digits and the consonants without 'z', in ASCII
 * order. (time, inode) -> ID is injective, and a file system never gives two
 * files that exist at the same microsecond the same inode, so IDs are unique
 * over time.
 *
 * Hashing: for a queue in hash_queue_names, level 1 of the subdirectory is
 * the last (fastest changing) time digit, level 2 the one before it, and so
 * on, for hash_queue_depth levels (at most QUEUE_HASH_MAX).
 *
 * Trust: queue_id_ok() is the gate for IDs from outside; queue_path() and
 * friends panic on an ID that did not pass it (a bug in the caller).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "queue.h"

#define ID_ALPHABET     "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"
#define ID_BASE         51
#define ID_TIME_DIGITS  10
#define ID_SEPARATOR    'z'
#define ID_INODE_MAX    12      /* 51^12 > 2^64 */
#define QUEUE_HASH_MAX  4       /* deepest supported hash_queue_depth */
#define QUEUE_DIR_MODE  0700

static const char *const queue_names[] = {
    QUEUE_MAILDROP, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
    QUEUE_CORRUPT, QUEUE_BOUNCE, QUEUE_DEFER, QUEUE_TRACE, QUEUE_SAVED,
};
#define NQUEUES (sizeof(queue_names) / sizeof(queue_names[0]))

static bool queue_ready;
static bool queue_hashed[NQUEUES];
static int queue_depth;

/* Value of one ID character, or -1. */
static int
digit_value(int c)
{
    const char *p;

    if (c == 0 || (p = strchr(ID_ALPHABET, c)) == NULL)
        return -1;
    return (int) (p - ID_ALPHABET);
}

static int
queue_index(const char *name)
{
    for (size_t i = 0; i < NQUEUES; i++)
        if (strcmp(name, queue_names[i]) == 0)
            return (int) i;
    return -1;
}

/*
 * queue_init - remember which queues are hashed and how deep. Unknown names
 * in hash_queue_names are warned about and ignored.
 */
void
queue_init(config_t *cfg)
{
    char   *list = mem_strdup(config_str(cfg, "hash_queue_names"));
    long    depth = config_int(cfg, "hash_queue_depth");
    char   *save = NULL;

    memset(queue_hashed, 0, sizeof(queue_hashed));
    for (char *tok = strtok_r(list, ", \t\r\n", &save); tok; tok = strtok_r(NULL, ", \t\r\n", &save)) {
        int     i = queue_index(tok);

        if (i < 0)
            log_warn("hash_queue_names: ignoring unknown queue name \"%s\"", tok);
        else
            queue_hashed[i] = true;
    }
    mem_free(list);
    if (depth > QUEUE_HASH_MAX) {
        log_warn("hash_queue_depth: %ld is too deep; using %d", depth, QUEUE_HASH_MAX);
        depth = QUEUE_HASH_MAX;
    }
    queue_depth = depth < 1 ? 1 : (int) depth;
    queue_ready = true;
}

bool
queue_name_ok(const char *name)
{
    return name != NULL && queue_index(name) >= 0;
}

/*
 * queue_id_ok - strict syntax check: exactly ID_TIME_DIGITS alphabet
 * characters, the separator, then a canonical inode number that fits in
 * 64 bits. Anything else (empty, "..", "/", too long) is refused.
 */
bool
queue_id_ok(const char *id)
{
    size_t  len, ilen;
    uint64_t ino = 0;

    if (id == NULL)
        return false;
    len = strnlen(id, QUEUE_ID_MAX + 1);
    if (len > QUEUE_ID_MAX || len < ID_TIME_DIGITS + 2 || id[ID_TIME_DIGITS] != ID_SEPARATOR)
        return false;
    for (size_t i = 0; i < ID_TIME_DIGITS; i++)
        if (digit_value((unsigned char) id[i]) < 0)
            return false;
    ilen = len - ID_TIME_DIGITS - 1;
    if (ilen > ID_INODE_MAX || (ilen > 1 && id[ID_TIME_DIGITS + 1] == '0'))
        return false;
    for (size_t i = ID_TIME_DIGITS + 1; i < len; i++) {
        int     d = digit_value((unsigned char) id[i]);

        if (d < 0 || ino > (UINT64_MAX - (uint64_t) d) / ID_BASE)
            return false;
        ino = ino * ID_BASE + (uint64_t) d;
    }
    return true;
}

void
queue_id_make(str_t *out, const struct timeval *tv, ino_t ino)
{
    char    tbuf[ID_TIME_DIGITS], ibuf[ID_INODE_MAX];
    uint64_t t, v = (uint64_t) ino;
    size_t  n = 0;

    if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        log_panic("queue_id_make: bad time %lld.%ld", (long long) tv->tv_sec, (long) tv->tv_usec);
    t = (uint64_t) tv->tv_sec * 1000000u + (uint64_t) tv->tv_usec;
    for (int i = ID_TIME_DIGITS - 1; i >= 0; i--) {
        tbuf[i] = ID_ALPHABET[t % ID_BASE];
        t /= ID_BASE;
    }
    if (t != 0)
        log_panic("queue_id_make: time %lld out of range", (long long) tv->tv_sec);
    do {
        ibuf[n++] = ID_ALPHABET[v % ID_BASE];
        v /= ID_BASE;
    } while (v && n < sizeof(ibuf));
    str_reset(out);
    str_append(out, tbuf, sizeof(tbuf));
    str_putc(out, ID_SEPARATOR);
    while (n > 0)
        str_putc(out, ibuf[--n]);
}

/* Depth of hashing for a queue: 0 when it is not hashed. */
static int
depth_of(const char *queue_name)
{
    int     i = queue_index(queue_name);

    if (!queue_ready)
        log_panic("queue: queue_init() was not called");
    return (i >= 0 && queue_hashed[i]) ? queue_depth : 0;
}

void
queue_dir_path(str_t *out, const char *queue_name, const char *id)
{
    int     depth;

    if (!queue_id_ok(id))
        log_panic("queue_dir_path: bad queue ID \"%.40s\"", id ? id : "(null)");
    depth = depth_of(queue_name);
    str_set_cstr(out, queue_name);
    for (int level = 0; level < depth; level++) {
        str_putc(out, '/');
        str_putc(out, id[ID_TIME_DIGITS - 1 - level]);
    }
}

void
queue_path(str_t *out, const char *queue_name, const char *id)
{
    queue_dir_path(out, queue_name, id);
    str_putc(out, '/');
    str_append_cstr(out, id);
}

/* Create the hashed subdirectories of dir ("queue/a/b"), level by level. */
static int
make_hash_dirs(const char *dir)
{
    char   *copy = mem_strdup(dir);
    int     rc = 0;

    for (char *slash = strchr(copy, '/'); rc == 0; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = 0;
        /* The queue itself must exist: only create what is below it. */
        if (strchr(copy, '/') && mkdir(copy, QUEUE_DIR_MODE) != 0 && errno != EEXIST)
            rc = -1;
        if (slash == NULL)
            break;
        *slash = '/';
    }
    mem_free(copy);
    return rc;
}

int
queue_move(const char *from_queue, const char *to_queue, const char *id)
{
    str_t  *from = str_new(64), *to = str_new(64), *dir = str_new(64);
    struct stat st;
    int     rc;

    queue_path(from, from_queue, id);
    queue_path(to, to_queue, id);
    if ((rc = rename(str_cstr(from), str_cstr(to))) != 0 && errno == ENOENT) {
        queue_dir_path(dir, to_queue, id);
        /* Only a missing hash subdirectory (of a file that exists) is ours to fix. */
        if (lstat(str_cstr(from), &st) == 0 && stat(str_cstr(dir), &st) != 0 && errno == ENOENT
            && strchr(str_cstr(dir), '/')) {
            if (make_hash_dirs(str_cstr(dir)) == 0)
                rc = rename(str_cstr(from), str_cstr(to));
        } else {
            errno = ENOENT;
        }
    }
    str_free(from);
    str_free(to);
    str_free(dir);
    return rc;
}

/* True for a one-character name that can be a hash subdirectory. */
static bool
hash_name(const char *name)
{
    return name[0] && name[1] == 0 && digit_value((unsigned char) name[0]) >= 0;
}

/*
 * Walk one directory: report IDs, descend into hash subdirectories up to
 * QUEUE_HASH_MAX levels whatever the configuration says now (so files
 * written under an older hash_queue_depth are still found).
 */
static long
walk_dir(const char *queue_name, const char *path, int level, queue_walk_fn fn, void *ctx)
{
    DIR    *dp;
    struct dirent *de;
    long    count = 0;
    str_t  *sub = str_new(64);

    if ((dp = opendir(path)) == NULL) {
        str_free(sub);
        return -1;
    }
    while ((errno = 0, de = readdir(dp)) != NULL) {
        if (hash_name(de->d_name) && level < QUEUE_HASH_MAX) {
            bool    is_dir = de->d_type == DT_DIR;

            if (de->d_type == DT_UNKNOWN) {
                struct stat st;

                str_printf(sub, "%s/%s", path, de->d_name);
                is_dir = lstat(str_cstr(sub), &st) == 0 && S_ISDIR(st.st_mode);
            }
            if (is_dir) {
                long    n;

                str_printf(sub, "%s/%s", path, de->d_name);
                if ((n = walk_dir(queue_name, str_cstr(sub), level + 1, fn, ctx)) < 0)
                    log_warn_errno("queue: cannot read directory %s", str_cstr(sub));
                else
                    count += n;
                continue;
            }
        }
        if (!queue_id_ok(de->d_name))
            continue;
        fn(queue_name, de->d_name, ctx);
        count++;
    }
    if (errno != 0)
        log_warn_errno("queue: error reading directory %s", path);
    if (closedir(dp) != 0)
        log_warn_errno("queue: closedir %s", path);
    str_free(sub);
    return count;
}

long
queue_walk(const char *queue_name, queue_walk_fn fn, void *ctx)
{
    return walk_dir(queue_name, queue_name, 0, fn, ctx);
}


/* Slots are tried from a per-process moving start, so takers and putters spread out. */
#define SPARE_TRIES 8

static unsigned
spare_start(void)
{
    static unsigned next;

    if (next == 0)
        next = (unsigned) getpid() * 7919u;
    return next++ % QUEUE_SPARE_SLOTS;
}

static void
spare_path(char *buf, size_t size, unsigned slot)
{
    snprintf(buf, size, QUEUE_SPARE "/%u", slot % QUEUE_SPARE_SLOTS);
}

/* After finding no free slot, remove finished files for this long without trying. */
#define SPARE_FULL_MS   100
/* After finding spare/ empty, do not list it again for this long. */
#define SPARE_EMPTY_MS  100

int
queue_spare_put(const char *path)
{
    static int64_t full_until;
    char    slot[sizeof(QUEUE_SPARE) + 16];
    unsigned start = spare_start();
    unsigned tries = SPARE_TRIES;

    if (full_until != 0 && clock_mono_ms() < full_until)
        tries = 0;                  /* spare/ was full a moment ago */
    else
        full_until = 0;
    for (unsigned i = 0; i < tries; i++) {
        spare_path(slot, sizeof(slot), start + i * (QUEUE_SPARE_SLOTS / SPARE_TRIES));
        /* Emptied by the cleanup process that takes it (queue.h). */
        if (renameat2(AT_FDCWD, path, AT_FDCWD, slot, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EEXIST)
            break;              /* no spare/ (an old instance), no RENAME_NOREPLACE, ... */
        if (i == SPARE_TRIES - 1)
            full_until = clock_mono_ms() + SPARE_FULL_MS;
    }
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    return -1;
}

/*
 * Take: list spare/ (at most QUEUE_SPARE_SLOTS names; the directory stays
 * open between calls) and try the names from a per-process moving start,
 * so that takers racing for the same files mostly miss each other.
 */

int
queue_spare_take(const char *path)
{
    static DIR *dp;
    static int64_t empty_until;
    unsigned slots[QUEUE_SPARE_SLOTS];
    size_t  n = 0;
    struct dirent *de;
    char    slot[sizeof(QUEUE_SPARE) + 16];

    /* Mail that is received, not delivered, leaves spare/ empty: no listing per message. */
    if (empty_until && clock_mono_ms() < empty_until)
        return -1;
    empty_until = 0;
    if (dp == NULL && (dp = opendir(QUEUE_SPARE)) == NULL)
        return -1;
    rewinddir(dp);
    while (n < QUEUE_SPARE_SLOTS && (de = readdir(dp)) != NULL) {
        char   *end;
        unsigned long v = strtoul(de->d_name, &end, 10);

        if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && *end == 0 && v < QUEUE_SPARE_SLOTS)
            slots[n++] = (unsigned) v;
    }
    if (n == 0)
        empty_until = clock_mono_ms() + SPARE_EMPTY_MS;
    for (size_t i = 0, start = n ? spare_start() % n : 0; i < n; i++) {
        spare_path(slot, sizeof(slot), slots[(start + i) % n]);
        if (renameat2(AT_FDCWD, slot, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != ENOENT)
            break;
    }
    return -1;
}
