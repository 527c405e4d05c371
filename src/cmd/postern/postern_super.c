/*
 * postern_super.c - "postern super": queue maintenance, like postsuper.
 *
 *     postern [-c DIR] super [-s] [-d ID|ALL|-]... [-h ID|ALL|-]...
 *                            [-H ID|ALL|-]... [-r ID|ALL|-]... [QUEUE...]
 *
 *   -d  delete the message and its bounce/defer/trace logs
 *       (default queues: hold incoming active deferred; maildrop and
 *       corrupt only when named)
 *   -h  put on hold: move to hold/ (default: incoming active deferred)
 *   -H  release from hold: move hold/ -> deferred/, due now
 *   -r  requeue: move to incoming/, due now, so that qmgr reads it again
 *       and resolves every recipient afresh (default: hold incoming
 *       active deferred)
 *   -s  repair: check every file of incoming active deferred hold; move
 *       what cannot be parsed to corrupt/; rename a file whose name does
 *       not match its inode (a restored backup) and move a file that is in
 *       the wrong hash subdirectory; remove cleanup temporary files
 *       (incoming/.tmp.*) older than a day; remove bounce/defer/trace logs
 *       of messages that no longer exist.
 * ID may be "ALL" (every message of the queues) or "-" (IDs from standard
 * input, one per line; "-" may be given once). QUEUE names restrict the
 * queues searched. Order of work: -s, then -d, -h, -H, -r.
 *
 * Every change is a rename(2) or unlink(2); nothing is copied. A message in
 * active/ may be deleted, held or requeued while qmgr delivers it: qmgr
 * must treat a file that vanished from active/ as gone (not an error).
 *
 * Logging: to the instance's maillog as postern/postsuper: "ID: removed",
 * "ID: placed on hold", "ID: released from hold", "ID: requeued"; those
 * lines are echoed to stderr only when it is a terminal. Summary lines
 * ("postern super: Deleted: N messages") and problems always go to stderr.
 *
 * SECURITY: runs as root or as mail_owner only. As root it drops to
 * mail_owner (after opening the log), so that nothing it creates in the
 * queue (hash subdirectories) is owned by root. Queue IDs from the command
 * line or stdin are checked with queue_id_ok() before they name a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "qfile.h"
#include "queue.h"
#include "server.h"
#include "str.h"

#define SUPER_TEMP_PREFIX   ".tmp."         /* cleanup's temporary files */
#define SUPER_TEMP_AGE      (24 * 3600)     /* remove them when older */
#define SUPER_HASH_MAX      4               /* deepest hash level walked */
#define SUPER_ID_LINE_MAX   256             /* longest stdin line */
#define SUPER_ID_TRIES      1000            /* attempts to find a free ID */

enum super_op {
    OP_DELETE,
    OP_HOLD,
    OP_RELEASE,
    OP_REQUEUE,
    OP_COUNT,
};

struct op_spec {
    char    flag;
    const char *done_text;          /* "ID: removed" */
    const char *summary;            /* "Deleted" */
    const char *const *defaults;    /* default queues, NULL-terminated */
    const char *const *allowed;     /* queues it may touch when named */
};

static const char *const q_d_def[] = {QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL};
static const char *const q_d_all[] = {QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
                                      QUEUE_MAILDROP, QUEUE_CORRUPT, NULL};
static const char *const q_h_def[] = {QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL};
static const char *const q_hold[] = {QUEUE_HOLD, NULL};
static const char *const q_r_def[] = {QUEUE_HOLD, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, NULL};
/* Queues -s checks, and where a message may be (for orphaned logs). */
static const char *const q_repair[] = {QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, NULL};
static const char *const q_exists[] = {QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
                                       QUEUE_CORRUPT, NULL};
static const char *const q_logs[] = {QUEUE_BOUNCE, QUEUE_DEFER, QUEUE_TRACE, NULL};

static const struct op_spec ops[OP_COUNT] = {
    [OP_DELETE] = {'d', "removed", "Deleted", q_d_def, q_d_all},
    [OP_HOLD] = {'h', "placed on hold", "Placed on hold", q_h_def, q_h_def},
    [OP_RELEASE] = {'H', "released from hold", "Released from hold", q_hold, q_hold},
    [OP_REQUEUE] = {'r', "requeued", "Requeued", q_r_def, q_r_def},
};

