/*
 * master_service.c - turn master.cf entries into listening services.
 *
 * A service owns its listening sockets, a status pipe that all its children
 * write to, and a watch pipe per generation (see master_proto.h). On reload
 * an entry that still exists keeps its sockets, so no connection is refused
 * during a reload; its old children are retired by closing their watch pipe.
 *
 * SECURITY: runs as root. Socket paths are built only from queue_directory
 * and the service name, and a service name with a '/' is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "mem.h"
#include "str.h"

#define LISTEN_BACKLOG 512
#define BIND_RETRIES   50           /* times BIND_RETRY_US: 5 seconds */
#define BIND_RETRY_US  100000

static void
set_flags(int fd)
{
    int     fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        log_fatal_errno("fcntl on listening socket");
}

/* Split "host:port", "[v6]:port", "port" or "name"; host is "" when absent. */
static bool
split_inet(const char *spec, str_t *host, str_t *port)
{
    const char *colon;

    str_reset(host);
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL || close[1] != ':' || close[2] == 0)
            return false;
        str_set(host, spec + 1, (size_t) (close - spec - 1));
        str_set_cstr(port, close + 2);
        return true;
    }
    if ((colon = strrchr(spec, ':')) != NULL) {
        if (strchr(spec, ':') != colon || colon[1] == 0)
            return false;
        str_set(host, spec, (size_t) (colon - spec));
        str_set_cstr(port, colon + 1);
        return true;
    }
    str_set_cstr(port, spec);
    return true;
}

/* Bind and listen on every address of host:port; returns false on failure. */
static bool
open_inet_addr(struct master_service *svc, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res, *ai;
    const char *protos = config_str(master.cfg, "inet_protocols");
    int     rc;

    if (strstr(protos, "all") == NULL) {
        bool    v4 = strstr(protos, "ipv4") != NULL, v6 = strstr(protos, "ipv6") != NULL;

        hints.ai_family = v4 && !v6 ? AF_INET : (v6 && !v4 ? AF_INET6 : AF_UNSPEC);
    }
    rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        log_error("service %s: cannot resolve \"%s\" port \"%s\": %s", svc->name,
                  *host ? host : "*", port, gai_strerror(rc));
        return false;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int     fd, on = 1;

        if (svc->nlisten >= MASTER_MAX_LISTEN) {
            log_error("service %s: too many listening addresses", svc->name);
            break;
        }
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0) {
            if (errno == EAFNOSUPPORT && *host == 0)
                continue;           /* wildcard on a host without IPv6 */
            log_error("service %s: socket: %s", svc->name, strerror(errno));
            freeaddrinfo(res);
            return false;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
        /*
         * After a crash of master its old children may hold the address for
         * a moment until they notice and exit: retry a busy address briefly.
         */
        int     tries = 0, brc;

        while ((brc = bind(fd, ai->ai_addr, ai->ai_addrlen)) != 0 && errno == EADDRINUSE
               && ++tries < BIND_RETRIES)
            usleep(BIND_RETRY_US);
        if (brc != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
            char    h[NI_MAXHOST] = "?", p[NI_MAXSERV] = "?";

            getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), p, sizeof(p),
                        NI_NUMERICHOST | NI_NUMERICSERV);
            log_error("service %s: cannot listen on [%s]:%s: %s", svc->name, h, p, strerror(errno));
            close(fd);
            freeaddrinfo(res);
            return false;
        }
        set_flags(fd);
        svc->listen_fds[svc->nlisten++] = fd;
    }
    freeaddrinfo(res);
    return true;
}

