/*
 * bounce - the delivery status notification service.
 *
 * master.cf:  bounce  unix  -  -  n  -  0  bounce
 *             defer   unix  -  -  n  -  0  bounce
 *
 * A single server: one client (qmgr) per connection, one request each, as
 * bounce_proto.h describes. For a request it reads the message's log
 * (bounce/ for "flush", defer/ for "warn", trace/ for "trace"), the
 * original queue file (queue_name/queue_id), decides who gets a notice,
 * has bounce_notice.c compose and queue it, and answers
 * {status, queue_id[, reason]}.
 *
 * Who gets what:
 *   - the sender, with the recipients whose DSN NOTIFY asks for this kind
 *     of notice (no NOTIFY: failures and delays; NEVER: nothing);
 *   - sender <> (a bounce that failed): no notice to the sender; a failure
 *     goes to 2bounce_notice_recipient when notify_classes has "2bounce";
 *     mail from double_bounce_sender never gets a notice at all;
 *   - the postmaster, headers only, when notify_classes has "bounce"
 *     (failures, to bounce_notice_recipient) or "delay" (delays, to
 *     delay_notice_recipient).
 * Postmaster notices are sent from double_bounce_sender, so that one that
 * fails in turn is dropped instead of bouncing again.
 *
 * After "flush" and "trace" the log is removed once the notices are
 * queued; the defer log of "warn" stays (qmgr still needs it). When the
 * notice to the sender cannot be queued, the reply is an error and the
 * log stays, so qmgr can ask again.
 *
 * SECURITY: runs as mail_owner in queue_directory. The request comes from
 * qmgr over private/ but is checked anyway: request kind, queue name and
 * queue ID syntax (so no path can be built from it), sender length.
 * Queue files and logs are opened without following symbolic links.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "bounce.h"
#include "bounce_log.h"
#include "bounce_proto.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "rec_type.h"
#include "server.h"
#include "str.h"

#define DSN_ENVID_MAX   1024        /* longest ENVID accepted in a request */
#define REQUEST_LIMITS  (&request_limits)

static const struct attr_limits request_limits = {
    .max_attrs = 16,
    .max_value = ADDR_MAX_LEN + DSN_ENVID_MAX,
    .max_total = 64 * 1024,
};

struct request {
    const char *request;
    const char *queue_name;
    const char *queue_id;
    const char *sender;
    const char *dsn_envid;
    long long dsn_ret;
};

/* How each request kind is handled. */
struct kind_info {
    const char *request;
    enum bounce_kind kind;
    const char *log_dir;
    int     notify_bit;             /* the DSN NOTIFY bit that selects it */
    const char *pm_class;           /* notify_classes entry for a postmaster copy */
    const char *pm_param;           /* and the parameter naming the postmaster */
    const char *what;               /* for log lines */
    bool    remove_log;
};

static const struct kind_info kinds[] = {
    {BOUNCE_REQ_FLUSH, BOUNCE_KIND_FAILURE, BOUNCE_LOG_BOUNCE, DSN_NOTIFY_FAILURE, "bounce",
     "bounce_notice_recipient", "non-delivery notification", true},
    {BOUNCE_REQ_WARN, BOUNCE_KIND_DELAY, BOUNCE_LOG_DEFER, DSN_NOTIFY_DELAY, "delay",
     "delay_notice_recipient", "delay status notification", false},
    {BOUNCE_REQ_TRACE, BOUNCE_KIND_SUCCESS, BOUNCE_LOG_TRACE, DSN_NOTIFY_SUCCESS, NULL, NULL,
     "delivery status notification", true},
};

/* True when the comma/space separated list holds word (case-insensitive). */
static bool
list_has(const char *list, const char *word)
{
    size_t  wl = strlen(word);

    for (const char *p = list; *p;) {
        size_t  n;

        p += strspn(p, ", \t");
        n = strcspn(p, ", \t");
        if (n == wl && strncasecmp(p, word, n) == 0)
            return true;
        p += n;
    }
    return false;
}

static bool
notify_class(config_t *cfg, const char *cls)
{
    return list_has(config_str(cfg, "notify_classes"), cls);
}

