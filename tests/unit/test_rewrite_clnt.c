/*
 * test_rewrite_clnt.c - the trivial-rewrite client against a fake server.
 *
 * A child process listens on TMP/private/rewrite and answers like the real
 * service, except that every reply carries a serial number (in the nexthop
 * or in the rewritten address), so the tests can tell a cached reply from
 * a fresh one, and it closes each connection after CLOSE_AFTER requests, so
 * that the client has to reconnect. The child is killed by PID at the end.
 */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "mem.h"
#include "rewrite_clnt.h"
#include "str.h"
#include "unit.h"

#define CLOSE_AFTER 3

static char qdir[64];
static pid_t server_pid = -1;

static void
serve(int lfd)
{
    int     serial = 0;

    alarm(60);                                  /* never outlive the test */
    for (;;) {
        int     fd = accept(lfd, NULL, NULL);
        stream_t *st;
        attr_list_t *req = attr_list_new(), *rep = attr_list_new();

        if (fd < 0)
            _exit(1);
        st = stream_open(fd);
        stream_set_timeout(st, 10);
        attr_send_protocol(st, REWRITE_PROTOCOL);
        for (int n = 0; n < CLOSE_AFTER; n++) {
            const char *request, *addr, *other;
            char    buf[64];

            if (attr_read(st, NULL, req, NULL) != ATTR_OK)
                break;
            attr_get_str(req, "request", &request);
            attr_get_str(req, "address", &addr);
            attr_list_reset(rep);
            snprintf(buf, sizeof(buf), "%d", ++serial);
            if (strcmp(request, "rewrite") == 0) {
                str_t  *out = str_new(0);

                attr_get_str(req, "rule", &other);
                str_printf(out, "%s#%s", addr, buf);
                attr_put_int(rep, "flags", 0);
                attr_put_str(rep, "address", str_cstr(out));
                str_free(out);
            } else if (strcmp(addr, "fail@example.org") == 0) {
                attr_put_int(rep, "flags", RESOLVE_FLAG_FAIL);
                attr_put_str(rep, "transport", "");
                attr_put_str(rep, "nexthop", "");
                attr_put_str(rep, "recipient", addr);
            } else if (strcmp(addr, "junk@example.org") == 0) {
                attr_put_str(rep, "unexpected", "x");
            } else {
                attr_put_int(rep, "flags", RESOLVE_CLASS_DEFAULT);
                attr_put_str(rep, "transport", "smtp");
                attr_put_str(rep, "nexthop", buf);
                attr_put_str(rep, "recipient", addr);
            }
            if (attr_write(st, rep) != ATTR_OK)
                break;
        }
        stream_close(st);
        attr_list_free(req);
        attr_list_free(rep);
    }
}