static bool
open_inet(struct master_service *svc)
{
    str_t  *host = str_new(0), *port = str_new(0);
    bool    ok;

    if (!split_inet(svc->name, host, port)) {
        log_error("service %s: bad inet address syntax (need host:port, [ipv6]:port or port)",
                  svc->name);
        ok = false;
    } else if (str_len(host) > 0) {
        ok = open_inet_addr(svc, str_cstr(host), str_cstr(port));
    } else {
        /* No host: every address of inet_interfaces. */
        const char *ifs = config_str(master.cfg, "inet_interfaces");
        char   *list = mem_strdup(ifs), *save = NULL;

        ok = true;
        for (char *tok = strtok_r(list, ", \t", &save); ok && tok; tok = strtok_r(NULL, ", \t", &save)) {
            if (strcmp(tok, "all") == 0)
                ok = open_inet_addr(svc, "", str_cstr(port));
            else if (strcmp(tok, "loopback-only") == 0)
                ok = open_inet_addr(svc, "127.0.0.1", str_cstr(port));
            else {
                size_t  n = strlen(tok);

                if (tok[0] == '[' && n > 2 && tok[n - 1] == ']') {
                    tok[n - 1] = 0;
                    tok++;
                }
                ok = open_inet_addr(svc, tok, str_cstr(port));
            }
        }
        mem_free(list);
    }
    if (ok && svc->nlisten == 0) {
        log_error("service %s: no address to listen on", svc->name);
        ok = false;
    }
    str_free(host);
    str_free(port);
    return ok;
}

