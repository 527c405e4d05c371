/*
 * ipc_call.c - a non-blocking request/reply to another service; see
 * ipc_call.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "ipc_call.h"
#include "mem.h"

#define CALL_READ_CHUNK  4096
#define CALL_REPLY_MAX   (1024 * 1024)  /* a greeting and a reply are far smaller */

enum call_state {
    CALL_GREETING,              /* waiting for {protocol = proto} */
    CALL_SENDING,
    CALL_WAITING,               /* for the reply */
};

struct ipc_call {
    event_loop_t *loop;
    int     fd;
    uint64_t timer;
    enum call_state state;
    char   *proto;
    char   *service;
    str_t  *out;                /* the encoded request */
    size_t  out_off;
    str_t  *in;
    ipc_call_fn fn;
    void   *ctx;
};

static void
call_free(struct ipc_call *c)
{
    if (c->fd >= 0) {
        event_fd_del(c->loop, c->fd);
        (void) close(c->fd);
    }
    if (c->timer)
        event_timer_cancel(c->loop, c->timer);
    mem_free(c->proto);
    mem_free(c->service);
    str_free(c->out);
    str_free(c->in);
    mem_free(c);
}

/* The end of a call: free it, then tell the caller. */
static void
call_done(struct ipc_call *c, attr_list_t *reply, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
call_done(struct ipc_call *c, attr_list_t *reply, const char *fmt, ...)
{
    ipc_call_fn fn = c->fn;
    void   *ctx = c->ctx;
    str_t  *why = str_new(0);

    if (fmt) {
        va_list ap;

        str_printf(why, "%s service: ", c->service);
        va_start(ap, fmt);
        str_append_vprintf(why, fmt, ap);
        va_end(ap);
    }
    call_free(c);
    fn(ctx, reply, reply ? NULL : str_cstr(why));
    str_free(why);
}

static void call_event(int fd, int events, void *ctx);

static void
call_timeout(void *ctx)
{
    struct ipc_call *c = ctx;

    c->timer = 0;
    call_done(c, NULL, "%s", c->state == CALL_WAITING ? "no reply in time" : "timed out");
}

static void
call_send(struct ipc_call *c)
{
    c->state = CALL_SENDING;
    while (c->out_off < str_len(c->out)) {
        ssize_t n = send(c->fd, str_cstr(c->out) + c->out_off, str_len(c->out) - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_fd_add(c->loop, c->fd, EVENT_WRITE, call_event, c);
            return;
        }
        if (n <= 0) {
            call_done(c, NULL, "write: %s", n < 0 ? strerror(errno) : "no progress");
            return;
        }
        c->out_off += (size_t) n;
    }
    c->state = CALL_WAITING;
    event_fd_add(c->loop, c->fd, EVENT_READ, call_event, c);
}

/* A whole message is in c->in; act on it. */
static void
call_message(struct ipc_call *c, attr_list_t *al)
{
    const char *proto = NULL;

    if (c->state == CALL_GREETING) {
        if (attr_get_str(al, "protocol", &proto) != ATTR_OK || strcmp(proto, c->proto) != 0) {
            attr_list_free(al);
            call_done(c, NULL, "protocol mismatch: expected \"%s\"", c->proto);
            return;
        }
        attr_list_free(al);
        call_send(c);
        return;
    }
    call_done(c, al, NULL);
    attr_list_free(al);
}

static void
call_event(int fd, int events, void *ctx)
{
    struct ipc_call *c = ctx;
    char    buf[CALL_READ_CHUNK];
    ssize_t n;

    if (c->state == CALL_SENDING) {
        call_send(c);
        return;
    }
    do
        n = read(fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        call_done(c, NULL, "%s", n == 0 ? "connection closed without a reply" : strerror(errno));
        return;
    }
    str_append(c->in, buf, (size_t) n);
    if (str_len(c->in) > CALL_REPLY_MAX) {
        call_done(c, NULL, "reply too large");
        return;
    }

    attr_list_t *al = attr_list_new();
    str_t  *err = str_new(0);
    size_t  used = 0;
    int     rc = attr_decode(str_cstr(c->in), str_len(c->in), &used, NULL, al, err);

    if (rc == ATTR_OK) {
        size_t  rest = str_len(c->in) - used;

        memmove(c->in->data, c->in->data + used, rest);
        str_truncate(c->in, rest);
        str_free(err);
        call_message(c, al);        /* frees al; c may be gone */
        return;
    }
    attr_list_free(al);
    if (rc != ATTR_INCOMPLETE)
        call_done(c, NULL, "malformed reply: %s", str_cstr(err));
    str_free(err);
}

struct ipc_call *
ipc_call_start(event_loop_t *loop, const char *class, const char *service, const char *proto,
               const attr_list_t *request, int timeout_s, ipc_call_fn fn, void *ctx, str_t *why)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    str_t  *path = str_new(64);
    struct ipc_call *c;
    int     fd;

    ipc_path(path, NULL, class, service);
    if (str_len(path) >= sizeof(sun.sun_path)) {
        str_printf(why, "connect to %s: path too long", str_cstr(path));
        str_free(path);
        return NULL;
    }
    memcpy(sun.sun_path, str_cstr(path), str_len(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        str_printf(why, "socket: %s", strerror(errno));
        str_free(path);
        return NULL;
    }
    while (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS)
            break;
        str_printf(why, "connect to %s: %s", str_cstr(path), strerror(errno));
        (void) close(fd);
        str_free(path);
        return NULL;
    }
    str_free(path);
    c = mem_zalloc(sizeof(*c));
    c->loop = loop;
    c->fd = fd;
    c->state = CALL_GREETING;
    c->proto = mem_strdup(proto);
    c->service = mem_strdup(service);
    c->out = str_new(256);
    c->in = str_new(256);
    c->fn = fn;
    c->ctx = ctx;
    attr_encode(request, c->out);
    c->timer = event_timer_add(loop, (int64_t) timeout_s * 1000, call_timeout, c);
    event_fd_add(loop, fd, EVENT_READ, call_event, c);
    return c;
}

void
ipc_call_cancel(struct ipc_call *call)
{
    if (call)
        call_free(call);
}
