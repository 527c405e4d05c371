/*
 * server.c - daemon skeletons; see server.h.
 *
 * SECURITY: this is where every daemon gives up root. Nothing here reads
 * client data; the drop happens before the first accept().
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "master_proto.h"
#include "mem.h"
#include "server.h"
#include "str.h"

static const char *srv_service = "";
static const char *srv_type = "";
static int srv_nlisten;
static int srv_listen_fds[MASTER_MAX_LISTEN];
static bool srv_exit_requested;
static bool srv_master_gone;
static event_loop_t *srv_loop;
static const struct server_ops *srv_ops;
static config_t *srv_cfg;
static long srv_max_idle;
static long srv_max_use;
static long srv_uses;
static int srv_clients;

/* single server with ops->finish_on_term: a SIGTERM seen by the waits. */
static volatile sig_atomic_t srv_term;
static int srv_term_pipe[2] = {-1, -1};

static void watchdog_init(void);

const char *
server_service_name(void)
{
    return srv_service;
}

const char *
server_service_type(void)
{
    return srv_type;
}

event_loop_t *
server_loop(void)
{
    return srv_loop;
}

void
server_request_exit(void)
{
    srv_exit_requested = true;
}

static _Noreturn void
server_exit(int status)
{
    if (srv_ops && srv_ops->pre_exit)
        srv_ops->pre_exit();
    exit(status);
}

/* Tell master whether this process is waiting for a client. */
static void
report(enum master_avail avail)
{
    static pid_t pid;
    struct master_status st = {.avail = avail};

    if (pid == 0)
        pid = getpid();             /* a daemon's pid never changes; children never report */
    st.pid = (int32_t) pid;

    if (fd_write_all(MASTER_STATUS_FD, &st, sizeof(st)) != (ssize_t) sizeof(st)) {
        /* master is gone: finish quietly, as Postfix daemons do */
        server_exit(0);
    }
}

void
server_drop_privileges(const char *user, const char *chroot_dir)
{
    struct passwd *pw;

    errno = 0;
    if ((pw = getpwnam(user)) == NULL)
        log_fatal("mail_owner account \"%s\" does not exist%s%s", user,
                  errno ? ": " : "", errno ? strerror(errno) : "");
    if (pw->pw_uid == 0)
        log_fatal("mail_owner \"%s\" must not be the super-user", user);
    uid_t   uid = pw->pw_uid;
    gid_t   gid = pw->pw_gid;

    if (chroot_dir) {
        if (chroot(chroot_dir) != 0)
            log_fatal_errno("chroot(%s)", chroot_dir);
        if (chdir("/") != 0)
            log_fatal_errno("chdir(/) in chroot");
    }
    if (setgroups(1, &gid) != 0)
        log_fatal_errno("setgroups");
    if (setgid(gid) != 0)
        log_fatal_errno("setgid(%ld)", (long) gid);
    if (setuid(uid) != 0)
        log_fatal_errno("setuid(%ld)", (long) uid);
    if (setuid(0) == 0 || geteuid() == 0)
        log_panic("privileges could be regained after dropping them");
}

static void
usage(const char *prog)
{
    log_fatal("usage: %s -c config_dir -n service -t type -s sockets [-P] [-R] [-o name=value]... "
              "(this program is started by the Postern master, not by hand)", prog);
}

/*
 * Steps 1-5 of server.h. Returns the index of the first argument that is
 * the daemon's own (master.cf arguments after the options).
 */
