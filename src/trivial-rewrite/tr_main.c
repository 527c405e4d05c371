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
 * One process serves many clients (the event skeleton), as Postfix's
 * does: smtpd, cleanup and qmgr processes keep their connection for their
 * whole life, so one process per client ran into the service's process
 * limit once about fifty SMTP sessions were open at a time, and every
 * further client waited until some connection went idle. Requests are
 * answered in the order they arrive; a lookup never waits for a client.
 *
 * SECURITY: runs as mail_owner, in queue_directory (chroot allowed: the
 * tables must then be reachable inside it). Its clients are other Postern
 * daemons, but requests are still treated as untrusted: small decoding
 * limits, exactly the expected attributes, no NUL bytes; a malformed
 * request is logged and the client dropped, as is a client that sends more
 * than one request's worth without reading the replies. It reads its tables
 * and writes nothing but its replies and log.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "clock.h"
#include "dict.h"
#include "events.h"
#include "log.h"
#include "mem.h"
#include "rewrite.h"
#include "server.h"

#define TR_MAX_VALUE    (ADDR_MAX_LEN * 4)  /* longer addresses are refused, not truncated */
#define TR_MAX_OUT      (32 * TR_MAX_VALUE) /* replies a client may leave unread */

static const struct attr_limits tr_limits = {
    .max_attrs = 8, .max_value = TR_MAX_VALUE, .max_total = 4 * TR_MAX_VALUE,
};

static rewrite_ctx_t *tr_ctx;
static int64_t tr_idle_ms;          /* ipc_idle: a client silent this long is let go */

/* One client connection: what came in, what goes out. */
struct tr_client {
    int     fd;
    str_t  *in;
    str_t  *out;
    attr_list_t *req;
    int64_t last_ms;                /* last request (or the connect) */
    struct tr_client *prev, *next;
};

static struct tr_client *tr_clients;

static void tr_sweep(void *ctx);

static void
tr_post_init(config_t *cfg)
{
    str_t  *err = str_new(0);

    tr_ctx = rewrite_ctx_new(cfg, err);
    if (tr_ctx == NULL)
        log_fatal("%s", str_cstr(err));
    str_free(err);
    tr_idle_ms = config_time(cfg, "ipc_idle") * 1000;
    event_timer_add(server_loop(), 1000, tr_sweep, NULL);
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
client_close(struct tr_client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        tr_clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_fd_del(server_loop(), c->fd);
    (void) close(c->fd);
    str_free(c->in);
    str_free(c->out);
    attr_list_free(c->req);
    mem_free(c);
    server_client_done();
}

/* Let go of clients that sent nothing for ipc_idle; they reconnect when needed. */
static void
tr_sweep(void *ctx)
{
    int64_t now = clock_mono_ms();

    for (struct tr_client *c = tr_clients, *next; c; c = next) {
        next = c->next;
        if (tr_idle_ms > 0 && now - c->last_ms >= tr_idle_ms && str_len(c->out) == 0)
            client_close(c);
    }
    event_timer_add(server_loop(), 1000, tr_sweep, NULL);
}

/* Answer the decoded request in c->req into c->out; false (logged) drops the client. */
static bool
handle_request(struct tr_client *c, str_t *why)
{
    attr_list_t *rep = attr_list_new();
    const char *request;
    bool    ok;

    if (attr_get_str(c->req, "request", &request) != ATTR_OK) {
        log_warn("bad request from client: %s", attr_last_error(c->req));
        attr_list_free(rep);
        return false;
    }
    if (strcmp(request, "rewrite") == 0) {
        ok = tr_rewrite(c->req, rep, why);
    } else if (strcmp(request, "resolve") == 0) {
        ok = tr_resolve(c->req, rep, why);
    } else {
        str_set_cstr(why, "unknown request ");
        dict_quote(why, request, strlen(request));
        ok = false;
    }
    if (!ok)
        log_warn("bad request from client: %s", str_cstr(why));
    else
        attr_encode(rep, c->out);
    attr_list_free(rep);
    return ok;
}

static void
client_io(int fd, int events, void *ctx)
{
    struct tr_client *c = ctx;
    str_t  *why = str_new(0);
    char    buf[4096];

    if (events & EVENT_READ) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            if (n < 0 && errno != ECONNRESET)
                log_warn("bad request from client: read error: %s", strerror(errno));
            goto drop;
        }
        if (n > 0)
            str_append(c->in, buf, (size_t) n);
        for (;;) {
            size_t  used = 0;
            int     rc;

            str_reset(why);
            rc = attr_decode(str_cstr(c->in), str_len(c->in), &used, &tr_limits, c->req, why);
            if (rc == ATTR_INCOMPLETE)
                break;
            if (rc != ATTR_OK) {
                log_warn("bad request from client: %s", str_cstr(why));
                goto drop;
            }
            c->last_ms = clock_mono_ms();
            if (!handle_request(c, why))
                goto drop;
            memmove(c->in->data, c->in->data + used, str_len(c->in) - used);
            str_truncate(c->in, str_len(c->in) - used);
        }
        /*
         * attr_decode refuses a request longer than tr_limits allow; replies
         * are bounded here: no client of ours sends on without reading them.
         */
        if (str_len(c->out) > TR_MAX_OUT) {
            log_warn("bad request from client: more than %d bytes of replies not read", TR_MAX_OUT);
            goto drop;
        }
    }
    if (server_client_flush(c->fd, c->out, client_io, c)) {
        str_free(why);
        return;
    }
  drop:
    client_close(c);
    str_free(why);
}

static void
tr_accept(int fd, config_t *cfg)
{
    struct tr_client *c = mem_zalloc(sizeof(*c));
    attr_list_t *hello = attr_list_new();

    c->fd = fd;
    c->in = str_new(256);
    c->out = str_new(256);
    c->req = attr_list_new();
    c->last_ms = clock_mono_ms();
    c->next = tr_clients;
    if (tr_clients)
        tr_clients->prev = c;
    tr_clients = c;
    attr_put_str(hello, "protocol", REWRITE_PROTOCOL);
    attr_encode(hello, c->out);
    attr_list_free(hello);
    if (!server_client_flush(c->fd, c->out, client_io, c))
        client_close(c);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "trivial-rewrite",
        .post_init = tr_post_init,
        .accept = tr_accept,
        .pre_exit = tr_pre_exit,
    };

    event_server_main(argc, argv, &ops);
}