struct op_args {
    char  **ids;
    size_t  count;
    size_t  cap;
    bool    all;
    bool    stdin_ids;
    long    done;               /* messages acted on */
    bool    requested;
};

struct super {
    struct op_args args[OP_COUNT];
    char  **queues;             /* named on the command line, or NULL */
    size_t  queue_count;
    bool    repair;
    bool    tty;                /* echo per-message lines to stderr */
    int     errors;
    /* -s counters */
    long    checked, corrupt, renamed, rehashed, stale, orphans;
};

/* A problem: logged and always shown on stderr. */
static void super_warn(struct super *sp, const char *fmt, ...) LOG_PRINTF(2, 3);

static void
super_warn(struct super *sp, const char *fmt, ...)
{
    str_t  *buf = str_new(128);
    va_list ap;

    va_start(ap, fmt);
    str_append_vprintf(buf, fmt, ap);
    va_end(ap);
    log_warn("%s", str_cstr(buf));
    fprintf(stderr, "postern super: warning: %s\n", str_cstr(buf));
    sp->errors++;
    str_free(buf);
}

/* A per-message result: logged; on stderr only for a terminal. */
static void
super_done(struct super *sp, const char *id, const char *text)
{
    log_info("%s: %s", id, text);
    if (sp->tty)
        fprintf(stderr, "postern super: %s: %s\n", id, text);
}

/* A summary line: logged and shown. */
static void
super_summary(const char *what, long n, const char *unit)
{
    log_info("%s: %ld %s%s", what, n, unit, n == 1 ? "" : "s");
    fprintf(stderr, "postern super: %s: %ld %s%s\n", what, n, unit, n == 1 ? "" : "s");
}

static bool
in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* Remove a message's bounce/defer/trace logs (they may not exist). */
static void
remove_logs(struct super *sp, const char *id)
{
    str_t  *path = str_new(64);

    for (const char *const *l = q_logs; *l; l++) {
        queue_path(path, *l, id);
        if (unlink(str_cstr(path)) != 0 && errno != ENOENT)
            super_warn(sp, "cannot remove %s: %s", str_cstr(path), strerror(errno));
    }
    str_free(path);
}

/* Set the modification time of queue/id to now: "due now" for qmgr. */
static void
touch_now(struct super *sp, const char *queue, const char *id)
{
    str_t  *path = str_new(64);
    struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};

    queue_path(path, queue, id);
    if (utimensat(AT_FDCWD, str_cstr(path), ts, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT)
        super_warn(sp, "cannot set the time of %s: %s", str_cstr(path), strerror(errno));
    str_free(path);
}

/*
 * Apply op to the message id in queue. Returns 1 when done, 0 when the
 * message is not in that queue, -1 on another error (reported).
 */
static int
apply(struct super *sp, enum super_op op, const char *queue, const char *id)
{
    str_t  *path = str_new(64);
    const char *to = NULL;
    int     rc;

    switch (op) {
    case OP_DELETE:
        queue_path(path, queue, id);
        rc = unlink(str_cstr(path));
        break;
    case OP_HOLD:
        to = QUEUE_HOLD;
        rc = queue_move(queue, to, id);
        break;
    case OP_RELEASE:
        to = QUEUE_DEFERRED;
        rc = queue_move(queue, to, id);
        break;
    default:
        to = QUEUE_INCOMING;
        rc = queue_move(queue, to, id);
        break;
    }
    if (rc != 0) {
        int     err = errno;

        str_free(path);
        if (err == ENOENT)
            return 0;
        super_warn(sp, "%s/%s: %s", queue, id, strerror(err));
        return -1;
    }
    if (op == OP_DELETE)
        remove_logs(sp, id);
    else if (op == OP_RELEASE || op == OP_REQUEUE)
        touch_now(sp, to, id);
    super_done(sp, id, ops[op].done_text);
    sp->args[op].done++;
    str_free(path);
    return 1;
}