static int
server_init(int argc, char **argv, const struct server_ops *ops)
{
    const char *config_dir = NULL;
    bool    privileged = false, do_chroot = false;
    str_t  *path = str_new(0);
    diag_list_t diags;
    int     ch;
    struct {
        char   *name, *value;
    }      *over = NULL;
    size_t  nover = 0, over_cap = 0;

    srv_ops = ops;
    log_init(ops->name);
    log_set_stderr(true, false);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);        /* master stops us; ^C on its terminal must not */

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:n:t:s:PRo:")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'n':
            srv_service = optarg;
            break;
        case 't':
            srv_type = optarg;
            break;
        case 's': {
                long    n;

                if (cstr_parse_long(optarg, &n) != 0 || n < 0 || n > MASTER_MAX_LISTEN)
                    usage(argv[0]);
                srv_nlisten = (int) n;
                break;
            }
        case 'P':
            privileged = true;
            break;
        case 'R':
            do_chroot = true;
            break;
        case 'o': {
                char   *eq = strchr(optarg, '=');

                if (eq == NULL)
                    log_fatal("bad -o argument \"%s\": need name=value", optarg);
                over = mem_grow_array(over, &over_cap, nover + 1, sizeof(*over));
                over[nover].name = mem_strndup(optarg, (size_t) (eq - optarg));
                over[nover].value = mem_strdup(eq + 1);
                nover++;
                break;
            }
        default:
            usage(argv[0]);
        }
    }
    if (config_dir == NULL || *srv_service == 0 || *srv_type == 0)
        usage(argv[0]);
    if (fcntl(MASTER_STATUS_FD, F_GETFD) < 0 || fcntl(MASTER_WATCH_FD, F_GETFD) < 0)
        log_fatal("no master status or watch descriptor: this program must be started by master");
    for (int i = 0; i < srv_nlisten; i++) {
        srv_listen_fds[i] = MASTER_LISTEN_FD + i;
        if (fcntl(srv_listen_fds[i], F_GETFD) < 0)
            log_fatal("listening descriptor %d missing", srv_listen_fds[i]);
        fcntl(srv_listen_fds[i], F_SETFD, FD_CLOEXEC);
    }
    fcntl(MASTER_STATUS_FD, F_SETFD, FD_CLOEXEC);
    fcntl(MASTER_WATCH_FD, F_SETFD, FD_CLOEXEC);

    /* Configuration: main.cf, then master.cf -o overrides. */
    srv_cfg = config_new();
    diag_init(&diags);
    config_set(srv_cfg, "config_directory", config_dir);
    str_printf(path, "%s/main.cf", config_dir);
    if (config_read_file(srv_cfg, str_cstr(path), &diags) != 0) {
        diag_log(&diags);
        log_fatal("cannot read %s", str_cstr(path));
    }
    for (size_t i = 0; i < nover; i++) {
        config_set(srv_cfg, over[i].name, over[i].value);
        mem_free(over[i].name);
        mem_free(over[i].value);
    }
    mem_free(over);
    if (config_validate(srv_cfg, NULL, &diags) > 0) {
        diag_log(&diags);
        log_fatal("%s: configuration errors, see above", str_cstr(path));
    }
    diag_free(&diags);
    str_free(path);

    log_configure(config_str(srv_cfg, "syslog_name"), config_str(srv_cfg, "maillog_file"),
                  config_str(srv_cfg, "myhostname"));
    if (getenv("POSTERN_LOG_STDERR"))
        log_set_stderr(true, true);
    srv_max_idle = config_time(srv_cfg, "max_idle");
    srv_max_use = config_int(srv_cfg, "max_use");

    if (ops->pre_init)
        ops->pre_init(srv_cfg, argc - optind, argv + optind);
    if (geteuid() == 0 && !privileged)
        server_drop_privileges(config_str(srv_cfg, "mail_owner"),
                               do_chroot ? config_str(srv_cfg, "queue_directory") : NULL);
    else if (do_chroot && geteuid() == 0) {
        if (chroot(config_str(srv_cfg, "queue_directory")) != 0 || chdir("/") != 0)
            log_fatal_errno("chroot(%s)", config_str(srv_cfg, "queue_directory"));
    }
    /* Daemons work relative to the queue directory, chrooted or not. */
    if (!do_chroot && chdir(config_str(srv_cfg, "queue_directory")) != 0)
        log_fatal_errno("chdir(%s)", config_str(srv_cfg, "queue_directory"));
    if (ops->post_init)
        ops->post_init(srv_cfg);
    watchdog_init();
    return optind;
}