static void
start_server(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int     lfd;

    signal(SIGPIPE, SIG_IGN);                   /* as every daemon does (server.c) */
    snprintf(qdir, sizeof(qdir), "/tmp/test_rewrite_clnt.XXXXXX");
    if (mkdtemp(qdir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private", qdir);
    if (mkdir(sun.sun_path, 0700) != 0) {
        perror("mkdir");
        exit(2);
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/rewrite", qdir);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &sun, sizeof(sun)) != 0 || listen(lfd, 8) != 0) {
        perror("listen");
        exit(2);
    }
    server_pid = fork();
    if (server_pid < 0) {
        perror("fork");
        exit(2);
    }
    if (server_pid == 0)
        serve(lfd);
    close(lfd);
    rewrite_clnt_set_qdir(qdir);
}

static void
stop_server(void)
{
    char    path[128];

    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    snprintf(path, sizeof(path), "%s/private/rewrite", qdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/private", qdir);
    rmdir(path);
    rmdir(qdir);
}

TEST(no_server_is_a_failure)
{
    str_t  *out = str_new(0);
    struct resolve_reply r;

    rewrite_clnt_set_qdir("/nonexistent-postern-qdir");
    CHECK(rewrite_clnt("local", "user", out) & REWRITE_FLAG_FAIL);
    CHECK_STREQ(str_cstr(out), "user");
    resolve_reply_init(&r);
    CHECK(resolve_clnt("", "user@example.org", &r) & RESOLVE_FLAG_FAIL);
    CHECK_STREQ(str_cstr(r.recipient), "user@example.org");
    CHECK_STREQ(str_cstr(r.transport), "");
    resolve_reply_free(&r);
    str_free(out);
}

TEST(requests_cache_and_reconnect)
{
    str_t  *out = str_new(0);
    struct resolve_reply r;
    char    seen[8][16];

    start_server();
    resolve_reply_init(&r);
    /* First request: serial 1. The same request again comes from the cache. */
    CHECK_INTEQ(resolve_clnt("s@example.org", "a@example.org", &r), RESOLVE_CLASS_DEFAULT);
    CHECK_STREQ(str_cstr(r.nexthop), "1");
    CHECK_STREQ(str_cstr(r.transport), "smtp");
    CHECK_INTEQ(resolve_clnt("s@example.org", "a@example.org", &r), RESOLVE_CLASS_DEFAULT);
    CHECK_STREQ(str_cstr(r.nexthop), "1");
    /* A different sender is a different request. */
    resolve_clnt("t@example.org", "a@example.org", &r);
    CHECK_STREQ(str_cstr(r.nexthop), "2");
    CHECK_INTEQ(rewrite_clnt("local", "u", out), 0);
    CHECK_STREQ(str_cstr(out), "u#3");
    /* The server has closed this connection (CLOSE_AFTER): the client retries once. */
    for (int i = 0; i < 4; i++) {
        char    addr[32];

        snprintf(addr, sizeof(addr), "b%d@example.org", i);
        CHECK_INTEQ(resolve_clnt("", addr, &r), RESOLVE_CLASS_DEFAULT);
        snprintf(seen[i], sizeof(seen[i]), "%s", str_cstr(r.nexthop));
    }
    CHECK_STREQ(seen[0], "4");
    CHECK_STREQ(seen[3], "7");
    /* A failure reply is passed on and not cached. */
    CHECK(resolve_clnt("", "fail@example.org", &r) & RESOLVE_FLAG_FAIL);
    CHECK(resolve_clnt("", "fail@example.org", &r) & RESOLVE_FLAG_FAIL);
    resolve_clnt("", "c@example.org", &r);
    CHECK_STREQ(str_cstr(r.nexthop), "10");
    /* A malformed reply is a failure, and the next request works again. */
    CHECK(resolve_clnt("", "junk@example.org", &r) & RESOLVE_FLAG_FAIL);
    CHECK_INTEQ(resolve_clnt("", "d@example.org", &r), RESOLVE_CLASS_DEFAULT);
    CHECK_STREQ(str_cstr(r.recipient), "d@example.org");
    rewrite_clnt_disconnect();
    resolve_reply_free(&r);
    str_free(out);
    stop_server();
}

/* Alternating addresses are all served from the cache; the oldest entry makes room. */
TEST(cache_holds_several_addresses)
{
    str_t  *out = str_new(0);
    char    addr[32], first[8][32];

    start_server();
    rewrite_clnt_disconnect();                  /* empty caches */
    /* Sender and recipient in turn, as cleanup asks for each message. */
    for (int round = 0; round < 3; round++) {
        CHECK_INTEQ(rewrite_clnt("local", "sender@example.org", out), 0);
        CHECK_STREQ(str_cstr(out), "sender@example.org#1");
        CHECK_INTEQ(rewrite_clnt("local", "rcpt@example.org", out), 0);
        CHECK_STREQ(str_cstr(out), "rcpt@example.org#2");
    }
    /* The same address under the other rule is another entry. */
    rewrite_clnt("remote", "rcpt@example.org", out);
    CHECK_STREQ(str_cstr(out), "rcpt@example.org#3");
    /* Eight entries in all: six more fill the cache ... */
    for (int i = 0; i < 6; i++) {
        snprintf(addr, sizeof(addr), "u%d", i);
        rewrite_clnt("local", addr, out);
        snprintf(first[i], sizeof(first[i]), "%s", str_cstr(out));
    }
    CHECK_STREQ(first[5], "u5#9");
    rewrite_clnt("local", "u0", out);
    CHECK_STREQ(str_cstr(out), "u0#4");         /* still cached */
    /* ... and one more evicts the oldest, the sender's. */
    rewrite_clnt("local", "u6", out);
    CHECK_STREQ(str_cstr(out), "u6#10");
    rewrite_clnt("local", "sender@example.org", out);
    CHECK_STREQ(str_cstr(out), "sender@example.org#11");
    rewrite_clnt("local", "u5", out);
    CHECK_STREQ(str_cstr(out), "u5#9");
    rewrite_clnt_disconnect();
    str_free(out);
    stop_server();
}