/* The envelope sender of postmaster notices, qualified. */
static void
double_bounce(config_t *cfg, str_t *out)
{
    bounce_qualify(cfg, out, config_str(cfg, "double_bounce_sender"));
}

static bool
is_double_bounce(config_t *cfg, const char *sender)
{
    str_t  *dbl = str_new(64);
    bool    same;

    double_bounce(cfg, dbl);
    same = strcasecmp(sender, str_cstr(dbl)) == 0
        || strcasecmp(sender, config_str(cfg, "double_bounce_sender")) == 0;
    str_free(dbl);
    return same;
}

/* The NOTIFY mask of an entry: from the log, else from the queue file. */
static int
entry_notify(const struct bounce_original *orig, const struct bounce_log_entry *e)
{
    if (e->dsn_notify)
        return e->dsn_notify;
    if (orig->have_file && e->offset >= 0)
        for (size_t i = 0; i < orig->qf.rcpt_count; i++)
            if ((long long) orig->qf.rcpts[i].offset == e->offset)
                return orig->qf.rcpts[i].notify;
    return 0;
}

/* Does this recipient's NOTIFY ask for this kind of notice? */
static bool
notify_wanted(const struct kind_info *k, int notify)
{
    if (notify & DSN_NOTIFY_NEVER)
        return false;
    if (notify == 0)
        return true;        /* default: failures and delays; a trace log exists only on request */
    return (notify & k->notify_bit) != 0;
}