/*
 * The daemon_timeout watchdog. Restarting it happens per client and per
 * message, so it costs no system call: it moves a deadline in memory, and
 * an alarm() is only set when none is outstanding. When that alarm fires
 * early (the deadline moved on), the handler sets a new one for the rest;
 * when the deadline has passed, the process dies of SIGALRM, as it would
 * with a plain alarm(). A stopped watchdog (deadline 0) lets a pending
 * alarm fire once and do nothing. clock_gettime() and alarm() are
 * async-signal-safe.
 */
static _Atomic long long wd_deadline_ms;    /* 0: stopped */
static volatile sig_atomic_t wd_pending;    /* an alarm() is outstanding */
static long wd_seconds;                     /* daemon_timeout, 0: none */

static void
wd_alarm(int sig)
{
    int     saved = errno;
    long long deadline = wd_deadline_ms;

    wd_pending = 0;
    if (deadline != 0) {
        long long now = clock_mono_ms();

        if (now >= deadline) {
            /* Delivered (and fatal) when this handler returns. */
            signal(sig, SIG_DFL);
            raise(sig);
        } else {
            wd_pending = 1;
            alarm((unsigned) ((deadline - now + 999) / 1000));
        }
    }
    errno = saved;
}

static void
watchdog_init(void)
{
    struct sigaction sa = {.sa_handler = wd_alarm, .sa_flags = SA_RESTART};
    long    t = config_time(srv_cfg, "daemon_timeout");

    wd_seconds = t > 0 && t < 100000000 ? t : 0;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        log_fatal_errno("sigaction SIGALRM");
}

void
server_watchdog_restart(void)
{
    if (wd_seconds == 0)
        return;
    wd_deadline_ms = clock_mono_ms() + wd_seconds * 1000;
    if (!wd_pending) {
        wd_pending = 1;
        alarm((unsigned) wd_seconds);
    }
}

static void
watchdog_stop(void)
{
    wd_deadline_ms = 0;
}

/*
 * SIGTERM for a single server that finishes its client: noted, and a byte
 * in a pipe that the waits watch, so that a signal just before a wait
 * still ends it.
 */
static void
term_note(int sig)
{
    int     saved = errno;
    ssize_t n;

    (void) sig;
    srv_term = 1;
    n = write(srv_term_pipe[1], "", 1);
    (void) n;
    errno = saved;
}

static void
term_init(void)
{
    struct sigaction sa = {.sa_handler = term_note, .sa_flags = SA_RESTART};

    if (pipe2(srv_term_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        log_fatal_errno("pipe2");
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0)
        log_fatal_errno("sigaction SIGTERM");
}

/* Should this single server take no further client or request? */
static bool
single_done(void)
{
    return srv_exit_requested || srv_term || srv_master_gone
        || (srv_max_use > 0 && srv_uses >= srv_max_use);
}

bool
server_take_another(stream_t *client, int timeout_ms)
{
    struct pollfd p[3] = {
        {.fd = stream_fd(client), .events = POLLIN},
        {.fd = MASTER_WATCH_FD, .events = POLLIN},
        {.fd = srv_term_pipe[0], .events = POLLIN},     /* -1: not watched */
    };
    int64_t deadline = clock_mono_ms() + timeout_ms;
    int     n = 0;

    if (single_done())
        return false;
    /* Wait for the client, master's pipe and a SIGTERM at once: a stop is seen at once. */
    while (stream_pending(client) == 0) {
        int64_t left = deadline - clock_mono_ms();

        if (left <= 0 || srv_term)
            return false;
        n = poll(p, 3, (int) (left > 86400000 ? 86400000 : left));
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && p[1].revents) {
            srv_master_gone = true;
            return false;
        }
        if (srv_term)
            return false;
        if (n > 0)
            break;
    }
    srv_uses++;
    server_watchdog_restart();
    return true;
}

