/*
 * local_main.c - the local delivery agent: delivery to the users of the
 * local domains (mydestination), through aliases, .forward files, mbox or
 * Maildir mailboxes, commands and files.
 *
 * Protocol: deliver_proto.h, requests from qmgr one after another over a
 * connection (deliver_serve); each reply holds one result per recipient
 * (deliver.h logs the line).
 *
 * SECURITY: master starts this program as root (master.cf "unpriv = n")
 * and the skeleton keeps root: that is needed to act as each recipient.
 * Everything that touches a user's files or runs a user's command does so
 * with that user's uid and gids: mailboxes, /files and the reading of
 * .forward and :include: files switch the effective ids (local_become) and
 * back; commands run in a child that drops root completely before exec.
 * Commands and files named in root-owned alias tables or include files run
 * as default_privs, never as root. Only the queue file (read), the alias
 * tables (opened once at start) and the cleanup and trivial-rewrite
 * sockets are used as root. The request is checked by deliver.c; message
 * headers, addresses and .forward contents are treated as hostile: bounded,
 * never put in a path or a shell line unchecked.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "local.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "qfile.h"
#include "queue.h"
#include "rec_type.h"
#include "rewrite_clnt.h"
#include "server.h"

#define HEADER_LINES_MAX    2000    /* header lines looked at for Delivered-To: */
#define HEADER_BYTES_MAX    (1024 * 1024)
#define GROUPS_MAX          256

struct local_conf local_conf;

/* ---- results --------------------------------------------------------- */

void
local_result(struct local_ctx *ctx, enum local_status st, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    ctx->count++;
    if (st < ctx->status || (st == ctx->status && str_len(ctx->reason) > 0))
        return;                     /* an earlier or worse result stands */
    ctx->status = st;
    str_set_cstr(ctx->dsn, dsn);
    str_reset(ctx->reason);
    va_start(ap, fmt);
    str_append_vprintf(ctx->reason, fmt, ap);
    va_end(ap);
}

bool
local_dup(struct local_ctx *ctx, const char *key)
{
    for (size_t i = 0; i < ctx->nseen; i++)
        if (strcmp(ctx->seen[i], key) == 0)
            return true;
    ctx->seen = mem_grow_array(ctx->seen, &ctx->seen_cap, ctx->nseen + 1, sizeof(char *));
    ctx->seen[ctx->nseen++] = mem_strdup(key);
    return false;
}

bool
local_chain_has(const struct local_ctx *ctx, const char *key)
{
    for (size_t i = 0; i < ctx->nchain; i++)
        if (strcmp(ctx->chain[i], key) == 0)
            return true;
    return false;
}

void
local_chain_push(struct local_ctx *ctx, const char *key)
{
    ctx->chain = mem_grow_array(ctx->chain, &ctx->chain_cap, ctx->nchain + 1, sizeof(char *));
    ctx->chain[ctx->nchain++] = mem_strdup(key);
}

void
local_chain_pop(struct local_ctx *ctx)
{
    if (ctx->nchain == 0)
        log_panic("local_chain_pop: empty chain");
    mem_free(ctx->chain[--ctx->nchain]);
}

/* ---- accounts and privileges ------------------------------------------ */

