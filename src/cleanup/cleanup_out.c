/*
 * cleanup_out.c - the queue file: create, buffer, commit, abort.
 *
 * A message is built in a memory buffer of records and written to its file
 * only when the buffer grows past CLEANUP_FLUSH_SIZE, so a typical message
 * costs one write(2). The file is a spare one when queue_spare_take()
 * finds one (a delivered message's file, kept by qmgr: no inode to
 * allocate; see queue.h), else created, under a temporary name,
 * incoming/.tmp.<random>, that is not a queue ID: queue_walk() and every
 * other reader skip it, so nobody reads an unfinished file. Commit is:
 *   1. patch the C record (sizes, recipient count) in the buffer, or with
 *      pwrite(2) when that part was already written;
 *   2. append E and write the rest: the file is complete (in the page
 *      cache);
 *   3. rename it to its queue ID (incoming/ or hold/), refusing to replace
 *      an existing file;
 *   4. fsync(2) the file, under its final name.
 * Only then does the caller reply "status 0" to the client.
 *
 * Why the fsync comes after the rename: the name must be on disk before
 * our "OK" as much as the data, since after a power loss a message left
 * under its temporary name is one that no queue reader looks at and that
 * the stale-file sweep below deletes. POSIX promises a durable rename only
 * after an fsync of the directory, which cost a second device flush per
 * message; on Linux an fsync of the renamed file makes its new name
 * durable as well: ext4 commits the journal transaction that holds the
 * rename (without a journal it syncs the parent directory of a new file),
 * XFS forces the log up to the file's last change, the rename included,
 * and Btrfs logs the new name. So a temporary file is still by
 * construction one that was never acknowledged, and one flush suffices.
 *
 * What the order costs: between the rename and the end of the fsync the
 * file is visible under its queue ID, complete but maybe not yet on disk.
 * A reader that takes it then (qmgr's periodic scan) reads a whole
 * message; a power loss in that window can leave a partly written file
 * under a queue ID, which qmgr moves to corrupt/ (the client got no OK
 * and sends the message again). When the fsync fails, the file is removed
 * again if it is still in place, and the client gets a 4xx; had qmgr
 * taken it already, it may be delivered twice, never lost.
 *
 * Leftover temporary files (a cleanup process killed mid-message) are
 * removed by cleanup_out_sweep() when a cleanup process starts, once they
 * are older than daemon_timeout: no live cleanup process can own a file
 * that old, since the watchdog (re-armed for every message) kills a
 * process that spends longer than that on one message. The sweep reads
 * the whole of incoming/, so it runs at most once per SWEEP_INTERVAL over
 * all cleanup processes: the stamp file incoming/.sweep records the last
 * one (a busy instance starts a cleanup process every few hundred
 * messages, and incoming/ may then hold thousands of files).
 *
 * Errors: a write, fsync or rename failure sets CLEANUP_STAT_WRITE with a
 * "4.3.0" reason and logs a warning; the temporary file is then removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "cleanup_proto.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rec.h"

#define TEMP_PREFIX     ".tmp."
#define SWEEP_STAMP     QUEUE_INCOMING "/.sweep"
#define SWEEP_INTERVAL  300         /* seconds between two sweeps of incoming/ */
#define TEMP_TRIES      10

bool
cleanup_out_ok(const struct cleanup_state *st)
{
    return st->fd >= 0 && st->errs == 0 && (st->flags & CLEANUP_FLAG_DISCARD) == 0;
}

/*
 * A short random hex string for the temporary name. The random bytes come
 * from getrandom() in batches, enough for 32 names per call.
 */
static void
random_suffix(str_t *out)
{
    static unsigned char pool[256];
    static size_t left;
    unsigned char r[8];

    if (left < sizeof(r)) {
        left = getrandom(pool, sizeof(pool), GRND_NONBLOCK) == (ssize_t) sizeof(pool)
            ? sizeof(pool) : 0;
    }
    if (left >= sizeof(r)) {
        left -= sizeof(r);
        memcpy(r, pool + left, sizeof(r));
        memset(pool + left, 0, sizeof(r));  /* each byte serves one name only */
    } else {
        /* No entropy yet: pid and time still make a name unique enough with O_EXCL. */
        long long t = clock_now_ms();
        pid_t   pid = getpid();

        memcpy(r, &t, 4);
        memcpy(r + 4, &pid, 4);
    }
    for (size_t i = 0; i < sizeof(r); i++)
        str_append_printf(out, "%02x", r[i]);
}

/*
 * Open a spare queue file that was just moved to path (queue.h), or remove
 * it and return -1 when it is not what a spare is: a regular file of ours
 * with one link. It still holds the finished message qmgr put there, and is
 * emptied here, before anything is written to it. The mode loses qmgr's
 * marks (0600), and the times are set to now, since the sweep judges a
 * temporary file by its age.
 */