/* unix, unix-dgram, pass and fifo endpoints under queue_directory. */
static bool
open_local(struct master_service *svc, const struct mastercf_entry *e)
{
    const char *qdir = config_str(master.cfg, "queue_directory");
    str_t  *path = str_new(0);
    int     fd = -1;
    mode_t  mode = e->private_ ? 0600 : 0666;

    if (strchr(svc->name, '/') || strcmp(svc->name, ".") == 0 || strcmp(svc->name, "..") == 0) {
        log_error("service %s: a local service name must not contain '/'", svc->name);
        str_free(path);
        return false;
    }
    str_printf(path, "%s/%s/%s", qdir, e->private_ ? "private" : "public", svc->name);
    (void) unlink(str_cstr(path));
    if (svc->type == MASTERCF_FIFO) {
        if (mkfifo(str_cstr(path), e->private_ ? 0600 : 0622) != 0
            || (fd = open(str_cstr(path), O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
            log_error("service %s: fifo %s: %s", svc->name, str_cstr(path), strerror(errno));
            str_free(path);
            return false;
        }
        mode = e->private_ ? 0600 : 0622;
    } else {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        if (str_len(path) >= sizeof(sun.sun_path)) {
            log_error("service %s: socket path too long: %s", svc->name, str_cstr(path));
            str_free(path);
            return false;
        }
        memcpy(sun.sun_path, str_cstr(path), str_len(path) + 1);
        fd = socket(AF_UNIX, svc->type == MASTERCF_UNIX_DGRAM ? SOCK_DGRAM : SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
            || (svc->type != MASTERCF_UNIX_DGRAM && listen(fd, LISTEN_BACKLOG) != 0)) {
            log_error("service %s: socket %s: %s", svc->name, str_cstr(path), strerror(errno));
            if (fd >= 0)
                close(fd);
            str_free(path);
            return false;
        }
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(config_str(master.cfg, "mail_owner"));

        if (pw == NULL || chown(str_cstr(path), pw->pw_uid, pw->pw_gid) != 0)
            log_warn("service %s: cannot give %s to mail_owner", svc->name, str_cstr(path));
    }
    if (chmod(str_cstr(path), mode) != 0)
        log_warn_errno("chmod %s", str_cstr(path));
    set_flags(fd);
    svc->listen_fds[svc->nlisten++] = fd;
    svc->path = str_steal(path);
    return true;
}

static void
listener_ready(int fd, int events, void *ctx)
{
    struct master_service *svc = ctx;

    master_spawn(svc);
}

/*
 * Watch the listening sockets only while a new process may be needed: no
 * process of this generation is waiting for a client, the process limit is
 * not reached, and the service is not throttled.
 */
void
master_service_update(struct master_service *svc)
{
    bool    want = !master.stopping && !svc->retired && !svc->throttled && svc->avail == 0
        && (svc->maxproc == 0 || svc->total < svc->maxproc);

    if (want == svc->listening)
        return;
    for (int i = 0; i < svc->nlisten; i++) {
        if (want)
            event_fd_add(master.loop, svc->listen_fds[i], EVENT_READ, listener_ready, svc);
        else
            event_fd_del(master.loop, svc->listen_fds[i]);
    }
    svc->listening = want;
}

static void
new_watch_pipe(struct master_service *svc)
{
    int     p[2];

    if (pipe2(p, O_CLOEXEC) != 0)
        log_fatal_errno("pipe2");
    svc->watch_rfd = p[0];
    svc->watch_wfd = p[1];
}

/* Copy the settings that may change on reload from a master.cf entry. */
static void
apply_entry(struct master_service *svc, const struct mastercf_entry *e)
{
    const char *ddir = config_str(master.cfg, "daemon_directory");
    str_t  *s = str_new(0);
    size_t  n = 0, cap = 0;
    char  **argv = NULL;

#define PUSH(x) do { argv = mem_grow_array(argv, &cap, n + 2, sizeof(*argv)); argv[n++] = (x); } while (0)
    if (svc->exec_argv) {
        for (char **a = svc->exec_argv; *a; a++)
            mem_free(*a);
        mem_free(svc->exec_argv);
        mem_free(svc->exec_path);
    }
    svc->maxproc = e->maxproc < 0 ? (int) config_int(master.cfg, "default_process_limit") : e->maxproc;
    svc->wakeup = e->wakeup;
    svc->wakeup_if_used = e->wakeup_if_used;
    svc->unpriv = e->unpriv;
    svc->chroot = e->chroot;
    if (e->argv[0][0] == '/')
        svc->exec_path = mem_strdup(e->argv[0]);
    else {
        str_printf(s, "%s/%s", ddir, e->argv[0]);
        svc->exec_path = mem_strdup(str_cstr(s));
    }
    PUSH(mem_strdup(e->argv[0]));
    PUSH(mem_strdup("-c"));
    PUSH(mem_strdup(master.config_dir));
    PUSH(mem_strdup("-n"));
    PUSH(mem_strdup(e->service));
    PUSH(mem_strdup("-t"));
    PUSH(mem_strdup(mastercf_type_name(e->type)));
    PUSH(mem_strdup("-s"));
    str_printf(s, "%d", svc->nlisten);
    PUSH(mem_strdup(str_cstr(s)));
    if (!e->unpriv)
        PUSH(mem_strdup("-P"));
    if (e->chroot)
        PUSH(mem_strdup("-R"));
    for (size_t i = 0; i < e->nopts; i++) {
        str_printf(s, "%s=%s", e->opts[i].name, e->opts[i].value);
        PUSH(mem_strdup("-o"));
        PUSH(mem_strdup(str_cstr(s)));
    }
    /* "--" so that master.cf arguments are never taken for skeleton options. */
    PUSH(mem_strdup("--"));
    for (int i = 1; i < e->argc; i++)
        PUSH(mem_strdup(e->argv[i]));
#undef PUSH
    argv[n] = NULL;
    svc->exec_argv = argv;
    str_free(s);
}

static struct master_service *
find_service(const char *name, enum mastercf_type type)
{
    for (struct master_service *s = master.services; s; s = s->next)
        if (!s->retired && s->type == type && strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static struct master_service *
create_service(const struct mastercf_entry *e)
{
    struct master_service *svc = mem_zalloc(sizeof(*svc));
    int     p[2];
    bool    ok;

    svc->name = mem_strdup(e->service);
    svc->type = e->type;
    ok = svc->type == MASTERCF_INET ? open_inet(svc) : open_local(svc, e);
    if (!ok) {
        for (int i = 0; i < svc->nlisten; i++)
            close(svc->listen_fds[i]);
        mem_free(svc->name);
        mem_free(svc->path);
        mem_free(svc);
        return NULL;
    }
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        log_fatal_errno("pipe2");
    svc->status_fd = p[0];
    svc->status_wfd = p[1];
    event_fd_add(master.loop, svc->status_fd, EVENT_READ, master_status_ready, svc);
    new_watch_pipe(svc);
    apply_entry(svc, e);
    svc->next = master.services;
    master.services = svc;
    return svc;
}

/*
 * Build (first start) or rebuild (reload) the services. On first start any
 * listener that cannot be opened is fatal; on reload it is logged and the
 * rest of the configuration still applies.
 */
bool
master_services_build(const struct mastercf *mc, bool reload)
{
    bool    ok = true;

    /* Retire services that are gone. */
    for (struct master_service *s = master.services; s; s = s->next) {
        bool    keep = false;

        if (s->retired)
            continue;
        for (size_t i = 0; i < mc->count && !keep; i++)
            keep = mc->entries[i].type == s->type && strcmp(mc->entries[i].service, s->name) == 0;
        if (!keep) {
            log_info("reload: service %s/%s removed", s->name, mastercf_type_name(s->type));
            master_service_retire(s);
        }
    }
    for (size_t i = 0; i < mc->count; i++) {
        const struct mastercf_entry *e = &mc->entries[i];
        struct master_service *svc = find_service(e->service, e->type);

        if (svc) {
            /* Existing: new settings, new generation; old children finish and exit. */
            apply_entry(svc, e);
            close(svc->watch_wfd);
            close(svc->watch_rfd);
            new_watch_pipe(svc);
            svc->generation++;
            svc->total = svc->avail = 0;
        } else if ((svc = create_service(e)) == NULL) {
            ok = false;
            if (!reload)
                return false;
            continue;
        }
        if (svc->wakeup_timer) {
            event_timer_cancel(master.loop, svc->wakeup_timer);
            svc->wakeup_timer = 0;
        }
        /*
         * At start, wake each wakeup service at once, so that qmgr recovers
         * what a crash left in active/ and pickup empties maildrop/ without
         * waiting for the first interval.
         */
        master_wakeup_arm(svc, !reload);
        master_service_update(svc);
    }
    return ok;
}

/* Stop listening; children of the service exit when idle; freed when none is left. */
void
master_service_retire(struct master_service *svc)
{
    svc->retired = true;
    for (int i = 0; i < svc->nlisten; i++) {
        event_fd_del(master.loop, svc->listen_fds[i]);
        close(svc->listen_fds[i]);
    }
    svc->nlisten = 0;
    svc->listening = false;
    if (svc->path && svc->type != MASTERCF_INET)
        (void) unlink(svc->path);
    if (svc->wakeup_timer)
        event_timer_cancel(master.loop, svc->wakeup_timer);
    if (svc->throttle_timer)
        event_timer_cancel(master.loop, svc->throttle_timer);
    svc->wakeup_timer = svc->throttle_timer = 0;
    close(svc->watch_wfd);
    close(svc->watch_rfd);
    svc->watch_wfd = svc->watch_rfd = -1;
    master_service_maybe_free(svc);
}

/* Free a retired service once no process refers to it. */
void
master_service_maybe_free(struct master_service *svc)
{
    struct master_service **pp;

    if (!svc->retired)
        return;
    for (struct master_proc *p = master.procs; p; p = p->next)
        if (p->svc == svc)
            return;
    for (pp = &master.services; *pp && *pp != svc; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = svc->next;
    event_fd_del(master.loop, svc->status_fd);
    close(svc->status_fd);
    close(svc->status_wfd);
    for (char **a = svc->exec_argv; a && *a; a++)
        mem_free(*a);
    mem_free(svc->exec_argv);
    mem_free(svc->exec_path);
    mem_free(svc->path);
    mem_free(svc->name);
    mem_free(svc);
}

/*
 * Stop taking clients on every service, but leave the sockets open and in
 * place: connects still succeed (and wait) while the processes finish
 * (master_main.c: stop_children).
 */
void
master_services_unwatch_all(void)
{
    for (struct master_service *s = master.services; s; s = s->next)
        for (int i = 0; i < s->nlisten; i++)
            event_fd_del(master.loop, s->listen_fds[i]);
}

void
master_services_close_all(void)
{
    struct master_service *s = master.services, *next;

    for (; s; s = next) {
        next = s->next;
        if (!s->retired)
            master_service_retire(s);
    }
}
