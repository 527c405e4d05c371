/*
 * pickup - move local submissions from maildrop/ to the cleanup service.
 *
 * master.cf:  pickup  fifo  n  -  n  60  1  pickup
 *
 * A trigger server: woken by postdrop (a byte on public/pickup) or by
 * master every "wakeup" seconds, it scans maildrop/ once. Each file whose
 * name is a queue ID is opened without following links, checked record by
 * record (maildrop.h), and only when the whole file is good is it streamed
 * to private/$cleanup_service_name. Once cleanup answers status 0 the file
 * is removed and "ID: uid=N from=<sender>" is logged with cleanup's queue
 * ID.
 *
 *   - a file that breaks the rules (bad records, not a regular file, a
 *     symlink, several links, too big, a submit_uid other than its owner)
 *     is moved to corrupt/ with a warning naming the problem: never deleted;
 *   - a message cleanup refuses for good (too big, no recipients, bad
 *     content) is moved to corrupt/ too: there is no bounce path yet, and
 *     it must not be retried forever;
 *   - any temporary problem (cleanup down, I/O error) leaves the file for
 *     the next scan, which the 60-second wake-up guarantees;
 *   - a postdrop temporary file ("tmp-..."), left when postdrop died, is
 *     removed once it is older than MAX_TEMP_AGE.
 *
 * SECURITY: runs as mail_owner, in queue_directory. Every maildrop file was
 * written by a local user and is untrusted: who sent it is taken from the
 * file's owner (the kernel's word), and the submit_uid record must agree.
 * Of the user's attributes only the DSN ones are passed on; submit_flags
 * becomes the EXTRACT flag of the cleanup request.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup_proto.h"
#include "clock.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "maildrop.h"
#include "queue.h"
#include "rec.h"
#include "server.h"
#include "str.h"
#include "stream.h"

#define MAX_TEMP_AGE    (24 * 3600)         /* seconds before a stale tmp- file goes */
#define ENVELOPE_SLACK  (16L * 1024 * 1024) /* file size allowed beyond 2 x the content limit */

enum outcome {
    DONE,                   /* handed to cleanup and removed */
    KEEP,                   /* temporary problem: try again later */
    STOP,                   /* temporary problem that affects every file: end this scan */
};

/* Move a bad file to corrupt/, with a warning that says why. */
static enum outcome
to_corrupt(const char *id, const char *why)
{
    if (queue_move(QUEUE_MAILDROP, QUEUE_CORRUPT, id) != 0) {
        log_warn("maildrop/%s: %s; cannot move it to corrupt/: %s", id, why, strerror(errno));
        return KEEP;
    }
    log_warn("maildrop/%s: %s; moved to corrupt/", id, why);
    return DONE;
}

/*
 * Pass 1: read every record and check it. Returns 1 when good (mc filled
 * in), 0 when bad (why says so), -1 on a read error.
 */
static int
validate(stream_t *st, struct maildrop_check *mc, str_t *why)
{
    str_t  *data = str_new(0);
    size_t  max = maildrop_max_record(mc->line_limit);
    int     type, rc = 0, result = -1;

    for (;;) {
        type = rec_get(st, data, max, why);
        if (type == REC_IOERR)
            goto out;
        if (type == REC_EOF) {
            str_set_cstr(why, "file ends without an end record");
            result = 0;
            goto out;
        }
        if (type == REC_BAD) {
            result = 0;
            goto out;
        }
        rc = maildrop_check_record(mc, type, str_cstr(data), str_len(data));
        if (rc == MAILDROP_BAD) {
            str_set(why, str_cstr(&mc->error), str_len(&mc->error));
            result = 0;
            goto out;
        }
        if (rc == MAILDROP_DONE)
            break;
    }
    if ((type = stream_getc(st)) != STREAM_EOF) {
        if (type >= 0) {
            str_set_cstr(why, "data after the end record");
            result = 0;
        } else {
            str_printf(why, "read error: %s", stream_strstatus(type));
        }
        goto out;
    }
    result = 1;
  out:
    str_free(data);
    return result;
}

/* True for the A records a user's submission may pass on to cleanup. */
static bool
attr_passes(const str_t *data)
{
    static const char *const pass[] = {REC_ATTR_DSN_ENVID "=", REC_ATTR_DSN_RET "=", NULL};

    for (const char *const *p = pass; *p; p++)
        if (cstr_has_prefix(str_cstr(data), *p))
            return true;
    return false;
}

/*
 * Pass 2: stream the (already checked) file to cleanup. Returns DONE, KEEP
 * (cleanup refused for now), STOP (cleanup unreachable) or, through
 * *permanent, a final refusal with its reason in why.
 */
