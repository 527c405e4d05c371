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
 * SECURITY: the child runs master's code only inside posix_spawn(), up to
 * the exec; the skeleton in the daemon drops privileges before it reads
 * any client data.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
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

/*
 * Start the service's program with posix_spawn(): the descriptors moved to
 * MASTER_STATUS_FD, MASTER_WATCH_FD and MASTER_LISTEN_FD.., all others
 * closed, the signals master handles or ignores back to their defaults
 * and none blocked. Unlike fork(), the child does not copy master's page
 * tables, and master takes no copy-on-write faults after it. Returns the
 * pid, or -1 with errno (the program could not be run).
 */
static pid_t
spawn_service(struct master_service *svc, char **env)
{
    int     top = MASTER_LISTEN_FD + svc->nlisten;
    int     src[MASTER_MAX_LISTEN + 2], nsrc = 0, base = top, rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    pid_t   pid = -1;

    src[nsrc++] = svc->status_wfd;
    src[nsrc++] = svc->watch_rfd;
    for (int i = 0; i < svc->nlisten; i++)
        src[nsrc++] = svc->listen_fds[i];
    /* Copies above every source first, so that no dup2 clobbers a source still needed. */
    for (int i = 0; i < nsrc; i++)
        if (src[i] >= base)
            base = src[i] + 1;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        errno = rc;
        return -1;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        errno = rc;
        return -1;
    }
    for (int i = 0; i < nsrc && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&fa, src[i], base + i);
    for (int i = 0; i < nsrc && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&fa, base + i, MASTER_STATUS_FD + i);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, top);
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGCHLD);
    sigaddset(&dfl, SIGHUP);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &dfl);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc == 0)
        rc = posix_spawn(&pid, svc->exec_path, &fa, &attr, svc->exec_argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
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
    pid = spawn_service(svc, env);
    for (char **e = env; *e; e++)
        mem_free(*e);
    mem_free(env);
    if (pid < 0) {
        log_warn_errno("cannot start %s", svc->exec_path);
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
