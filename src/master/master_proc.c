/*
 * master_proc.c - the children: start on demand, track, reap, throttle.
 *
 * A child is counted as "available" from the moment it is started until it
 * reports that it took a client; master starts another child only when a
 * service has no available child (see master_service_update). A child that
 * dies abnormally before it ever took a client makes the service throttle:
 * no new child for service_throttle_time, so a broken daemon cannot make
 * master fork in a tight loop.
 *
 * SECURITY: the child side of fork runs as root only until exec; the
 * skeleton in the daemon drops privileges before it reads any client data.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "mem.h"
#include "str.h"

static struct master_proc *
find_proc(pid_t pid)
{
    for (struct master_proc *p = master.procs; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

/* The environment of a child: a clean, minimal one. */
static char **
child_env(void)
{
    static const char *pass[] = {
        "TZ", "LANG", "POSTERN_LOG_STDERR", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
    };
    size_t  n = 0, cap = 0;
    char  **env = NULL;
    str_t  *s = str_new(0);

    env = mem_grow_array(env, &cap, 16, sizeof(*env));
    str_printf(s, "POSTERN_CONFIG=%s", master.config_dir);
    env[n++] = mem_strdup(str_cstr(s));
    env[n++] = mem_strdup("PATH=/usr/bin:/bin:/usr/sbin:/sbin");
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = getenv(pass[i]);

        if (v) {
            str_printf(s, "%s=%s", pass[i], v);
            env = mem_grow_array(env, &cap, n + 2, sizeof(*env));
            env[n++] = mem_strdup(str_cstr(s));
        }
    }
    env[n] = NULL;
    str_free(s);
    return env;
}

/* In the child after fork: put the descriptors in place and exec. */
static _Noreturn void
child_exec(struct master_service *svc, char **env)
{
    int     top = MASTER_LISTEN_FD + svc->nlisten;
    int     moved[MASTER_MAX_LISTEN + 2];
    sigset_t none;

    /* Move the source fds above the target range first, so dup2 cannot clobber them. */
    int     src[MASTER_MAX_LISTEN + 2];
    int     nsrc = 0;

    src[nsrc++] = svc->status_wfd;
    src[nsrc++] = svc->watch_rfd;
    for (int i = 0; i < svc->nlisten; i++)
        src[nsrc++] = svc->listen_fds[i];
    for (int i = 0; i < nsrc; i++)
        if ((moved[i] = fcntl(src[i], F_DUPFD, top + 1)) < 0)
            _exit(127);
    for (int i = 0; i < nsrc; i++)
        if (dup2(moved[i], MASTER_STATUS_FD + i) < 0)
            _exit(127);
    close_range((unsigned) top, ~0U, 0);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(svc->exec_path, svc->exec_argv, env);
    /* Only async-signal-safe calls here: report through the log file descriptor is not safe. */
    _exit(127);
}

void
master_spawn(struct master_service *svc)
{
    pid_t   pid;
    char  **env;

    if (master.stopping || svc->retired || svc->throttled)
        return;
    if (svc->maxproc > 0 && svc->total >= svc->maxproc)
        return;
    env = child_env();
    pid = fork();
    if (pid == 0) {
        child_exec(svc, env);
    }
    for (char **e = env; *e; e++)
        mem_free(*e);
    mem_free(env);
    if (pid < 0) {
        log_warn_errno("fork");
        master_unthrottle_later(svc);   /* try again after service_throttle_time */
        return;
    }
    struct master_proc *p = mem_zalloc(sizeof(*p));

    p->pid = pid;
    p->svc = svc;
    p->generation = svc->generation;
    p->avail = true;
    p->next = master.procs;
    master.procs = p;
    master.nprocs++;
    svc->total++;
    svc->avail++;
    svc->used = true;
    master_service_update(svc);
}

static void
unthrottle(void *ctx)
{
    struct master_service *svc = ctx;

    if (!svc->throttled)
        return;
    svc->throttle_timer = 0;
    svc->throttled = false;
    master_service_update(svc);
}

void
master_unthrottle_later(struct master_service *svc)
{
    svc->throttled = true;
    if (svc->throttle_timer == 0)
        svc->throttle_timer = event_timer_add(master.loop,
                                              config_time(master.cfg, "service_throttle_time") * 1000,
                                              unthrottle, svc);
    master_service_update(svc);
}