/* True when master's watch pipe says we should stop taking new clients. */
static bool
master_gone(void)
{
    struct pollfd p = {.fd = MASTER_WATCH_FD, .events = POLLIN};

    if (srv_master_gone)
        return true;
    if (poll(&p, 1, 0) > 0)
        srv_master_gone = true;
    return srv_master_gone;
}

/* The single server's current client address, from accept(). */
static struct sockaddr_storage srv_peer;
static socklen_t srv_peer_len;

const struct sockaddr *
server_client_address(socklen_t *len)
{
    *len = srv_peer_len;
    return srv_peer_len ? (const struct sockaddr *) &srv_peer : NULL;
}

/*
 * accept4() that keeps the peer address for server_client_address(). -1
 * also when another process took the client first; other errors are logged.
 */
static int
accept_client(int lfd)
{
    int     fd;

    srv_peer_len = sizeof(srv_peer);
    if ((fd = accept4(lfd, (struct sockaddr *) &srv_peer, &srv_peer_len, SOCK_CLOEXEC)) < 0
        || srv_peer_len > sizeof(srv_peer))
        srv_peer_len = 0;
    if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
        && errno != ECONNABORTED)
        log_warn_errno("accept");
    return fd;
}

/* A connection already waiting on one of the (non-blocking) listeners, or -1. */
static int
accept_waiting(void)
{
    for (int i = 0; i < srv_nlisten; i++) {
        int     fd = accept_client(srv_listen_fds[i]);

        if (fd >= 0)
            return fd;
    }
    return -1;
}

void
single_server_main(int argc, char **argv, const struct server_ops *ops)
{
    struct epoll_event evs[MASTER_MAX_LISTEN + 2];
    int     epfd;

    server_init(argc, argv, ops);
    if (ops->service == NULL)
        log_panic("single_server_main: no service callback");
    if (srv_nlisten == 0)
        log_fatal("no listening socket: check the master.cf type of service %s", srv_service);

    /*
     * All idle processes of a service wait on the same listening sockets.
     * EPOLLEXCLUSIVE wakes one of them per connection instead of all, so
     * the others do not spin on a failed accept().
     */
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        log_fatal_errno("epoll_create1");
    for (int i = 0; i <= srv_nlisten; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        int     fd = i == 0 ? MASTER_WATCH_FD : srv_listen_fds[i - 1];

        if (i > 0)
            ev.events |= EPOLLEXCLUSIVE;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            log_fatal_errno("epoll_ctl");
    }
    if (ops->finish_on_term) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};

        term_init();
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, srv_term_pipe[0], &ev) != 0)
            log_fatal_errno("epoll_ctl");
    }
    bool    idle_called = true;     /* ops->idle runs once per idle period */
    int64_t idle_since = clock_mono_ms();

    for (;;) {
        int     n, wait_ms;
        int64_t waited;

        /* master_gone() was asked after the last client; epoll_wait watches the pipe. */
        if (single_done())
            server_exit(0);
        /* Wait for a client; after SERVER_IDLE_MS without one, run ops->idle once. */
        waited = clock_mono_ms() - idle_since;
        wait_ms = srv_max_idle > 0 ? (int) (srv_max_idle * 1000 - waited) : -1;
        if (srv_max_idle > 0 && wait_ms <= 0)
            server_exit(0);         /* idle for max_idle */
        if (!idle_called && (wait_ms < 0 || wait_ms > SERVER_IDLE_MS - waited))
            wait_ms = SERVER_IDLE_MS - waited > 0 ? (int) (SERVER_IDLE_MS - waited) : 0;
        n = epoll_wait(epfd, evs, srv_nlisten + 2, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_fatal_errno("epoll_wait");
        }
        if (n == 0) {
            if (!idle_called) {
                idle_called = true;
                if (ops->idle)
                    ops->idle();
            }
            continue;               /* max_idle is checked at the top */
        }
        for (int e = 0; e < n; e++) {
            uint32_t which = evs[e].data.u32;

            if (which == 0) {
                srv_master_gone = true;
                break;
            }
            if (which == UINT32_MAX)
                break;              /* SIGTERM: srv_term is checked at the top */
            int     fd = accept_client(srv_listen_fds[which - 1]);

            if (fd < 0)
                continue;           /* another process took it (or logged) */
            /*
             * Serve it, and then whatever client is already waiting, before
             * telling master that we are free again: under load a process
             * goes from one client to the next without the two status
             * reports (and master's two wake-ups) in between.
             */
            report(MASTER_STAT_TAKEN);
            do {
                /* accept4() without SOCK_NONBLOCK: a blocking socket. */
                stream_t *st = stream_open_socket(fd, true);

                srv_uses++;
                server_watchdog_restart();
                ops->service(st, srv_cfg);
                watchdog_stop();
                stream_close(st);
                if (single_done() || master_gone())
                    break;
            } while ((fd = accept_waiting()) >= 0);
            report(MASTER_STAT_AVAIL);
            idle_called = false;
            idle_since = clock_mono_ms();
            break;                  /* re-check max_use and master before the next */
        }
    }
}