static void
owner_from_pw(const struct passwd *pw, struct local_owner *o)
{
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    o->name = mem_strdup(pw->pw_name);
    o->home = mem_strdup(pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
    o->shell = mem_strdup(pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
}

bool
local_owner_by_name(const char *name, struct local_owner *o)
{
    struct passwd *pw;

    memset(o, 0, sizeof(*o));
    errno = 0;
    if ((pw = getpwnam(name)) == NULL)
        return false;
    owner_from_pw(pw, o);
    return true;
}

bool
local_owner_by_uid(uid_t uid, struct local_owner *o)
{
    struct passwd *pw;

    memset(o, 0, sizeof(*o));
    errno = 0;
    if ((pw = getpwuid(uid)) == NULL)
        return false;
    owner_from_pw(pw, o);
    return true;
}

void
local_owner_free(struct local_owner *o)
{
    mem_free(o->name);
    mem_free(o->home);
    mem_free(o->shell);
    memset(o, 0, sizeof(*o));
}

void
local_owner_copy(struct local_owner *dst, const struct local_owner *src)
{
    dst->uid = src->uid;
    dst->gid = src->gid;
    dst->name = mem_strdup(src->name);
    dst->home = mem_strdup(src->home);
    dst->shell = mem_strdup(src->shell);
}

bool
local_default_privs(struct local_owner *o, str_t *why)
{
    if (!local_owner_by_name(local_conf.default_privs, o)) {
        str_printf(why, "default_privs account \"%s\" does not exist", local_conf.default_privs);
        return false;
    }
    if (o->uid == 0) {
        local_owner_free(o);
        str_printf(why, "default_privs account \"%s\" is root", local_conf.default_privs);
        return false;
    }
    return true;
}

/*
 * Switch the effective ids to o (plus extra_gid as a supplementary group
 * when it is not (gid_t) -1). A process that did not start as root keeps
 * its own ids: it can only deliver as itself.
 */
bool
local_become(const struct local_owner *o, gid_t extra_gid, str_t *why)
{
    gid_t   groups[GROUPS_MAX + 1];
    int     n = GROUPS_MAX;

    if (!local_conf.root)
        return true;
    if (getgrouplist(o->name, o->gid, groups, &n) < 0) {
        groups[0] = o->gid;
        n = 1;
    }
    if (extra_gid != (gid_t) -1)
        groups[n++] = extra_gid;
    if (setgroups((size_t) n, groups) != 0 || setegid(o->gid) != 0) {
        str_printf(why, "cannot switch to the groups of user %s: %s", o->name, strerror(errno));
        local_unbecome();
        return false;
    }
    if (seteuid(o->uid) != 0) {
        str_printf(why, "cannot switch to user %s: %s", o->name, strerror(errno));
        local_unbecome();
        return false;
    }
    return true;
}

void
local_unbecome(void)
{
    if (!local_conf.root)
        return;
    if (seteuid(0) != 0 || setegid(0) != 0 || setgroups(0, NULL) != 0)
        log_fatal_errno("cannot switch back to root");
}

/* ---- Delivered-To: loop detection -------------------------------------- */

struct dt_list {
    char  **v;
    size_t  n, cap;
};

static void
dt_add(struct dt_list *dl, str_t *header)
{
    const char *colon = memchr(header->data, ':', str_len(header));
    str_t  *value;

    if (colon == NULL || (size_t) (colon - header->data) != strlen("Delivered-To")
        || strncasecmp(header->data, "Delivered-To", strlen("Delivered-To")) != 0)
        return;
    value = str_new(64);
    str_set_cstr(value, colon + 1);
    str_trim(value);
    if (str_len(value) >= 2 && value->data[0] == '<' && value->data[str_len(value) - 1] == '>') {
        memmove(value->data, value->data + 1, str_len(value) - 2);
        str_truncate(value, str_len(value) - 2);
    }
    str_lower(value);
    dl->v = mem_grow_array(dl->v, &dl->cap, dl->n + 1, sizeof(char *));
    dl->v[dl->n++] = str_steal(value);
}

/*
 * Collect the Delivered-To: values of the message's headers. Returns
 * false when the queue file cannot be read (the caller defers).
 */
static bool
dt_read(struct deliver_request *rq, struct dt_list *dl, str_t *why)
{
    str_t  *path = str_new(64), *header = str_new(256), *line = str_new(256);
    struct qfile_rec rec;
    qfile_reader_t *r;
    size_t  nlines = 0, bytes = 0;
    bool    ok = false, in_headers = true;
    int     fd, rc;

    queue_path(path, rq->queue_name, rq->queue_id);
    if ((fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        str_printf(why, "cannot open queue file %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    r = qfile_reader_new(fd, rq->queue_id, QFILE_FLAG_QUEUE);
    while (in_headers && (rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        if (rec.section != QFILE_SEC_CONTENT)
            continue;
        if (rec.type == REC_TYPE_XTRA)
            break;
        if (str_len(line) < HEADER_BYTES_MAX)
            str_append(line, rec.data, rec.len);
        if (rec.type == REC_TYPE_CONT)
            continue;
        /* A complete line. */
        bytes += str_len(line);
        if (++nlines > HEADER_LINES_MAX || bytes > HEADER_BYTES_MAX || str_len(line) == 0) {
            in_headers = false;
        } else if (line->data[0] == ' ' || line->data[0] == '\t') {
            if (str_len(header) < HEADER_BYTES_MAX)
                str_append_str(header, line);
        } else {
            if (str_len(header))
                dt_add(dl, header);
            str_set(header, line->data, str_len(line));
            if (memchr(line->data, ':', str_len(line)) == NULL)
                in_headers = false;     /* the body started without a blank line */
        }
        str_reset(line);
    }
    if (in_headers && rc != QFILE_DONE && rc != QFILE_RECORD) {
        str_printf(why, "%s", qfile_reader_error(r));
    } else {
        if (str_len(header) && (str_len(line) == 0 || !in_headers))
            dt_add(dl, header);
        ok = true;
    }
    qfile_reader_free(r);
    if (close(fd) != 0)
        log_warn_errno("close %s", str_cstr(path));
  out:
    str_free(path);
    str_free(header);
    str_free(line);
    return ok;
}

static bool
dt_has(const struct dt_list *dl, const char *rcpt)
{
    for (size_t i = 0; i < dl->n; i++)
        if (strcasecmp(dl->v[i], rcpt) == 0)
            return true;
    return false;
}

static void
dt_free(struct dt_list *dl)
{
    for (size_t i = 0; i < dl->n; i++)
        mem_free(dl->v[i]);
    mem_free(dl->v);
}

/* ---- one address ------------------------------------------------------ */

/*
 * Deliver to "address": the queue recipient itself (depth 0) or an address
 * found in an alias, .forward or :include: list. Non-local addresses are
 * collected for re-queueing. mailbox_only ("\user", or a name that refers
 * to itself) skips the alias and .forward lookups.
 */
void
local_deliver_address(struct local_ctx *ctx, const char *address, int depth, bool mailbox_only)
{
    str_t  *canon = str_new(64), *local = str_new(64), *user = str_new(32), *ext = str_new(32);
    struct resolve_reply rr;
    struct local_owner pw;
    struct local_attr a;
    const char *at;

    resolve_reply_init(&rr);
    if (depth > LOCAL_MAX_DEPTH) {
        local_result(ctx, LOCAL_BOUNCE, "5.4.6", "mail forwarding loop for %s (expansion deeper "
                     "than %d levels)", ctx->rcpt, LOCAL_MAX_DEPTH);
        goto out;
    }
    if (depth == 0) {
        str_set_cstr(canon, address);
    } else {
        int     flags = rewrite_clnt("local", address, canon);

        if (flags & REWRITE_FLAG_FAIL) {
            local_result(ctx, LOCAL_DEFER, "4.3.0", "address rewriting service unavailable");
            goto out;
        }
        flags = resolve_clnt(ctx->rq->sender, str_cstr(canon), &rr);
        if (flags & RESOLVE_FLAG_FAIL) {
            local_result(ctx, LOCAL_DEFER, "4.3.0", "address resolver unavailable for %s",
                         str_cstr(canon));
            goto out;
        }
        if (flags & RESOLVE_FLAG_ERROR) {
            local_result(ctx, LOCAL_BOUNCE, "5.1.3", "bad address syntax: %s", str_cstr(canon));
            goto out;
        }
        if (!(flags & RESOLVE_CLASS_LOCAL)) {
            bool    have = false;

            for (size_t i = 0; i < ctx->nremote && !have; i++)
                have = strcmp(ctx->remote[i], str_cstr(rr.recipient)) == 0;
            if (!have) {
                ctx->remote = mem_grow_array(ctx->remote, &ctx->remote_cap, ctx->nremote + 1,
                                             sizeof(char *));
                ctx->remote[ctx->nremote++] = mem_strdup(str_cstr(rr.recipient));
            }
            goto out;
        }
        str_set_cstr(canon, str_cstr(rr.recipient));
    }

    /* user[+ext]@domain: the local part, lower case, split at the delimiter. */
    at = strrchr(str_cstr(canon), '@');
    str_set(local, str_cstr(canon), at ? (size_t) (at - str_cstr(canon)) : str_len(canon));
    str_lower(local);
    if (str_len(local) == 0) {
        local_result(ctx, LOCAL_BOUNCE, "5.1.3", "empty local part in %s", str_cstr(canon));
        goto out;
    }
    local_split_ext(str_cstr(local), local_conf.delimiter, user, ext);
    a.address = str_cstr(canon);
    a.user = str_cstr(user);
    a.extension = str_cstr(ext);
    a.local = str_cstr(local);
    a.domain = at ? at + 1 : "";
    a.depth = depth;

    if (!mailbox_only && local_alias(ctx, &a))
        goto out;
    if (strchr(a.user, '/') != NULL || a.user[0] == '.' || !local_owner_by_name(a.user, &pw)) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH && errno != EBADF && errno != EPERM)
            local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot look up user \"%s\": %s", a.user,
                         strerror(errno));
        else
            local_result(ctx, LOCAL_BOUNCE, "5.1.1", "unknown user: \"%s\"", a.user);
        goto out;
    }
    if (mailbox_only || !local_forward(ctx, &a, &pw))
        local_mailbox(ctx, &a, &pw);
    local_owner_free(&pw);
  out:
    resolve_reply_free(&rr);
    str_free(canon);
    str_free(local);
    str_free(user);
    str_free(ext);
}

/* ---- one queue recipient ---------------------------------------------- */

static void
ctx_free(struct local_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nseen; i++)
        mem_free(ctx->seen[i]);
    for (size_t i = 0; i < ctx->nchain; i++)
        mem_free(ctx->chain[i]);
    for (size_t i = 0; i < ctx->nremote; i++)
        mem_free(ctx->remote[i]);
    mem_free(ctx->seen);
    mem_free(ctx->chain);
    mem_free(ctx->remote);
    str_free(ctx->dsn);
    str_free(ctx->reason);
}

static void
deliver_rcpt(struct deliver_request *rq, size_t i, const struct dt_list *dl)
{
    struct local_ctx ctx;
    int     before;

    memset(&ctx, 0, sizeof(ctx));
    ctx.rq = rq;
    ctx.idx = i;
    ctx.rcpt = rq->rcpt[i].address;
    ctx.status = LOCAL_SENT;
    ctx.dsn = str_new(8);
    ctx.reason = str_new(128);

    if (dt_has(dl, ctx.rcpt)) {
        deliver_bounce(rq, i, LOCAL_RELAY, "5.4.6", "mail forwarding loop for %s", ctx.rcpt);
        goto out;
    }
    if (str_len(local_conf.alias_error) > 0) {
        deliver_defer(rq, i, LOCAL_RELAY, "4.3.0", "alias database unavailable: %s",
                      str_cstr(local_conf.alias_error));
        goto out;
    }
    local_deliver_address(&ctx, ctx.rcpt, 0, false);
    before = ctx.count;
    if (ctx.nremote > 0 && ctx.status != LOCAL_DEFER)
        local_forward_remote(&ctx);
    if (ctx.count == 0)
        local_result(&ctx, LOCAL_BOUNCE, "5.3.0", "alias or forward expansion gave no destination");
    else if (ctx.status == LOCAL_SENT && ctx.count > 1 && before > 0)
        str_append_printf(ctx.reason, ", and %d more destination%s", ctx.count - 1,
                          ctx.count > 2 ? "s" : "");
    switch (ctx.status) {
    case LOCAL_SENT:
        deliver_sent(rq, i, LOCAL_RELAY, str_cstr(ctx.dsn), "%s", str_cstr(ctx.reason));
        break;
    case LOCAL_BOUNCE:
        deliver_bounce(rq, i, LOCAL_RELAY, str_cstr(ctx.dsn), "%s", str_cstr(ctx.reason));
        break;
    case LOCAL_DEFER:
        deliver_defer(rq, i, LOCAL_RELAY, str_cstr(ctx.dsn), "%s", str_cstr(ctx.reason));
        break;
    }
  out:
    ctx_free(&ctx);
}

static void
local_deliver(struct deliver_request *rq, void *ctx)
{
    str_t  *err = str_new(64);
    struct dt_list dl = {0};

    if (!dt_read(rq, &dl, err)) {
        log_warn("%s: %s", rq->queue_id, str_cstr(err));
        for (size_t i = 0; i < rq->nrcpt; i++)
            deliver_defer(rq, i, LOCAL_RELAY, "4.3.0", "cannot read the message: %s",
                          str_cstr(err));
    } else {
        for (size_t i = 0; i < rq->nrcpt; i++)
            deliver_rcpt(rq, i, &dl);
    }
    dt_free(&dl);
    str_free(err);
}

static void
local_service(stream_t *client, config_t *cfg)
{
    deliver_serve(client, local_deliver, NULL);
}

static void
local_post_init(config_t *cfg)
{
    const char *raw;

    local_conf.cfg = cfg;
    local_conf.root = geteuid() == 0;
    local_conf.allow_commands = local_class_mask(config_str(cfg, "allow_mail_to_commands"));
    local_conf.allow_files = local_class_mask(config_str(cfg, "allow_mail_to_files"));
    raw = config_get_raw(cfg, "forward_path");
    local_conf.forward_path = raw ? raw : param_default(param_lookup("forward_path"), cfg);
    local_conf.home_mailbox = config_str(cfg, "home_mailbox");
    local_conf.spool_dir = config_str(cfg, "mail_spool_directory");
    local_conf.mailbox_size_limit = config_int(cfg, "mailbox_size_limit");
    local_conf.command_time_limit = config_time(cfg, "command_time_limit");
    local_conf.delimiter = config_str(cfg, "recipient_delimiter");
    local_conf.default_privs = config_str(cfg, "default_privs");
    local_conf.export_env = config_str(cfg, "export_environment");
    queue_init(cfg);
    rewrite_clnt_set_qdir(NULL);
    rewrite_clnt_set_service(config_str(cfg, "rewrite_service_name"));
    local_alias_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "local",
        .post_init = local_post_init,
        .service = local_service,
        .finish_on_term = true,     /* end the request under way at a stop */
    };

    single_server_main(argc, argv, &ops);
}
