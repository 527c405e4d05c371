/*
 * tr_main.c - the trivial-rewrite daemon: canonicalizes and resolves
 * addresses for smtpd, cleanup, qmgr and the other daemons.
 *
 * Protocol (attr codec, see rewrite_clnt.h): the server sends
 * {protocol = "trivial-rewrite"}, then answers requests until the client
 * closes the connection or sends nothing for ipc_idle seconds:
 *   {request = "rewrite", rule = "local"|"remote", address = A}
 *       -> {flags = F, address = CANONICAL}
 *   {request = "resolve", sender = S, address = A}
 *       -> {flags = F, transport = T, nexthop = H, recipient = R}
 * The rules themselves are in src/lib/rewrite.c (shared with the unit
 * tests); tables are opened once, in post_init.
 *
 * SECURITY: runs as mail_owner on the single-client skeleton, in
 * queue_directory (chroot allowed: the tables must then be reachable
 * inside it). Its clients are other Postern daemons, but requests are still
 * treated as untrusted: small decoding limits, exactly the expected
 * attributes, no NUL bytes; a malformed request is logged and the client
 * dropped. It reads its tables and writes nothing but its replies and log.
 */
#include <string.h>

#include "addr.h"
#include "attr.h"
#include "dict.h"
#include "log.h"
#include "rewrite.h"
#include "server.h"

#define TR_MAX_VALUE    (ADDR_MAX_LEN * 4)  /* longer addresses are refused, not truncated */

static const struct attr_limits tr_limits = {
    .max_attrs = 8, .max_value = TR_MAX_VALUE, .max_total = 4 * TR_MAX_VALUE,
};

static rewrite_ctx_t *tr_ctx;

static void
tr_post_init(config_t *cfg)
{
    str_t  *err = str_new(0);

    tr_ctx = rewrite_ctx_new(cfg, err);
    if (tr_ctx == NULL)
        log_fatal("%s", str_cstr(err));
    str_free(err);
}

static void
tr_pre_exit(void)
{
    rewrite_ctx_free(tr_ctx);
    tr_ctx = NULL;
}

/* Answer one rewrite request; false when the request is malformed (why set). */
static bool
tr_rewrite(attr_list_t *req, attr_list_t *rep, str_t *why)
{
    const char *rule, *addr;
    str_t  *out;
    int     flags;

    if (attr_get_str(req, "rule", &rule) != ATTR_OK || attr_get_str(req, "address", &addr) != ATTR_OK) {
        str_set_cstr(why, attr_last_error(req));
        return false;
    }
    if (attr_check_end(req, why) != ATTR_OK)
        return false;
    if (strcmp(rule, "local") != 0 && strcmp(rule, "remote") != 0) {
        str_set_cstr(why, "unknown rewrite rule ");
        dict_quote(why, rule, strlen(rule));
        return false;
    }
    out = str_new(64);
    flags = rewrite_address(tr_ctx, rule, addr, out);
    attr_put_int(rep, "flags", flags);
    attr_put_str(rep, "address", str_cstr(out));
    str_free(out);
    return true;
}

static bool
tr_resolve(attr_list_t *req, attr_list_t *rep, str_t *why)
{
    const char *sender, *addr;
    struct resolve_reply r;

    if (attr_get_str(req, "sender", &sender) != ATTR_OK
        || attr_get_str(req, "address", &addr) != ATTR_OK) {
        str_set_cstr(why, attr_last_error(req));
        return false;
    }
    if (attr_check_end(req, why) != ATTR_OK)
        return false;
    resolve_reply_init(&r);
    resolve_address(tr_ctx, sender, addr, &r);
    if (r.flags & RESOLVE_FLAG_FAIL) {
        /* The reason stays here in the log; the client only learns "try later". */
        str_reset(why);
        dict_quote(why, addr, strlen(addr));
        log_warn("cannot resolve %s: %s", str_cstr(why), str_cstr(r.transport));
        str_reset(r.transport);
        str_reset(r.nexthop);
    }
    attr_put_int(rep, "flags", r.flags);
    attr_put_str(rep, "transport", str_cstr(r.transport));
    attr_put_str(rep, "nexthop", str_cstr(r.nexthop));
    attr_put_str(rep, "recipient", str_cstr(r.recipient));
    resolve_reply_free(&r);
    return true;
}

static void
tr_service(stream_t *client, config_t *cfg)
{
    attr_list_t *req = attr_list_new(), *rep = attr_list_new();
    str_t  *why = str_new(0);
    long    idle_ms = config_time(cfg, "ipc_idle") * 1000;

    stream_set_timeout(client, (int) config_time(cfg, "ipc_timeout"));
    if (attr_send_protocol(client, REWRITE_PROTOCOL) != ATTR_OK)
        goto out;
    for (;;) {
        const char *request;
        bool    ok;
        int     rc;

        /* A client that sends nothing for ipc_idle is let go; it reconnects when needed. */
        if (stream_pending(client) == 0
            && stream_wait_readable(client, idle_ms > 0x7fffffff ? 0x7fffffff : (int) idle_ms)
            != STREAM_OK)
            break;
        str_reset(why);
        rc = attr_read(client, &tr_limits, req, why);
        if (rc == ATTR_EOF)
            break;
        if (rc != ATTR_OK) {
            log_warn("bad request from client: %s",
                     rc == ATTR_IOERR ? stream_strstatus(stream_status(client)) : str_cstr(why));
            break;
        }
        attr_list_reset(rep);
        if (attr_get_str(req, "request", &request) != ATTR_OK) {
            log_warn("bad request from client: %s", attr_last_error(req));
            break;
        }
        if (strcmp(request, "rewrite") == 0) {
            ok = tr_rewrite(req, rep, why);
        } else if (strcmp(request, "resolve") == 0) {
            ok = tr_resolve(req, rep, why);
        } else {
            str_set_cstr(why, "unknown request ");
            dict_quote(why, request, strlen(request));
            ok = false;
        }
        if (!ok) {
            log_warn("bad request from client: %s", str_cstr(why));
            break;
        }
        if (attr_write(client, rep) != ATTR_OK)
            break;
    }
out:
    attr_list_free(req);
    attr_list_free(rep);
    str_free(why);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "trivial-rewrite",
        .post_init = tr_post_init,
        .service = tr_service,
        .pre_exit = tr_pre_exit,
    };

    single_server_main(argc, argv, &ops);
}