/* Event server state: listeners are watched while we may take clients. */
static int64_t srv_idle_since;

static void
event_accept(int lfd, int events, void *ctx)
{
    int     fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_warn_errno("accept");
        return;
    }
    if (srv_clients++ == 0)
        report(MASTER_STAT_TAKEN);
    srv_uses++;
    if (srv_max_use > 0 && srv_uses >= srv_max_use) {
        for (int i = 0; i < srv_nlisten; i++)
            event_fd_del(srv_loop, srv_listen_fds[i]);
    }
    srv_ops->accept(fd, srv_cfg);
}

void
server_client_done(void)
{
    if (srv_clients > 0 && --srv_clients == 0) {
        report(MASTER_STAT_AVAIL);
        srv_idle_since = clock_mono_ms();
    }
}

bool
server_client_flush(int fd, str_t *out, event_fd_fn fn, void *ctx)
{
    while (str_len(out) > 0) {
        ssize_t n = send(fd, str_cstr(out), str_len(out), MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        memmove(out->data, out->data + n, str_len(out) - (size_t) n);
        str_truncate(out, str_len(out) - (size_t) n);
    }
    event_fd_add(srv_loop, fd, EVENT_READ | (str_len(out) ? EVENT_WRITE : 0), fn, ctx);
    return true;
}

static void
event_watch(int fd, int events, void *ctx)
{
    srv_master_gone = true;
    event_fd_del(srv_loop, MASTER_WATCH_FD);
    for (int i = 0; i < srv_nlisten; i++)
        event_fd_del(srv_loop, srv_listen_fds[i]);
}

static void
event_sigterm(int signo, void *ctx)
{
    if (srv_ops->on_term) {
        srv_ops->on_term();         /* it asks for the exit when it is done */
        return;
    }
    server_exit(0);                 /* runs pre_exit, e.g. anvil's statistics */
}

static size_t trigger_read(int lfd, char *buf, size_t max);

/*
 * Event server: wake-up bytes arrived on a fifo (or a unix client of a
 * service without accept callback). Handed to ops->trigger in the loop.
 */
static void
event_trigger(int lfd, int events, void *ctx)
{
    char    buf[SERVER_TRIGGER_MAX];
    size_t  len = trigger_read(lfd, buf, sizeof(buf));

    if (len == 0)
        return;
    if (!srv_ops->persistent)
        srv_uses++;
    srv_idle_since = clock_mono_ms();
    srv_ops->trigger(buf, len, srv_cfg);
}

void
event_server_main(int argc, char **argv, const struct server_ops *ops)
{
    bool    use_trigger;

    if (ops->accept == NULL && ops->trigger == NULL)
        log_panic("event_server_main: no accept or trigger callback");
    srv_loop = event_loop_new();    /* before post_init, which may add timers */
    server_init(argc, argv, ops);
    use_trigger = ops->trigger != NULL
        && (strcmp(srv_type, "fifo") == 0 || ops->accept == NULL);
    if (!use_trigger && ops->accept == NULL)
        log_fatal("service %s: this program only takes wake-ups: it needs a fifo or unix "
                  "service, not \"%s\"", srv_service, srv_type);
    if (ops->persistent) {
        srv_max_use = 0;
        srv_max_idle = 0;
    }
    event_signal(srv_loop, SIGTERM, event_sigterm, NULL);
    event_fd_add(srv_loop, MASTER_WATCH_FD, EVENT_READ, event_watch, NULL);
    for (int i = 0; i < srv_nlisten; i++)
        event_fd_add(srv_loop, srv_listen_fds[i], EVENT_READ,
                     use_trigger ? event_trigger : event_accept, NULL);
    srv_idle_since = clock_mono_ms();
    for (;;) {
        event_loop_run_once(srv_loop, 1000);
        if (srv_clients > 0)
            continue;
        if (srv_exit_requested || srv_master_gone
            || (srv_max_use > 0 && srv_uses >= srv_max_use)
            || (srv_max_idle > 0 && clock_mono_ms() - srv_idle_since >= srv_max_idle * 1000))
            server_exit(0);
    }
}

/*
 * Trigger server: read the wake-up bytes waiting on listener i into buf.
 * A fifo is drained without blocking; a unix socket client is accepted and
 * read until it closes, for at most one second. Returns the byte count (0:
 * nothing to do, e.g. another process took the wake-up).
 */
static size_t
trigger_read(int lfd, char *buf, size_t max)
{
    size_t  n = 0;

    if (strcmp(srv_type, "fifo") == 0) {
        while (n < max) {
            ssize_t r = read(lfd, buf + n, max - n);

            if (r > 0) {
                n += (size_t) r;
                continue;
            }
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn_errno("read wake-up fifo");
            break;
        }
        return n;
    }

    int     fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_warn_errno("accept");
        return 0;
    }
    stream_t *st = stream_open(fd);

    stream_set_timeout(st, 1);
    while (n < max) {
        int     c = stream_getc(st);

        if (c < 0)
            break;
        buf[n++] = (char) c;
    }
    stream_close(st);
    return n;
}

