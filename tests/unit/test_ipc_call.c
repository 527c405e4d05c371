/*
 * test_ipc_call.c - unit tests for the non-blocking request/reply
 * (ipc_call.c): a forked child plays the service on private/svc in a
 * temporary directory, once per way a service can behave.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "clock.h"
#include "events.h"
#include "ipc_call.h"
#include "str.h"
#include "unit.h"

enum behaviour {
    SERVE_OK,               /* greeting, read the request, reply */
    SERVE_WRONG_PROTOCOL,
    SERVE_CLOSE,            /* greeting, read the request, close */
    SERVE_GARBAGE,          /* greeting, then bytes that are no attribute list */
    SERVE_SILENT,           /* accept and say nothing */
};

struct result {
    bool    called;
    int     calls;
    char    request[32];    /* the "request" value the reply echoed */
    char    why[256];
};

static void
on_done(void *ctx, attr_list_t *reply, const char *why)
{
    struct result *r = ctx;
    const char *v = NULL;

    r->called = true;
    r->calls++;
    if (reply && attr_get_str(reply, "echo", &v) == ATTR_OK)
        snprintf(r->request, sizeof(r->request), "%s", v);
    snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
}

/* The child: one client, then exit. */
static void
serve(int lfd, enum behaviour b)
{
    int     fd = accept(lfd, NULL, NULL);
    str_t  *out = str_new(0);
    attr_list_t *al = attr_list_new();
    char    buf[4096];
    ssize_t n;

    if (fd < 0)
        _exit(1);
    attr_put_str(al, "protocol", b == SERVE_WRONG_PROTOCOL ? "other" : "svc");
    attr_encode(al, out);
    if (b != SERVE_SILENT && write(fd, str_cstr(out), str_len(out)) < 0)
        _exit(1);
    if (b == SERVE_SILENT || b == SERVE_WRONG_PROTOCOL) {
        sleep(3);
        _exit(0);
    }
    if ((n = read(fd, buf, sizeof(buf))) <= 0)     /* the request: small, one read */
        _exit(1);
    if (b == SERVE_GARBAGE) {
        if (write(fd, "x:y,", 4) < 0)
            _exit(1);
        sleep(3);
        _exit(0);
    }
    if (b == SERVE_OK) {
        attr_list_t *req = attr_list_new();
        const char *v = "?";
        size_t  used;

        if (attr_decode(buf, (size_t) n, &used, NULL, req, out) == ATTR_OK)
            (void) attr_get_str(req, "request", &v);
        attr_list_free(al);
        al = attr_list_new();
        attr_put_str(al, "echo", v);
        str_reset(out);
        attr_encode(al, out);
        if (write(fd, str_cstr(out), str_len(out)) < 0)
            _exit(1);
    }
    _exit(0);
}

/* Run one call against a child that behaves as b; the result in r. */
static void
run(enum behaviour b, struct result *r)
{
    char    dir[] = "/tmp/test_ipc_call.XXXXXX";
    char    old[4096];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int     lfd;
    pid_t   pid;

    memset(r, 0, sizeof(*r));
    if (mkdtemp(dir) == NULL || getcwd(old, sizeof(old)) == NULL || chdir(dir) != 0
        || mkdir("private", 0700) != 0)
        abort();
    strcpy(sun.sun_path, "private/svc");
    if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0
        || bind(lfd, (struct sockaddr *) &sun, sizeof(sun)) != 0 || listen(lfd, 4) != 0)
        abort();
    if ((pid = fork()) == 0)
        serve(lfd, b);
    close(lfd);

    event_loop_t *loop = event_loop_new();
    attr_list_t *req = attr_list_new();
    str_t  *why = str_new(0);
    int64_t start = clock_mono_ms();

    attr_put_str(req, "request", "flush");
    CHECK(ipc_call_start(loop, "private", "svc", "svc", req, 1, on_done, r, why) != NULL);
    while (!r->called && clock_mono_ms() - start < 5000)
        event_loop_run_once(loop, 100);
    event_loop_run_once(loop, 10);      /* no second callback */
    CHECK_INTEQ(r->calls, 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    attr_list_free(req);
    str_free(why);
    event_loop_free(loop);
    unlink("private/svc");
    rmdir("private");
    if (chdir(old) != 0)
        abort();
    rmdir(dir);
}

TEST(reply_arrives)
{
    struct result r;

    run(SERVE_OK, &r);
    CHECK_STREQ(r.request, "flush");
    CHECK_STREQ(r.why, "");
}

TEST(failures_say_why)
{
    struct result r;

    run(SERVE_WRONG_PROTOCOL, &r);
    CHECK(strstr(r.why, "svc service: protocol mismatch") != NULL);
    run(SERVE_CLOSE, &r);
    CHECK(strstr(r.why, "closed without a reply") != NULL);
    run(SERVE_GARBAGE, &r);
    CHECK(strstr(r.why, "malformed reply") != NULL);
    run(SERVE_SILENT, &r);
    CHECK(strstr(r.why, "timed out") != NULL);
}

TEST(no_service_fails_at_once)
{
    event_loop_t *loop = event_loop_new();
    attr_list_t *req = attr_list_new();
    str_t  *why = str_new(0);
    struct result r = {0};

    CHECK(ipc_call_start(loop, "no-such-dir", "svc", "svc", req, 1, on_done, &r, why) == NULL);
    CHECK(strstr(str_cstr(why), "connect to no-such-dir/svc") != NULL);
    CHECK(!r.called);
    attr_list_free(req);
    str_free(why);
    event_loop_free(loop);
}