/* Open and read the original queue file; a missing or bad one is only a warning. */
static void
open_original(struct bounce_original *orig)
{
    str_t  *path = str_new(64), *err = str_new(0);

    orig->fd = -1;
    orig->have_file = false;
    queue_path(path, orig->queue_name, orig->queue_id);
    orig->fd = open(str_cstr(path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (orig->fd < 0) {
        log_warn("%s: open %s: %s; the notice goes without the original message",
                 orig->queue_id, str_cstr(path), strerror(errno));
    } else if (qfile_read(orig->fd, str_cstr(path), QFILE_FLAG_QUEUE, &orig->qf, err)
               != QFILE_DONE) {
        log_warn("%s: %s; the notice goes without the original message", orig->queue_id,
                 str_cstr(err));
    } else {
        orig->have_file = true;
    }
    str_free(path);
    str_free(err);
}

/* Queue one notice and log it; 0, or -1 (temporary: why says why). */
static int
send_notice(config_t *cfg, const struct bounce_original *orig, const struct kind_info *k,
            const struct bounce_notice *n, const char *who, str_t *new_id, str_t *why)
{
    int     rc = bounce_notice_send(cfg, orig, n, new_id, why);

    if (rc == 0) {
        log_info("%s: %s %s: %s", orig->queue_id, who, k->what, str_cstr(new_id));
        return 0;
    }
    if (rc == -2) {
        /* Refused for good (e.g. too big): retrying cannot help. */
        log_warn("%s: %s %s not sent: %s", orig->queue_id, who, k->what, str_cstr(why));
        str_reset(new_id);
        return 0;
    }
    log_warn("%s: %s %s failed: %s", orig->queue_id, who, k->what, str_cstr(why));
    return -1;
}

/*
 * Serve one request. Returns 0 (notices queued or none due; new_id holds
 * the sender's notice or is empty), or -1 with reason set.
 */
static int
bounce_handle(config_t *cfg, const struct request *rq, const struct kind_info *k, str_t *new_id,
              str_t *reason)
{
    struct bounce_log log = {0};
    struct bounce_original orig = {
        .queue_name = rq->queue_name,
        .queue_id = rq->queue_id,
        .sender = rq->sender,
        .dsn_envid = rq->dsn_envid,
        .dsn_ret = (int) rq->dsn_ret,
        .fd = -1,
    };
    const struct bounce_log_entry **sel = NULL;
    size_t  nsel = 0;
    str_t  *err = str_new(0), *dbl = str_new(64), *pm_id = str_new(0);
    int     rc = -1, got;

    str_reset(new_id);
    got = bounce_log_read(k->log_dir, rq->queue_id, &log, err);
    if (got < 0) {
        str_printf(reason, "4.3.0 %s", str_cstr(err));
        log_warn("%s: %s", rq->queue_id, str_cstr(err));
        goto out;
    }
    if (got == 0) {
        log_info("%s: no %s log: no %s", rq->queue_id, k->log_dir, k->what);
        rc = 0;
        goto out;
    }
    if (log.skipped)
        log_warn("%s: %s log: %zu malformed block(s) ignored, the first at %s", rq->queue_id,
                 k->log_dir, log.skipped, str_cstr(log.problem));
    if (k->kind == BOUNCE_KIND_DELAY)
        bounce_log_newest(&log);
    open_original(&orig);
    if (orig.have_file) {
        const char *v;

        if (*orig.dsn_envid == 0 && (v = qfile_attr(&orig.qf, REC_ATTR_DSN_ENVID)) != NULL)
            orig.dsn_envid = v;
        if (orig.dsn_ret == 0 && (v = qfile_attr(&orig.qf, REC_ATTR_DSN_RET)) != NULL)
            orig.dsn_ret = strcmp(v, "2") == 0 ? DSN_RET_HDRS : DSN_RET_FULL;
    }
    double_bounce(cfg, dbl);
    sel = mem_array(log.count ? log.count : 1, sizeof(*sel));

    if (*rq->sender == 0 || is_double_bounce(cfg, rq->sender)) {
        /* Never bounce a bounce to its (null) sender. */
        if (k->kind != BOUNCE_KIND_FAILURE) {
            log_info("%s: sender is <%s>: no %s", rq->queue_id, rq->sender, k->what);
        } else if (*rq->sender != 0) {
            log_info("%s: mail from <%s> failed: dropped, no %s", rq->queue_id, rq->sender,
                     k->what);
        } else if (!notify_class(cfg, "2bounce")) {
            log_info("%s: sender is <>: no %s (notify_classes has no 2bounce)", rq->queue_id,
                     k->what);
        } else if (log.count > 0) {
            struct bounce_notice n = {
                .kind = k->kind, .recipient = config_str(cfg, "2bounce_notice_recipient"),
                .env_sender = str_cstr(dbl), .postmaster = true, .headers_only = false,
                .entries = sel, .count = log.count,
            };

            for (size_t i = 0; i < log.count; i++)
                sel[i] = &log.entries[i];
            if (send_notice(cfg, &orig, k, &n, "postmaster", new_id, reason) != 0)
                goto out;
        }
    } else {
        for (size_t i = 0; i < log.count; i++)
            if (notify_wanted(k, entry_notify(&orig, &log.entries[i])))
                sel[nsel++] = &log.entries[i];
        if (nsel > 0) {
            struct bounce_notice n = {
                .kind = k->kind, .recipient = rq->sender, .env_sender = "",
                .postmaster = false, .headers_only = false, .entries = sel, .count = nsel,
            };

            if (send_notice(cfg, &orig, k, &n, "sender", new_id, reason) != 0)
                goto out;
        } else {
            log_info("%s: no %s: DSN NOTIFY excludes every recipient", rq->queue_id, k->what);
        }
        if (k->pm_class && notify_class(cfg, k->pm_class) && log.count > 0) {
            struct bounce_notice n = {
                .kind = k->kind, .recipient = config_str(cfg, k->pm_param),
                .env_sender = str_cstr(dbl), .postmaster = true, .headers_only = true,
                .entries = sel, .count = log.count,
            };

            for (size_t i = 0; i < log.count; i++)
                sel[i] = &log.entries[i];
            /* The sender's notice is queued: a failed copy is only a warning. */
            (void) send_notice(cfg, &orig, k, &n, "postmaster", pm_id, err);
        }
    }
    if (k->remove_log && bounce_log_remove(k->log_dir, rq->queue_id) != 0)
        log_warn("%s: cannot remove the %s log: %s", rq->queue_id, k->log_dir, strerror(errno));
    rc = 0;
  out:
    if (orig.fd >= 0)
        close(orig.fd);
    if (orig.have_file)
        qfile_free(&orig.qf);
    mem_free(sel);
    bounce_log_free(&log);
    str_free(err);
    str_free(dbl);
    str_free(pm_id);
    return rc;
}

/* Read and check the request; NULL kind with why set when it is bad. */
static const struct kind_info *
read_request(stream_t *client, attr_list_t *al, struct request *rq, str_t *why)
{
    const struct kind_info *k = NULL;
    int     rc;

    rc = attr_read(client, REQUEST_LIMITS, al, why);
    if (rc == ATTR_EOF) {
        str_set_cstr(why, "client closed the connection before a request");
        return NULL;
    }
    if (rc != ATTR_OK)
        return NULL;
    if (attr_get_str(al, "request", &rq->request) != ATTR_OK
        || attr_get_str(al, "queue_name", &rq->queue_name) != ATTR_OK
        || attr_get_str(al, "queue_id", &rq->queue_id) != ATTR_OK
        || attr_get_str(al, "sender", &rq->sender) != ATTR_OK) {
        str_set_cstr(why, attr_last_error(al));
        return NULL;
    }
    rc = attr_get_str(al, "dsn_envid", &rq->dsn_envid);
    if (rc == ATTR_MISSING)
        rq->dsn_envid = "";
    else if (rc != ATTR_OK) {
        str_set_cstr(why, attr_last_error(al));
        return NULL;
    }
    rc = attr_get_int(al, "dsn_ret", 0, DSN_RET_HDRS, &rq->dsn_ret);
    if (rc == ATTR_MISSING)
        rq->dsn_ret = 0;
    else if (rc != ATTR_OK) {
        str_set_cstr(why, attr_last_error(al));
        return NULL;
    }
    if (attr_check_end(al, why) != ATTR_OK)
        return NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(rq->request, kinds[i].request) == 0)
            k = &kinds[i];
    if (k == NULL)
        str_set_cstr(why, "unknown request");
    else if (!queue_name_ok(rq->queue_name))
        str_set_cstr(why, "bad queue_name");
    else if (!queue_id_ok(rq->queue_id))
        str_set_cstr(why, "bad queue_id");
    else if (strlen(rq->sender) > ADDR_MAX_LEN || strpbrk(rq->sender, "\r\n") != NULL)
        str_set_cstr(why, "bad sender");
    else if (strpbrk(rq->dsn_envid, "\r\n") != NULL)
        str_set_cstr(why, "bad dsn_envid");
    else
        return k;
    return NULL;
}

static void
bounce_service(stream_t *client, config_t *cfg)
{
    attr_list_t *al = attr_list_new();
    struct request rq = {0};
    const struct kind_info *k;
    str_t  *why = str_new(0), *new_id = str_new(0);
    int     rc;

    if (attr_send_protocol(client, BOUNCE_PROTOCOL) != ATTR_OK) {
        log_warn("cannot greet the client: %s", stream_strstatus(stream_status(client)));
        goto out;
    }
    if ((k = read_request(client, al, &rq, why)) == NULL) {
        log_warn("bad request: %s", str_len(why) ? str_cstr(why) : "malformed");
        attr_list_reset(al);
        attr_put_int(al, "status", 1);
        attr_put_str(al, "queue_id", "");
        attr_put_str(al, "reason", "5.3.0 bad bounce request");
        (void) attr_write(client, al);
        goto out;
    }
    rc = bounce_handle(cfg, &rq, k, new_id, why);
    /* The request's strings live in al: copy nothing, build the reply anew. */
    {
        attr_list_t *reply = attr_list_new();

        attr_put_int(reply, "status", rc == 0 ? 0 : 1);
        attr_put_str(reply, "queue_id", str_cstr(new_id));
        if (rc != 0)
            attr_put_str(reply, "reason", str_cstr(why));
        if (attr_write(client, reply) != ATTR_OK)
            log_warn("%s: cannot send the reply: %s", rq.queue_id,
                     stream_strstatus(stream_status(client)));
        attr_list_free(reply);
    }
  out:
    attr_list_free(al);
    str_free(why);
    str_free(new_id);
}

static void
bounce_post_init(config_t *cfg)
{
    queue_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "bounce",
        .post_init = bounce_post_init,
        .service = bounce_service,
        .finish_on_term = true,     /* end the request under way at a stop */
    };

    single_server_main(argc, argv, &ops);
}