/* Status reports from children: "taken" / "available". */
void
master_status_ready(int fd, int events, void *ctx)
{
    struct master_service *svc = ctx;
    struct master_status st;
    ssize_t n;

    while ((n = read(fd, &st, sizeof(st))) == (ssize_t) sizeof(st)) {
        struct master_proc *p = find_proc((pid_t) st.pid);

        if (p == NULL || p->svc != svc) {
            /* A process that was reaped already, or a forged report. */
            continue;
        }
        bool    avail = st.avail == MASTER_STAT_AVAIL;
        bool    current = p->generation == svc->generation;

        if (!avail)
            p->use_count++;
        if (avail != p->avail) {
            p->avail = avail;
            if (current)
                svc->avail += avail ? 1 : -1;
        }
    }
    if (n > 0 && n != (ssize_t) sizeof(st))
        log_warn("service %s: short status message (%zd bytes) ignored", svc->name, n);
    master_service_update(svc);
}

/* Forget one process: counts, throttle decision, log line. */
static void
proc_exited(struct master_proc *p, int status)
{
    struct master_service *svc = p->svc;
    bool    current = p->generation == svc->generation;
    bool    normal = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (WIFSIGNALED(status)) {
        if (!master.stopping || WTERMSIG(status) != SIGTERM)
            log_warn("process %s pid %ld killed by signal %d", svc->exec_path, (long) p->pid,
                     WTERMSIG(status));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        log_warn("process %s pid %ld exit status %d", svc->exec_path, (long) p->pid,
                 WEXITSTATUS(status));
    }
    if (current) {
        svc->total--;
        if (p->avail)
            svc->avail--;
    }
    if (!normal && p->use_count == 0 && !master.stopping && current && !svc->throttled) {
        log_warn("%s: bad command startup -- throttling", svc->exec_path);
        master_unthrottle_later(svc);
    }
    master_service_update(svc);
}

/* SIGCHLD: reap every child that has exited. */
void
master_reap(int signo, void *ctx)
{
    pid_t   pid;
    int     status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct master_proc **pp, *p;

        for (pp = &master.procs; *pp && (*pp)->pid != pid; pp = &(*pp)->next)
            ;
        if ((p = *pp) == NULL)
            continue;
        *pp = p->next;
        master.nprocs--;
        proc_exited(p, status);
        struct master_service *svc = p->svc;

        mem_free(p);
        master_service_maybe_free(svc);
    }
}

void
master_kill_all(int signo)
{
    for (struct master_proc *p = master.procs; p; p = p->next)
        (void) kill(p->pid, signo);
}

/* Wake-up triggers for unix and fifo services (e.g. pickup, qmgr). */
static void
wakeup_fire(void *ctx)
{
    struct master_service *svc = ctx;

    svc->wakeup_timer = 0;
    if (svc->retired || master.stopping)
        return;
    if (!svc->wakeup_if_used || svc->used) {
        int     fd = -1;

        if (svc->type == MASTERCF_FIFO) {
            fd = open(svc->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        } else if (svc->type == MASTERCF_UNIX) {
            struct sockaddr_un sun = {.sun_family = AF_UNIX};

            if (strlen(svc->path) < sizeof(sun.sun_path)) {
                memcpy(sun.sun_path, svc->path, strlen(svc->path) + 1);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
                    && errno != EINPROGRESS) {
                    close(fd);
                    fd = -1;
                }
            }
        }
        if (fd >= 0) {
            if (write(fd, "W", 1) != 1 && errno != EAGAIN)
                log_warn_errno("wakeup %s", svc->path);
            close(fd);
        }
    }
    master_wakeup_arm(svc, false);
}

void
master_wakeup_arm(struct master_service *svc, bool now)
{
    if (svc->wakeup > 0 && svc->path && !svc->wakeup_timer
        && (svc->type == MASTERCF_FIFO || svc->type == MASTERCF_UNIX))
        svc->wakeup_timer = event_timer_add(master.loop, now ? 0 : (int64_t) svc->wakeup * 1000,
                                            wakeup_fire, svc);
}