void
trigger_server_main(int argc, char **argv, const struct server_ops *ops)
{
    struct pollfd pfds[MASTER_MAX_LISTEN + 1];
    char    buf[SERVER_TRIGGER_MAX];

    server_init(argc, argv, ops);
    if (ops->trigger == NULL)
        log_panic("trigger_server_main: no trigger callback");
    if (srv_nlisten == 0)
        log_fatal("no listening socket: check the master.cf type of service %s", srv_service);
    if (strcmp(srv_type, "fifo") != 0 && strcmp(srv_type, "unix") != 0)
        log_fatal("service %s: a trigger server needs a fifo or unix service, not \"%s\"",
                  srv_service, srv_type);

    for (;;) {
        int     n;

        if (srv_exit_requested || master_gone() || (srv_max_use > 0 && srv_uses >= srv_max_use))
            server_exit(0);
        pfds[0] = (struct pollfd) {.fd = MASTER_WATCH_FD, .events = POLLIN};
        for (int i = 0; i < srv_nlisten; i++)
            pfds[i + 1] = (struct pollfd) {.fd = srv_listen_fds[i], .events = POLLIN};
        n = poll(pfds, (nfds_t) srv_nlisten + 1, (int) (srv_max_idle * 1000));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_fatal_errno("poll");
        }
        if (n == 0)
            server_exit(0);         /* idle for max_idle */
        if (pfds[0].revents) {
            srv_master_gone = true;
            continue;
        }
        for (int i = 0; i < srv_nlisten; i++) {
            size_t  len;

            if (!pfds[i + 1].revents)
                continue;
            if ((len = trigger_read(srv_listen_fds[i], buf, sizeof(buf))) == 0)
                continue;
            report(MASTER_STAT_TAKEN);
            srv_uses++;
            server_watchdog_restart();
            ops->trigger(buf, len, srv_cfg);
            watchdog_stop();
            report(MASTER_STAT_AVAIL);
            break;
        }
    }
}
