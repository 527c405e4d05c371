/*
 * local_forward.c - ~/.forward files, and the re-queueing of addresses
 * that aliases and .forward files send elsewhere.
 *
 * forward_path is a list of file names with $home, $user, $extension,
 * $recipient, $local, $domain, $shell and $recipient_delimiter (plus any
 * main.cf parameter), expanded per recipient; the first file that exists
 * and is safe is used. A file counts only when it is a regular file owned
 * by the user (or root) and not writable by group or others; anything else
 * is logged and ignored, so that another account cannot redirect mail.
 * Values that come from the address (extension, local part, domain) may not
 * put a '/' or an odd character into a file name: such a path is skipped.
 *
 * Re-queueing: non-local addresses found while expanding one queue
 * recipient are sent, as one new message with the same sender and DSN
 * options, through the cleanup service, with "Delivered-To: recipient" on
 * top so that a message that comes back is recognised as a loop.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup_proto.h"
#include "clock.h"
#include "ipc.h"
#include "local.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "qfile.h"
#include "queue.h"
#include "rec.h"

#define FORWARD_FLUSH   (64 * 1024)     /* bytes of records buffered before a write */

int
local_read_list(const char *path, const struct local_owner *o, str_t *out, struct stat *st,
                str_t *why)
{
    int     fd, err, rc = -1;
    char    buf[8192];
    ssize_t n;

    str_reset(out);
    if (!local_become(o, (gid_t) -1, why))
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    err = errno;
    local_unbecome();
    if (fd < 0) {
        if (err == ENOENT || err == ENOTDIR)
            return 1;
        str_printf(why, "open %s: %s", path, strerror(err));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        str_printf(why, "fstat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st->st_mode)) {
        str_printf(why, "%s is not a regular file", path);
        goto out;
    }
    if (st->st_size > LOCAL_LIST_MAX) {
        str_printf(why, "%s is larger than %d bytes", path, LOCAL_LIST_MAX);
        goto out;
    }
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            str_printf(why, "read %s: %s", path, strerror(errno));
            goto out;
        }
        if (str_len(out) + (size_t) n > LOCAL_LIST_MAX) {
            str_printf(why, "%s is larger than %d bytes", path, LOCAL_LIST_MAX);
            goto out;
        }
        str_append(out, buf, (size_t) n);
    }
    if (memchr(out->data, 0, str_len(out)) != NULL) {
        str_printf(why, "%s holds a NUL byte", path);
        goto out;
    }
    rc = 0;
  out:
    if (close(fd) != 0)
        log_warn_errno("close %s", path);
    return rc;
}

/* ---- forward_path expansion -------------------------------------------- */

struct fwd_macros {
    const struct local_attr *a;
    const struct local_owner *user;
    bool    unsafe;
};

/* Characters an address-derived value may bring into a file name. */
static bool
safe_value(const char *v)
{
    for (; *v; v++)
        if (!isalnum((unsigned char) *v) && strchr("!#%&'*+-.=?^_`{|}~@,:", *v) == NULL)
            return false;
    return true;
}

static const char *
fwd_lookup(const char *name, void *arg)
{
    struct fwd_macros *m = arg;
    const char *v = NULL;

    if (strcmp(name, "home") == 0)
        return m->user->home;
    if (strcmp(name, "shell") == 0)
        return m->user->shell;
    if (strcmp(name, "user") == 0)
        v = m->a->user;
    else if (strcmp(name, "extension") == 0)
        v = m->a->extension;
    else if (strcmp(name, "recipient") == 0)
        v = m->a->address;
    else if (strcmp(name, "local") == 0)
        v = m->a->local;
    else if (strcmp(name, "domain") == 0)
        v = m->a->domain;
    else if (param_lookup(name) != NULL)
        return config_str(local_conf.cfg, name);
    if (v && !safe_value(v))
        m->unsafe = true;
    return v;
}

static void
count_item(const char *item, void *arg)
{
    (void) item;
    (*(size_t *) arg)++;
}