static int
open_spare(const char *path)
{
    struct stat sb;
    int     fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);

    /* Now is its modification time: the sweep must see a fresh temporary file. */
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid()
        && sb.st_nlink == 1
        && (sb.st_size == 0 || ftruncate(fd, 0) == 0)
        && ((sb.st_mode & 07777) == 0600 || fchmod(fd, 0600) == 0)
        && futimens(fd, NULL) == 0)
        return fd;
    log_warn("removing unusable spare queue file (now %s)", path);
    if (fd >= 0)
        (void) close(fd);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn_errno("remove %s", path);
    return -1;
}

/*
 * Create the temporary file, make the queue ID from its inode, and start
 * the buffer with V and a placeholder C record. Returns false (logged) when
 * no file can be made; the caller then closes the connection.
 */
bool
cleanup_out_open(struct cleanup_state *st)
{
    struct stat sb;
    str_t  *id = str_new(QUEUE_ID_MAX + 1);
    char    csize[3 * REC_SIZE_WIDTH + 3];
    int     n;

    str_set_cstr(st->temp_path, QUEUE_INCOMING "/" TEMP_PREFIX);
    random_suffix(st->temp_path);
    if (queue_spare_take(str_cstr(st->temp_path)) == 0)
        st->fd = open_spare(str_cstr(st->temp_path));
    for (int i = 0; i < TEMP_TRIES && st->fd < 0; i++) {
        if (i > 0) {                /* the name was taken (or was a bad spare's) */
            str_set_cstr(st->temp_path, QUEUE_INCOMING "/" TEMP_PREFIX);
            random_suffix(st->temp_path);
        }
        st->fd = open(str_cstr(st->temp_path), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (st->fd < 0 && errno != EEXIST) {
            log_warn_errno("create queue file %s", str_cstr(st->temp_path));
            break;
        }
    }
    if (st->fd < 0) {
        str_free(id);
        str_reset(st->temp_path);
        return false;
    }
    if (fstat(st->fd, &sb) != 0) {
        log_warn_errno("fstat %s", str_cstr(st->temp_path));
        cleanup_out_abort(st);
        str_free(id);
        return false;
    }
    /* The time part of the ID is an identifier, not a policy time: real microseconds. */
    if (gettimeofday(&st->create_time, NULL) != 0)
        log_fatal_errno("gettimeofday");
    queue_id_make(id, &st->create_time, sb.st_ino);
    st->queue_id = str_steal(id);

    rec_put_str(st->out, REC_TYPE_VERSION, REC_VERSION_CURRENT);
    n = snprintf(csize, sizeof(csize), REC_SIZE_FORMAT, 0LL, 0LL, 0LL);
    if (n < 0 || (size_t) n >= sizeof(csize))
        log_panic("cleanup_out_open: size record does not fit");
    /* Data starts after the type byte and a one-byte length (n < 128). */
    st->size_rec_offset = (long long) str_len(st->out) + 2;
    rec_put(st->out, REC_TYPE_SIZE, csize, (size_t) n);
    return true;
}

/* Write the buffer to the file. */
static void
out_flush(struct cleanup_state *st)
{
    if (str_len(st->out) == 0 || st->fd < 0)
        return;
    if (fd_write_all(st->fd, st->out->data, str_len(st->out)) < 0) {
        log_warn_errno("%s: write queue file", st->queue_id);
        cleanup_error(st, CLEANUP_STAT_WRITE, "4.3.0 queue file write error");
    } else {
        st->out_written += (long long) str_len(st->out);
    }
    str_reset(st->out);
}

void
cleanup_out_record(struct cleanup_state *st, int type, const void *data, size_t len)
{
    if (!cleanup_out_ok(st))
        return;
    rec_put(st->out, type, data, len);
    if (str_len(st->out) >= CLEANUP_FLUSH_SIZE)
        out_flush(st);
}

/* One whole content line, split at line_length_limit; counted in message_size. */
void
cleanup_out_line(struct cleanup_state *st, const char *data, size_t len)
{
    size_t  max = (size_t) cleanup_conf.line_length_limit;

    st->message_size += (long long) len + 1;
    if (!cleanup_out_ok(st))
        return;
    rec_put_line(st->out, data, len, max);
    if (str_len(st->out) >= CLEANUP_FLUSH_SIZE)
        out_flush(st);
}

/* Remember where the content starts: called right after the M record. */
void
cleanup_out_mark_content(struct cleanup_state *st)
{
    st->content_offset = st->out_written + (long long) str_len(st->out);
}

/* Fill in the C record, in the buffer or in the file. */
void
cleanup_out_mark_size(struct cleanup_state *st)
{
    char    csize[3 * REC_SIZE_WIDTH + 3];
    int     n;

    if (!cleanup_out_ok(st))
        return;
    n = snprintf(csize, sizeof(csize), REC_SIZE_FORMAT, st->message_size, st->content_offset,
                 (long long) st->rcpt_count);
    if (n != 3 * REC_SIZE_WIDTH + 2)
        log_panic("cleanup_out_mark_size: size record is %d bytes", n);
    if (st->size_rec_offset >= st->out_written) {
        memcpy(st->out->data + (st->size_rec_offset - st->out_written), csize, (size_t) n);
        return;
    }
    for (;;) {
        ssize_t w = pwrite(st->fd, csize, (size_t) n, (off_t) st->size_rec_offset);

        if (w == n)
            return;
        if (w < 0 && errno == EINTR)
            continue;
        log_warn_errno("%s: update size record", st->queue_id);
        cleanup_error(st, CLEANUP_STAT_WRITE, "4.3.0 queue file write error");
        return;
    }
}

/*
 * Move the temporary file to its final name without ever replacing an
 * existing queue file. renameat2(RENAME_NOREPLACE) does it in one call; on
 * a file system without it, link+unlink has the same effect.
 */
static int
rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) != 0)
        return -1;
    if (unlink(from) != 0)
        log_warn_errno("unlink %s", from);
    return 0;
}