/* The queues op works on: the named ones it may touch, else its defaults. */
static void
op_queues(const struct super *sp, enum super_op op, const char **out, size_t max)
{
    size_t  n = 0;

    if (sp->queue_count == 0) {
        for (const char *const *q = ops[op].defaults; *q && n + 1 < max; q++)
            out[n++] = *q;
    } else {
        for (size_t i = 0; i < sp->queue_count && n + 1 < max; i++)
            if (in_list(ops[op].allowed, sp->queues[i]))
                out[n++] = sp->queues[i];
    }
    out[n] = NULL;
}

static void
apply_id(struct super *sp, enum super_op op, const char *const *queues, const char *id)
{
    if (!queue_id_ok(id)) {
        str_t  *shown = str_new(0);

        for (const char *p = id; *p && str_len(shown) < 40; p++)
            str_putc(shown, (unsigned char) *p < 0x20 || *p == 0x7f ? '?' : *p);
        super_warn(sp, "invalid queue ID: \"%s\"", str_cstr(shown));
        str_free(shown);
        return;
    }
    for (const char *const *q = queues; *q; q++)
        if (apply(sp, op, *q, id) != 0)
            return;
}

struct id_list {
    char  **ids;
    size_t  count;
    size_t  cap;
};

static void
collect_id(const char *queue_name, const char *id, void *ctx)
{
    struct id_list *l = ctx;

    (void) queue_name;
    l->ids = mem_grow_array(l->ids, &l->cap, l->count + 1, sizeof(*l->ids));
    l->ids[l->count++] = mem_strdup(id);
}

static void
free_ids(struct id_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        mem_free(l->ids[i]);
    mem_free(l->ids);
    memset(l, 0, sizeof(*l));
}

static void
apply_all(struct super *sp, enum super_op op, const char *const *queues)
{
    for (const char *const *q = queues; *q; q++) {
        struct id_list ids = {0};

        if (queue_walk(*q, collect_id, &ids) < 0 && errno != ENOENT)
            super_warn(sp, "cannot read queue %s: %s", *q, strerror(errno));
        for (size_t i = 0; i < ids.count; i++)
            (void) apply(sp, op, *q, ids.ids[i]);
        free_ids(&ids);
    }
}

static void
run_op(struct super *sp, enum super_op op)
{
    struct op_args *a = &sp->args[op];
    const char *queues[16];

    if (!a->requested)
        return;
    op_queues(sp, op, queues, sizeof(queues) / sizeof(queues[0]));
    if (a->all)
        apply_all(sp, op, queues);
    for (size_t i = 0; i < a->count; i++)
        apply_id(sp, op, queues, a->ids[i]);
    super_summary(ops[op].summary, a->done, "message");
}