int
local_forward(struct local_ctx *ctx, const struct local_attr *a, const struct local_owner *user)
{
    const char *p = local_conf.forward_path;
    str_t  *entry = str_new(64), *path = str_new(128), *text = str_new(512),
        *why = str_new(64), *tag = str_new(64);
    char  **tried = NULL;
    size_t  ntried = 0, tcap = 0;
    int     found = 0;

    str_printf(tag, "forward:%s", user->name);
    if (local_chain_has(ctx, str_cstr(tag)))
        goto out;                       /* the user's .forward names the user */
    while (*p && !found) {
        struct fwd_macros m = {.a = a, .user = user};
        struct stat st;
        size_t  len, nitems = 0;
        bool    again = false;
        int     rc;

        p += strspn(p, ", \t\r\n");
        if ((len = strcspn(p, ", \t\r\n")) == 0)
            break;
        str_set(entry, p, len);
        p += len;
        if (!local_expand_macros(str_cstr(entry), fwd_lookup, &m, path)) {
            log_warn("forward_path: cannot expand \"%s\"", str_cstr(entry));
            continue;
        }
        if (m.unsafe || str_len(path) == 0 || path->data[0] != '/')
            continue;
        for (size_t i = 0; i < ntried; i++)
            again |= strcmp(tried[i], str_cstr(path)) == 0;
        if (again)
            continue;
        tried = mem_grow_array(tried, &tcap, ntried + 1, sizeof(char *));
        tried[ntried++] = mem_strdup(str_cstr(path));

        rc = local_read_list(str_cstr(path), user, text, &st, why);
        if (rc == 1)
            continue;
        if (rc < 0) {
            if (strstr(str_cstr(why), strerror(EACCES)) != NULL) {
                log_warn("%s: ignoring %s", ctx->rq->queue_id, str_cstr(why));
                continue;
            }
            local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot read forward file: %s",
                         str_cstr(why));
            found = 1;
            break;
        }
        if (st.st_uid != user->uid && st.st_uid != 0) {
            log_warn("%s: ignoring %s: owned by uid %ld, not by %s", ctx->rq->queue_id,
                     str_cstr(path), (long) st.st_uid, user->name);
            continue;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            log_warn("%s: ignoring %s: writable by group or others", ctx->rq->queue_id,
                     str_cstr(path));
            continue;
        }
        local_split_items(str_cstr(text), LOCAL_MAX_ITEMS, count_item, &nitems);
        if (nitems == 0)
            continue;                   /* an empty .forward: the mailbox */
        local_chain_push(ctx, str_cstr(tag));
        local_expand_list(ctx, a, str_cstr(text), user->uid == 0 ? NULL : user,
                          LOCAL_CLASS_FORWARD);
        local_chain_pop(ctx);
        found = 1;
    }
  out:
    for (size_t i = 0; i < ntried; i++)
        mem_free(tried[i]);
    mem_free(tried);
    str_free(entry);
    str_free(path);
    str_free(text);
    str_free(why);
    str_free(tag);
    return found;
}

/* ---- re-queueing ------------------------------------------------------- */

/* Write buffered records when the buffer is big (or always with force). */
static bool
flush_records(stream_t *st, str_t *buf, bool force)
{
    if (!force && str_len(buf) < FORWARD_FLUSH)
        return true;
    if (str_len(buf) && stream_write(st, buf->data, str_len(buf)) != STREAM_OK)
        return false;
    str_reset(buf);
    return !force || stream_flush(st) == STREAM_OK;
}