/* Create the hashed subdirectories in "queue/a/b" (the queue itself exists). */
static int
make_dirs(const char *dir)
{
    char   *copy = mem_strdup(dir);
    int     rc = 0;

    for (char *slash = strchr(copy, '/'); slash && rc == 0; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        if (strchr(copy, '/') && mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *slash = '/';
    }
    if (rc == 0 && mkdir(copy, 0700) != 0 && errno != EEXIST)
        rc = -1;
    mem_free(copy);
    return rc;
}

bool
cleanup_out_commit(struct cleanup_state *st)
{
    const char *queue = (st->flags & CLEANUP_FLAG_HOLD) ? QUEUE_HOLD : QUEUE_INCOMING;
    str_t  *path = str_new(64);
    str_t  *dir = str_new(64);
    bool    ok = false;
    int     r;

    cleanup_out_mark_size(st);
    cleanup_out_record(st, REC_TYPE_END, "", 0);
    out_flush(st);
    if (!cleanup_out_ok(st))
        goto done;
    queue_path(path, queue, st->queue_id);
    r = rename_noreplace(str_cstr(st->temp_path), str_cstr(path));
    if (r != 0 && errno == ENOENT) {
        /* A hashed subdirectory may not exist yet. */
        queue_dir_path(dir, queue, st->queue_id);
        if (make_dirs(str_cstr(dir)) == 0)
            r = rename_noreplace(str_cstr(st->temp_path), str_cstr(path));
    }
    if (r != 0) {
        log_warn_errno("%s: rename %s to %s", st->queue_id, str_cstr(st->temp_path),
                       str_cstr(path));
        cleanup_error(st, CLEANUP_STAT_WRITE, "4.3.0 queue file write error");
        goto done;
    }
    /* From here the file is under its final name (see the top for the order). */
    str_reset(st->temp_path);
    if (fsync(st->fd) != 0) {
        log_warn_errno("%s: fsync queue file", st->queue_id);
        cleanup_error(st, CLEANUP_STAT_WRITE, "4.3.0 queue file write error");
        if (unlink(str_cstr(path)) != 0 && errno != ENOENT)
            log_warn_errno("%s: remove %s", st->queue_id, str_cstr(path));
        goto done;
    }
    ok = true;
    if (close(st->fd) != 0)
        log_warn_errno("%s: close queue file", st->queue_id);
    st->fd = -1;
done:
    str_free(path);
    str_free(dir);
    if (!ok)
        cleanup_out_abort(st);
    return ok;
}

/* Close and remove the temporary file (nothing was committed). */
void
cleanup_out_abort(struct cleanup_state *st)
{
    if (st->fd >= 0) {
        (void) close(st->fd);
        st->fd = -1;
    }
    if (str_len(st->temp_path) > 0) {
        if (unlink(str_cstr(st->temp_path)) != 0 && errno != ENOENT)
            log_warn_errno("remove %s", str_cstr(st->temp_path));
        str_reset(st->temp_path);
    }
    str_reset(st->out);
}

/*
 * Remove temporary files in incoming/ not modified for max_age seconds:
 * what a cleanup process killed mid-message left behind.
 */
void
cleanup_out_sweep(long max_age)
{
    DIR    *d;
    struct dirent *de;
    struct stat stamp;
    time_t  now = clock_now();
    int     fd;

    /* Swept recently (by any cleanup process)? Then nothing is old enough yet. */
    if (stat(SWEEP_STAMP, &stamp) == 0 && now >= stamp.st_mtime
        && now - stamp.st_mtime < SWEEP_INTERVAL)
        return;
    /* Claim this sweep first: the others that start meanwhile skip theirs. */
    if ((fd = open(SWEEP_STAMP, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) >= 0) {
        if (futimens(fd, NULL) != 0)
            log_warn_errno("update %s", SWEEP_STAMP);
        (void) close(fd);
    } else {
        log_warn_errno("create %s", SWEEP_STAMP);
    }
    if ((d = opendir(QUEUE_INCOMING)) == NULL) {
        log_warn_errno("open directory %s", QUEUE_INCOMING);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat sb;

        if (strncmp(de->d_name, TEMP_PREFIX, sizeof(TEMP_PREFIX) - 1) != 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (now - sb.st_mtime < max_age)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_info("removed stale temporary file %s/%s", QUEUE_INCOMING, de->d_name);
        else if (errno != ENOENT)
            log_warn_errno("remove %s/%s", QUEUE_INCOMING, de->d_name);
    }
    (void) closedir(d);
}