/* IDs from stdin, one per line (blank lines ignored). */
static bool
read_stdin_ids(struct super *sp, struct op_args *a)
{
    char    line[SUPER_ID_LINE_MAX];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t  len = strlen(line);
        char   *id;

        if (len > 0 && line[len - 1] != '\n' && !feof(stdin)) {
            super_warn(sp, "standard input: line too long");
            return false;
        }
        id = cstr_trim(line);
        if (*id == 0)
            continue;
        a->ids = mem_grow_array(a->ids, &a->cap, a->count + 1, sizeof(*a->ids));
        a->ids[a->count++] = mem_strdup(id);
    }
    if (ferror(stdin)) {
        super_warn(sp, "standard input: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Repair (-s). */

/* True when the inode part of id names inode ino. */
static bool
id_matches_inode(const char *id, ino_t ino)
{
    str_t  *want = str_new(QUEUE_ID_MAX);
    struct timeval tv = {0, 0};
    const char *z1, *z2;
    bool    ok;

    queue_id_make(want, &tv, ino);
    z1 = strchr(id, 'z');
    z2 = strchr(str_cstr(want), 'z');
    ok = z1 && z2 && strcmp(z1, z2) == 0;
    str_free(want);
    return ok;
}

/* Create the directories of a queue path below its queue ("deferred/a"). */
static int
make_parent_dirs(const char *path)
{
    char   *copy = mem_strdup(path);
    int     rc = 0;
    char   *first = strchr(copy, '/');

    if (first) {
        for (char *s = strchr(first + 1, '/'); s && rc == 0; s = strchr(s + 1, '/')) {
            *s = 0;
            if (mkdir(copy, 0700) != 0 && errno != EEXIST)
                rc = -1;
            *s = '/';
        }
    }
    mem_free(copy);
    return rc;
}

/* rename(2), creating missing hash subdirectories of the target. */
static int
rename_into(const char *from, const char *to)
{
    if (rename(from, to) == 0)
        return 0;
    if (errno != ENOENT || make_parent_dirs(to) != 0)
        return -1;
    return rename(from, to);
}

/*
 * A free ID in queue for a file of inode ino that arrived at *tv: the
 * time is moved on by a microsecond while the name is taken.
 */
static bool
free_id(const char *queue, struct timeval tv, ino_t ino, str_t *id)
{
    str_t  *path = str_new(64);
    struct stat sb;

    for (int i = 0; i < SUPER_ID_TRIES; i++) {
        queue_id_make(id, &tv, ino);
        queue_path(path, queue, str_cstr(id));
        if (lstat(str_cstr(path), &sb) != 0 && errno == ENOENT) {
            str_free(path);
            return true;
        }
        if (++tv.tv_usec >= 1000000) {
            tv.tv_usec = 0;
            tv.tv_sec++;
        }
    }
    str_free(path);
    return false;
}

static void
move_logs(struct super *sp, const char *old_id, const char *new_id)
{
    str_t  *from = str_new(64), *to = str_new(64);

    for (const char *const *l = q_logs; *l; l++) {
        queue_path(from, *l, old_id);
        queue_path(to, *l, new_id);
        if (rename_into(str_cstr(from), str_cstr(to)) != 0 && errno != ENOENT)
            super_warn(sp, "cannot rename %s to %s: %s", str_cstr(from), str_cstr(to),
                       strerror(errno));
    }
    str_free(from);
    str_free(to);
}

/* Move a damaged file (path, named name) from queue to corrupt/. */
static void
to_corrupt(struct super *sp, const char *queue, const char *path, const char *name,
           const struct stat *sb, const char *why)
{
    str_t  *id = str_new(QUEUE_ID_MAX), *dest = str_new(64);
    struct timeval tv = {sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec / 1000};

    if (queue_id_ok(name))
        str_set_cstr(id, name);
    else if (!free_id(QUEUE_CORRUPT, tv, sb->st_ino, id)) {
        super_warn(sp, "%s: no free name in %s/", path, QUEUE_CORRUPT);
        goto out;
    }
    queue_path(dest, QUEUE_CORRUPT, str_cstr(id));
    if (access(str_cstr(dest), F_OK) == 0 && !free_id(QUEUE_CORRUPT, tv, sb->st_ino, id)) {
        super_warn(sp, "%s: no free name in %s/", path, QUEUE_CORRUPT);
        goto out;
    }
    queue_path(dest, QUEUE_CORRUPT, str_cstr(id));
    if (rename_into(path, str_cstr(dest)) != 0) {
        if (errno != ENOENT)
            super_warn(sp, "cannot move %s to %s: %s", path, str_cstr(dest), strerror(errno));
        goto out;
    }
    /* Repaired, so not counted as an error of this command. */
    log_warn("%s/%s: damaged queue file moved to %s: %s", queue, name, str_cstr(dest), why);
    fprintf(stderr, "postern super: warning: %s/%s: damaged queue file moved to %s: %s\n",
            queue, name, str_cstr(dest), why);
    sp->corrupt++;
out:
    str_free(id);
    str_free(dest);
}

/* Check one file of a queue; path is where it is now. */
static void
repair_file(struct super *sp, const char *queue, const char *path, const char *name)
{
    struct stat sb;
    struct qfile qf;
    str_t  *err = str_new(0), *want_id = str_new(QUEUE_ID_MAX), *want = str_new(64);
    int     fd, rc;

    memset(&qf, 0, sizeof(qf));
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT)
            super_warn(sp, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        to_corrupt(sp, queue, path, name, &sb, "not a regular file");
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno != ENOENT)
            super_warn(sp, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    rc = qfile_read(fd, path, QFILE_FLAG_QUEUE, &qf, err);
    (void) close(fd);
    sp->checked++;
    if (rc == QFILE_BAD) {
        to_corrupt(sp, queue, path, name, &sb, str_cstr(err));
        goto out;
    }
    if (rc != QFILE_DONE) {
        super_warn(sp, "%s", str_cstr(err));
        goto out;
    }
    /* The name: a queue ID whose inode part is this file's inode. */
    if (queue_id_ok(name) && id_matches_inode(name, sb.st_ino)) {
        str_set_cstr(want_id, name);
    } else {
        struct timeval tv = {(time_t) qf.arrival_sec, qf.arrival_usec};

        if (!free_id(queue, tv, sb.st_ino, want_id)) {
            super_warn(sp, "%s: no free queue ID", path);
            goto out;
        }
    }
    queue_path(want, queue, str_cstr(want_id));
    if (strcmp(want_id->data, name) == 0 && strcmp(str_cstr(want), path) == 0)
        goto out;
    if (strcmp(str_cstr(want), path) != 0 && access(str_cstr(want), F_OK) == 0) {
        super_warn(sp, "%s: cannot move to %s: the name is taken", path, str_cstr(want));
        goto out;
    }
    if (rename_into(path, str_cstr(want)) != 0) {
        super_warn(sp, "cannot rename %s to %s: %s", path, str_cstr(want), strerror(errno));
        goto out;
    }
    if (strcmp(str_cstr(want_id), name) != 0) {
        if (queue_id_ok(name))
            move_logs(sp, name, str_cstr(want_id));
        log_info("%s/%s: renamed to %s (the name did not match the file)", queue, name,
                 str_cstr(want_id));
        fprintf(stderr, "postern super: %s/%s: renamed to %s\n", queue, name, str_cstr(want_id));
        sp->renamed++;
    } else {
        log_info("%s: moved to its hash directory %s", path, str_cstr(want));
        sp->rehashed++;
    }
out:
    qfile_free(&qf);
    str_free(err);
    str_free(want_id);
    str_free(want);
}

/* True for a one-character name that can be a hash subdirectory. */
static bool
hash_name(const char *name)
{
    return name[0] && name[1] == 0 && name[0] != 'z' && strchr("0123456789BCDFGHJKLMNPQRSTVWXYZ"
                                                             "bcdfghjklmnpqrstvwxy", name[0]);
}

struct path_list {
    char  **paths;
    size_t  count;
    size_t  cap;
};

/* Collect every file below dir (hash subdirectories descended). */
static void
collect_files(struct super *sp, const char *dir, int level, struct path_list *out)
{
    DIR    *dp = opendir(dir);
    struct dirent *de;
    str_t  *sub = str_new(64);

    if (dp == NULL) {
        if (errno != ENOENT)
            super_warn(sp, "cannot read directory %s: %s", dir, strerror(errno));
        str_free(sub);
        return;
    }
    while ((errno = 0, de = readdir(dp)) != NULL) {
        struct stat sb;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        str_printf(sub, "%s/%s", dir, de->d_name);
        if (lstat(str_cstr(sub), &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (hash_name(de->d_name) && level < SUPER_HASH_MAX)
                collect_files(sp, str_cstr(sub), level + 1, out);
            continue;
        }
        out->paths = mem_grow_array(out->paths, &out->cap, out->count + 1, sizeof(*out->paths));
        out->paths[out->count++] = mem_strdup(str_cstr(sub));
    }
    if (errno != 0)
        super_warn(sp, "error reading directory %s: %s", dir, strerror(errno));
    (void) closedir(dp);
    str_free(sub);
}

static void
repair_queue(struct super *sp, const char *queue)
{
    struct path_list files = {0};
    time_t  now = clock_now();

    collect_files(sp, queue, 0, &files);
    for (size_t i = 0; i < files.count; i++) {
        const char *path = files.paths[i];
        const char *name = strrchr(path, '/') + 1;
        struct stat sb;

        if (strncmp(name, SUPER_TEMP_PREFIX, sizeof(SUPER_TEMP_PREFIX) - 1) == 0) {
            /* cleanup's unfinished files: never acknowledged, see cleanup_out.c. */
            if (strcmp(queue, QUEUE_INCOMING) == 0 && lstat(path, &sb) == 0
                && S_ISREG(sb.st_mode) && now - sb.st_mtime > SUPER_TEMP_AGE) {
                if (unlink(path) == 0) {
                    log_info("removed stale temporary file %s", path);
                    sp->stale++;
                } else if (errno != ENOENT) {
                    super_warn(sp, "cannot remove %s: %s", path, strerror(errno));
                }
            }
            continue;
        }
        /* cleanup's bookkeeping (incoming/.sweep): a queue ID never starts with a dot. */
        if (name[0] == '.' && strcmp(queue, QUEUE_INCOMING) == 0)
            continue;
        repair_file(sp, queue, path, name);
    }
    for (size_t i = 0; i < files.count; i++)
        mem_free(files.paths[i]);
    mem_free(files.paths);
}

/* True when a message id is in one of the queues (checked in both orders). */
static bool
message_exists(const char *id)
{
    str_t  *path = str_new(64);
    struct stat sb;
    size_t  n = 0;
    bool    found = false;

    while (q_exists[n])
        n++;
    /* Both directions: a message moving between queues is seen by one pass. */
    for (size_t pass = 0; pass < 2 && !found; pass++)
        for (size_t i = 0; i < n && !found; i++) {
            queue_path(path, q_exists[pass == 0 ? i : n - 1 - i], id);
            found = lstat(str_cstr(path), &sb) == 0 || errno != ENOENT;
        }
    str_free(path);
    return found;
}

static void
repair_logs(struct super *sp)
{
    str_t  *path = str_new(64);

    for (const char *const *l = q_logs; *l; l++) {
        struct id_list ids = {0};

        if (queue_walk(*l, collect_id, &ids) < 0 && errno != ENOENT)
            super_warn(sp, "cannot read %s: %s", *l, strerror(errno));
        for (size_t i = 0; i < ids.count; i++) {
            if (message_exists(ids.ids[i]))
                continue;
            queue_path(path, *l, ids.ids[i]);
            if (unlink(str_cstr(path)) == 0) {
                log_info("%s: removed %s log of a message that no longer exists", ids.ids[i], *l);
                sp->orphans++;
            } else if (errno != ENOENT) {
                super_warn(sp, "cannot remove %s: %s", str_cstr(path), strerror(errno));
            }
        }
        free_ids(&ids);
    }
    str_free(path);
}

static void
repair(struct super *sp)
{
    for (const char *const *q = q_repair; *q; q++)
        repair_queue(sp, *q);
    repair_logs(sp);
    super_summary("Checked", sp->checked, "message");
    if (sp->corrupt)
        super_summary("Moved to corrupt", sp->corrupt, "file");
    if (sp->renamed)
        super_summary("Renamed", sp->renamed, "message");
    if (sp->rehashed)
        super_summary("Moved to their hash directory", sp->rehashed, "message");
    if (sp->stale)
        super_summary("Removed stale temporary", sp->stale, "file");
    if (sp->orphans)
        super_summary("Removed orphaned", sp->orphans, "log");
}

/* Only root (which then becomes mail_owner) or mail_owner itself. */
static bool
become_mail_owner(config_t *cfg)
{
    const char *owner = config_str(cfg, "mail_owner");
    struct passwd *pw;

    if (geteuid() == 0) {
        server_drop_privileges(owner, NULL);
        return true;
    }
    errno = 0;
    if ((pw = getpwnam(owner)) == NULL) {
        log_error("super: mail_owner account \"%s\" does not exist", owner);
        return false;
    }
    if (pw->pw_uid != geteuid()) {
        log_error("super: permission denied: run as root or as mail_owner (%s)", owner);
        return false;
    }
    return true;
}

static int
super_usage(void)
{
    fprintf(stderr, "usage: postern super [-s] [-d queue_id|ALL|-] [-h queue_id|ALL|-] "
            "[-H queue_id|ALL|-] [-r queue_id|ALL|-] [queue...]\n");
    return POSTERN_EXIT_USAGE;
}

static void
free_super(struct super *sp)
{
    for (int op = 0; op < OP_COUNT; op++) {
        for (size_t i = 0; i < sp->args[op].count; i++)
            mem_free(sp->args[op].ids[i]);
        mem_free(sp->args[op].ids);
    }
}

int
postern_super(const char *dir, int argc, char **argv)
{
    struct super sp;
    config_t *cfg;
    const char *qdir;
    bool    any = false, stdin_used = false;
    int     ch, rc = POSTERN_EXIT_OK;

    memset(&sp, 0, sizeof(sp));
    optind = 1;
    while ((ch = getopt(argc, argv, "sd:h:H:r:")) != -1) {
        enum super_op op;
        struct op_args *a;

        switch (ch) {
        case 's':
            sp.repair = any = true;
            continue;
        case 'd':
            op = OP_DELETE;
            break;
        case 'h':
            op = OP_HOLD;
            break;
        case 'H':
            op = OP_RELEASE;
            break;
        case 'r':
            op = OP_REQUEUE;
            break;
        default:
            free_super(&sp);
            return super_usage();
        }
        a = &sp.args[op];
        a->requested = any = true;
        if (strcmp(optarg, "ALL") == 0) {
            a->all = true;
        } else if (strcmp(optarg, "-") == 0) {
            if (stdin_used) {
                log_error("super: \"-\" (IDs from standard input) may be given only once");
                free_super(&sp);
                return POSTERN_EXIT_USAGE;
            }
            a->stdin_ids = stdin_used = true;
        } else {
            a->ids = mem_grow_array(a->ids, &a->cap, a->count + 1, sizeof(*a->ids));
            a->ids[a->count++] = mem_strdup(optarg);
        }
    }
    if (!any) {
        free_super(&sp);
        return super_usage();
    }
    for (int i = optind; i < argc; i++) {
        if (!in_list(q_d_all, argv[i])) {
            log_error("super: unknown queue \"%.40s\" (one of hold, incoming, active, deferred, "
                      "maildrop, corrupt)", argv[i]);
            free_super(&sp);
            return POSTERN_EXIT_USAGE;
        }
    }
    sp.queues = argv + optind;
    sp.queue_count = (size_t) (argc - optind);
    if ((cfg = postern_queue_config(dir)) == NULL) {
        free_super(&sp);
        return POSTERN_EXIT_FAIL;
    }
    log_init("postsuper");
    log_configure(config_str(cfg, "syslog_name"), config_str(cfg, "maillog_file"),
                  config_str(cfg, "myhostname"));
    log_set_stderr(false, false);
    sp.tty = isatty(STDERR_FILENO) == 1;
    if (!become_mail_owner(cfg)) {
        fprintf(stderr, "postern super: permission denied: run as root or as mail_owner (%s)\n",
                config_str(cfg, "mail_owner"));
        config_free(cfg);
        free_super(&sp);
        return POSTERN_EXIT_FAIL;
    }
    qdir = config_str(cfg, "queue_directory");
    if (chdir(qdir) != 0) {
        fprintf(stderr, "postern super: cannot enter queue_directory %s: %s\n", qdir, strerror(errno));
        config_free(cfg);
        free_super(&sp);
        return POSTERN_EXIT_FAIL;
    }
    for (int op = 0; op < OP_COUNT; op++)
        if (sp.args[op].stdin_ids && !read_stdin_ids(&sp, &sp.args[op]))
            rc = POSTERN_EXIT_FAIL;
    if (rc == POSTERN_EXIT_OK) {
        if (sp.repair)
            repair(&sp);
        for (int op = 0; op < OP_COUNT; op++)
            run_op(&sp, (enum super_op) op);
        /* Hurry qmgr up; when it is not running it finds the files at start. */
        if (sp.args[OP_RELEASE].done > 0)
            (void) ipc_trigger(NULL, "public", "qmgr", IPC_TRIGGER_SCAN);
        if (sp.args[OP_REQUEUE].done > 0)
            (void) ipc_trigger(NULL, "public", "qmgr", IPC_TRIGGER_WAKEUP);
    }
    if (sp.errors > 0)
        rc = POSTERN_EXIT_FAIL;
    config_free(cfg);
    free_super(&sp);
    return rc;
}