/* Append the content records of the queue file (M exclusive .. X exclusive). */
static bool
copy_content(struct deliver_request *rq, stream_t *st, str_t *buf, str_t *why)
{
    str_t  *path = str_new(64);
    struct qfile_rec rec;
    qfile_reader_t *r;
    bool    ok = false;
    int     fd, rc;

    queue_path(path, rq->queue_name, rq->queue_id);
    if ((fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        str_printf(why, "open %s: %s", str_cstr(path), strerror(errno));
        str_free(path);
        return false;
    }
    r = qfile_reader_new(fd, rq->queue_id, QFILE_FLAG_QUEUE);
    while ((rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        if (rec.section != QFILE_SEC_CONTENT)
            continue;
        if (rec.type == REC_TYPE_XTRA) {
            ok = true;
            break;
        }
        rec_put(buf, rec.type, rec.data, rec.len);
        if (!flush_records(st, buf, false)) {
            str_printf(why, "write to cleanup: %s", stream_strstatus(stream_status(st)));
            break;
        }
    }
    if (!ok && str_len(why) == 0)
        str_printf(why, "%s", rc == QFILE_RECORD ? "queue file read error"
                   : qfile_reader_error(r));
    qfile_reader_free(r);
    if (close(fd) != 0)
        log_warn_errno("close %s", str_cstr(path));
    str_free(path);
    return ok;
}

void
local_forward_remote(struct local_ctx *ctx)
{
    struct deliver_request *rq = ctx->rq;
    const struct deliver_rcpt *orig = &rq->rcpt[ctx->idx];
    config_t *cfg = local_conf.cfg;
    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(64), *buf = str_new(FORWARD_FLUSH + 4096);
    const char *id = NULL, *reason = "";
    long long status = -1;
    struct timeval tv;
    stream_t *st;
    char    id_copy[QUEUE_ID_MAX + 1];

    st = ipc_connect(NULL, "private", config_str(cfg, "cleanup_service_name"), CLEANUP_PROTOCOL,
                     (int) config_time(cfg, "ipc_timeout"), err);
    if (st == NULL) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot forward mail: %s", str_cstr(err));
        goto out;
    }
    attr_put_int(al, "flags", CLEANUP_FLAG_NONE);
    if (attr_write(st, al) != ATTR_OK || attr_read(st, NULL, al, err) != ATTR_OK
        || attr_get_str(al, "queue_id", &id) != ATTR_OK || attr_check_end(al, err) != ATTR_OK
        || !queue_id_ok(id)) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot forward mail: cleanup service: %s",
                     str_len(err) ? str_cstr(err) : "protocol error");
        goto out;
    }
    snprintf(id_copy, sizeof(id_copy), "%s", id);

    tv.tv_sec = clock_now();
    tv.tv_usec = 0;
    rec_putf(buf, REC_TYPE_TIME, "%lld.%06ld", (long long) tv.tv_sec, (long) tv.tv_usec);
    rec_put_str(buf, REC_TYPE_SENDER, rq->sender);
    if (rq->dsn_envid && *rq->dsn_envid)
        rec_put_attr(buf, REC_ATTR_DSN_ENVID, rq->dsn_envid);
    if (rq->dsn_ret == DSN_RET_FULL || rq->dsn_ret == DSN_RET_HDRS)
        rec_putf(buf, REC_TYPE_ATTR, "%s=%d", REC_ATTR_DSN_RET, rq->dsn_ret);
    for (size_t i = 0; i < ctx->nremote; i++) {
        if (orig->orcpt && *orig->orcpt)
            rec_put_str(buf, REC_TYPE_ORCPT, orig->orcpt);
        if (orig->notify)
            rec_putf(buf, REC_TYPE_NOTIFY, "%d", orig->notify);
        rec_put_str(buf, REC_TYPE_RCPT, ctx->remote[i]);
    }
    rec_put(buf, REC_TYPE_MESG, "", 0);
    rec_putf(buf, REC_TYPE_NORM, "Delivered-To: %s", ctx->rcpt);
    if (!copy_content(rq, st, buf, err)) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot forward mail: %s", str_cstr(err));
        goto out;                       /* closing the connection makes cleanup drop it */
    }
    rec_put(buf, REC_TYPE_XTRA, "", 0);
    rec_put(buf, REC_TYPE_END, "", 0);
    if (!flush_records(st, buf, true) || attr_read(st, NULL, al, err) != ATTR_OK
        || attr_get_int(al, "status", 0, 0x7fffffff, &status) != ATTR_OK) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot forward mail: cleanup service: %s",
                     str_len(err) ? str_cstr(err) : stream_strstatus(stream_status(st)));
        goto out;
    }
    (void) attr_get_str(al, "reason", &reason);
    if (status == CLEANUP_STAT_OK) {
        log_info("%s: %s: forwarded as %s to %zu address%s", rq->queue_id, ctx->rcpt, id_copy,
                 ctx->nremote, ctx->nremote == 1 ? "" : "es");
        local_result(ctx, LOCAL_SENT, "2.0.0", "forwarded as %s", id_copy);
    } else if (CLEANUP_STAT_PERMANENT(status)) {
        local_result(ctx, LOCAL_BOUNCE, "5.3.0", "cannot forward mail: %s", reason);
    } else {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot forward mail: %s", reason);
    }
  out:
    if (st)
        stream_close(st);
    attr_list_free(al);
    str_free(err);
    str_free(buf);
}