static enum outcome
send_to_cleanup(stream_t *in, config_t *cfg, const struct maildrop_check *mc, uid_t uid,
                str_t *queue_id, bool *permanent, str_t *why)
{
    attr_list_t *al = attr_list_new();
    str_t  *data = str_new(0);
    str_t  *err = str_new(0);
    stream_t *cl;
    enum outcome result = KEEP;
    const char *qid, *reason = "";
    long long status;
    int     type;

    *permanent = false;
    cl = ipc_connect(NULL, "private", config_str(cfg, "cleanup_service_name"), CLEANUP_PROTOCOL,
                     (int) config_time(cfg, "ipc_timeout"), err);
    if (cl == NULL) {
        str_printf(why, "%s", str_cstr(err));
        result = STOP;
        goto out;
    }
    attr_put_int(al, "flags", CLEANUP_FLAG_LOCAL
                 | ((mc->submit_flags & CLEANUP_FLAG_EXTRACT) ? CLEANUP_FLAG_EXTRACT : 0));
    if (attr_write(cl, al) != ATTR_OK) {
        str_printf(why, "cleanup service: write error");
        result = STOP;
        goto out;
    }
    if (attr_read(cl, NULL, al, err) != ATTR_OK
        || attr_get_str(al, "queue_id", &qid) != ATTR_OK || !queue_id_ok(qid)
        || attr_check_end(al, err) != ATTR_OK) {
        str_printf(why, "cleanup service: bad queue_id reply %s", str_cstr(err));
        result = STOP;
        goto out;
    }
    str_set_cstr(queue_id, qid);

    for (;;) {
        type = rec_get(in, data, maildrop_max_record(mc->line_limit), err);
        if (type < 0) {
            /* The file was good a moment ago: treat a change as a read problem. */
            str_printf(why, "reading again: %s", str_cstr(err));
            goto out;
        }
        if (type == REC_TYPE_ATTR && !attr_passes(data))
            continue;               /* submit_* are ours, not cleanup's */
        if (rec_write(cl, type, str_cstr(data), str_len(data)) != STREAM_OK) {
            str_printf(why, "cleanup service: write error");
            result = STOP;
            goto out;
        }
        if (type == REC_TYPE_MESG) {
            /* Trace the submission first, as for mail from the network. */
            char    date[64];
            time_t  now = time(NULL);
            struct tm tm;

            if (localtime_r(&now, &tm) == NULL
                || strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
                date[0] = 0;
            str_printf(data, "Received: by %s (%s, from userid %lu)",
                       config_str(cfg, "myhostname"), config_str(cfg, "mail_name"),
                       (unsigned long) uid);
            rec_write(cl, REC_TYPE_NORM, str_cstr(data), str_len(data));
            str_printf(data, "\tid %s; %s", qid, date);
            if (rec_write(cl, REC_TYPE_NORM, str_cstr(data), str_len(data)) != STREAM_OK) {
                str_printf(why, "cleanup service: write error");
                result = STOP;
                goto out;
            }
        }
        if (type == REC_TYPE_SENDER) {
            str_printf(data, "%s=%lu", REC_ATTR_SUBMIT_UID, (unsigned long) uid);
            if (rec_write(cl, REC_TYPE_ATTR, str_cstr(data), str_len(data)) != STREAM_OK) {
                str_printf(why, "cleanup service: write error");
                result = STOP;
                goto out;
            }
        }
        if (type == REC_TYPE_END)
            break;
    }
    if (stream_flush(cl) != STREAM_OK) {
        str_printf(why, "cleanup service: write error");
        result = STOP;
        goto out;
    }
    if (attr_read(cl, NULL, al, err) != ATTR_OK
        || attr_get_int(al, "status", 0, 0x7fffffff, &status) != ATTR_OK) {
        str_printf(why, "cleanup service: bad status reply %s", str_cstr(err));
        result = STOP;
        goto out;
    }
    if (attr_get_str(al, "reason", &reason) != ATTR_OK)
        reason = "";
    if (status == CLEANUP_STAT_OK) {
        result = DONE;
        goto out;
    }
    str_printf(why, "cleanup: %s", *reason ? reason : "no reason given");
    *permanent = CLEANUP_STAT_PERMANENT(status);
  out:
    if (cl)
        stream_close(cl);
    attr_list_free(al);
    str_free(data);
    str_free(err);
    return result;
}

/* Hand one maildrop file to cleanup, or set it aside. */
static enum outcome
pickup_file(const char *id, config_t *cfg)
{
    str_t  *path = str_new(0);
    str_t  *why = str_new(0);
    str_t  *queue_id = str_new(0);
    struct maildrop_check mc;
    struct stat sb;
    stream_t *st = NULL;
    enum outcome result = KEEP;
    long long size_limit = config_int(cfg, "message_size_limit");
    bool    permanent;
    int     fd, rc;

    maildrop_check_init(&mc, MAILDROP_FROM_FILE, (size_t) config_int(cfg, "line_length_limit"),
                        size_limit);
    str_printf(path, "%s/%s", QUEUE_MAILDROP, id);
    fd = open(str_cstr(path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            result = DONE;          /* gone meanwhile (another pickup, postsuper) */
        else if (errno == ELOOP)
            result = to_corrupt(id, "refusing a symbolic link");
        else
            log_warn("open %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        log_warn("fstat %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        result = to_corrupt(id, "not a regular file");
        goto out;
    }
    if (sb.st_nlink != 1) {
        result = to_corrupt(id, "file has more than one link");
        goto out;
    }
    if (size_limit > 0 && sb.st_size > 2 * size_limit + ENVELOPE_SLACK) {
        result = to_corrupt(id, "file too big");
        goto out;
    }
    st = stream_open(fd);
    fd = -1;
    rc = validate(st, &mc, why);
    if (rc < 0) {
        log_warn("read %s: %s", str_cstr(path), str_cstr(why));
        goto out;
    }
    if (rc == 0) {
        result = to_corrupt(id, str_cstr(why));
        goto out;
    }
    if (mc.submit_uid != (long long) sb.st_uid) {
        str_printf(why, "submit_uid %lld is not the file owner %lu", mc.submit_uid,
                   (unsigned long) sb.st_uid);
        result = to_corrupt(id, str_cstr(why));
        goto out;
    }

    /* Pass 2 from the start of the same open file. */
    if (lseek(stream_fd(st), 0, SEEK_SET) != 0) {
        log_warn("lseek %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    fd = stream_fd(st);
    stream_abandon(st);
    st = stream_open(fd);
    fd = -1;
    result = send_to_cleanup(st, cfg, &mc, sb.st_uid, queue_id, &permanent, why);
    if (result == DONE) {
        log_info("%s: uid=%lu from=<%s>", str_cstr(queue_id), (unsigned long) sb.st_uid,
                 str_cstr(&mc.sender));
        if (unlink(str_cstr(path)) != 0 && errno != ENOENT)
            log_warn("%s: queued as %s, but cannot remove %s: %s", id, str_cstr(queue_id),
                     str_cstr(path), strerror(errno));
    } else if (permanent) {
        result = to_corrupt(id, str_cstr(why));
    } else {
        log_warn("maildrop/%s: %s; will try again later", id, str_cstr(why));
    }
  out:
    if (st)
        stream_close(st);
    if (fd >= 0)
        close(fd);
    maildrop_check_free(&mc);
    str_free(path);
    str_free(why);
    str_free(queue_id);
    return result;
}

/* A postdrop temporary file: remove it when it is older than MAX_TEMP_AGE. */
static void
stale_temp(const char *name)
{
    str_t  *path = str_new(0);
    struct stat sb;

    str_printf(path, "%s/%s", QUEUE_MAILDROP, name);
    if (lstat(str_cstr(path), &sb) == 0 && S_ISREG(sb.st_mode)
        && clock_now() - sb.st_mtime > MAX_TEMP_AGE) {
        if (unlink(str_cstr(path)) == 0)
            log_warn("removed stale temporary file %s (an interrupted postdrop)", str_cstr(path));
        else
            log_warn("remove %s: %s", str_cstr(path), strerror(errno));
    }
    str_free(path);
}

static void
pickup_scan(const char *buf, size_t len, config_t *cfg)
{
    DIR    *dir;
    struct dirent *de;

    if ((dir = opendir(QUEUE_MAILDROP)) == NULL) {
        log_warn("open directory %s: %s", QUEUE_MAILDROP, strerror(errno));
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        if (queue_id_ok(de->d_name)) {
            if (pickup_file(de->d_name, cfg) == STOP)
                break;
        } else if (strncmp(de->d_name, "tmp-", 4) == 0) {
            stale_temp(de->d_name);
        }
    }
    closedir(dir);
}

static void
pickup_post_init(config_t *cfg)
{
    queue_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "pickup",
        .post_init = pickup_post_init,
        .trigger = pickup_scan,
    };

    trigger_server_main(argc, argv, &ops);
}
