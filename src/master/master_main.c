/*
 * master_main.c - the Postern master: the one resident root process.
 *
 * SECURITY: runs as root (or as the invoking user for a development
 * instance). It reads only main.cf and master.cf, which are trusted as much
 * as the root-owned config directory is, and status reports from its
 * children, which are checked against the process table. It opens every
 * listening socket itself and hands them to children that drop privileges
 * before they read a byte from a client.
 *
 * Usage (by "postern start" / "start-fg", not by hand):
 *     master -c CONFIG_DIR [-f] [-w READY_FD]
 *   -f  foreground: log to stderr too, and stop on SIGINT
 *   -w  write "ready\n" to READY_FD once every listener is open, then close it
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "diag.h"
#include "instance.h"
#include "log.h"
#include "master.h"
#include "mem.h"
#include "stream.h"
#include "version.h"

#define STOP_GRACE_MS 10000

struct master_state master;

static int pid_fd = -1;
static str_t *pid_path;
static volatile int stop_signal;

static _Noreturn void
usage(void)
{
    log_fatal("usage: master -c config_dir [-f] [-w ready_fd] (use \"postern start\")");
}

/* Take the instance lock and record our pid; fatal if another master holds it. */
static void
lock_instance(void)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char    buf[32];
    int     n;

    pid_path = str_new(0);
    instance_pid_path(master.cfg, pid_path);
    pid_fd = open(str_cstr(pid_path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pid_fd < 0)
        log_fatal_errno("open lock file %s", str_cstr(pid_path));
    if (fcntl(pid_fd, F_SETLK, &fl) != 0) {
        if (errno == EAGAIN || errno == EACCES) {
            struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

            if (fcntl(pid_fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
                log_fatal("the Postern mail system is already running (pid %ld)", (long) q.l_pid);
            log_fatal("the Postern mail system is already running");
        }
        log_fatal_errno("lock %s", str_cstr(pid_path));
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
    if (ftruncate(pid_fd, 0) != 0 || pwrite(pid_fd, buf, (size_t) n, 0) != n)
        log_fatal_errno("write %s", str_cstr(pid_path));
}

static void
on_stop(int signo, void *ctx)
{
    stop_signal = signo;
    master.stopping = true;
}

/* SIGHUP: re-read main.cf and master.cf; keep the old setup if they are broken. */
static void
on_reload(int signo, void *ctx)
{
    config_t *cfg;
    struct mastercf mc;
    diag_list_t diags;

    diag_init(&diags);
    if (instance_load(master.config_dir, &cfg, &mc, &diags) > 0) {
        diag_log(&diags);
        log_warn("reload: configuration errors; keeping the previous configuration");
        config_free(cfg);
    } else {
        config_t *old = master.cfg;

        diag_log(&diags);
        master.cfg = cfg;
        log_info("reload -- version %s, configuration %s", POSTERN_VERSION, master.config_dir);
        if (!master_services_build(&mc, true))
            log_warn("reload: some services could not be started, see above");
        config_free(old);
    }
    mastercf_free(&mc);
    diag_free(&diags);
}

/* Stop every child: SIGTERM, a grace period, then SIGKILL. */
static void
stop_children(void)
{
    int64_t deadline = clock_mono_ms() + STOP_GRACE_MS;

    /*
     * SIGTERM first, the sockets closed and removed only when the processes
     * are gone. Closed first, they made a qmgr still at work (it stops at
     * its SIGTERM, a moment later) fail its connects to the agents with
     * ENOENT, and defer mail that was about to be delivered, to be retried
     * only after the back-off time when the system came up again.
     */
    master_services_unwatch_all();
    master_kill_all(SIGTERM);
    while (master.nprocs > 0 && clock_mono_ms() < deadline)
        event_loop_run_once(master.loop, 100);
    if (master.nprocs > 0) {
        log_warn("%d process(es) did not stop in time; killing them", master.nprocs);
        master_kill_all(SIGKILL);
        deadline = clock_mono_ms() + STOP_GRACE_MS;
        while (master.nprocs > 0 && clock_mono_ms() < deadline)
            event_loop_run_once(master.loop, 100);
    }
    master_services_close_all();
}

int
main(int argc, char **argv)
{
    bool    foreground = false;
    int     ready_fd = -1;
    int     ch;
    diag_list_t diags;
    struct mastercf mc;

    log_init("master");
    log_set_stderr(true, false);
    umask(022);
    while ((ch = getopt(argc, argv, "c:fw:")) != -1) {
        long    n;

        switch (ch) {
        case 'c':
            master.config_dir = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'w':
            if (cstr_parse_long(optarg, &n) != 0 || n < 0 || n > 1024)
                usage();
            ready_fd = (int) n;
            break;
        default:
            usage();
        }
    }
    if (master.config_dir == NULL || optind != argc)
        usage();
    if (ready_fd >= 0)
        fcntl(ready_fd, F_SETFD, FD_CLOEXEC);

    diag_init(&diags);
    if (instance_load(master.config_dir, &master.cfg, &mc, &diags) > 0) {
        diag_log(&diags);
        log_fatal("%s: configuration errors, not started", master.config_dir);
    }
    log_configure(config_str(master.cfg, "syslog_name"), config_str(master.cfg, "maillog_file"),
                  config_str(master.cfg, "myhostname"));
    log_set_stderr(true, foreground);
    if (foreground && setenv("POSTERN_LOG_STDERR", "1", 1) != 0)
        log_fatal_errno("setenv");
    diag_log(&diags);
    diag_free(&diags);
    diag_init(&diags);
    if (!instance_make_dirs(master.cfg, &diags)) {
        diag_log(&diags);
        log_fatal("cannot set up the queue directory");
    }
    diag_free(&diags);
    lock_instance();

    master.loop = event_loop_new();
    signal(SIGPIPE, SIG_IGN);
    event_signal(master.loop, SIGCHLD, master_reap, NULL);
    event_signal(master.loop, SIGHUP, on_reload, NULL);
    event_signal(master.loop, SIGTERM, on_stop, NULL);
    if (foreground)
        event_signal(master.loop, SIGINT, on_stop, NULL);
    else
        signal(SIGINT, SIG_IGN);

    if (!master_services_build(&mc, false))
        log_fatal("cannot start the services, see above");
    mastercf_free(&mc);
    log_info("daemon started -- version %s, configuration %s", POSTERN_VERSION, master.config_dir);

    if (ready_fd >= 0) {
        int     devnull;

        (void) fd_write_all(ready_fd, "ready\n", 6);
        close(ready_fd);
        /* Detached: from now on we log only to the log file or syslog. */
        if ((devnull = open("/dev/null", O_RDWR)) >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
            if (devnull > STDERR_FILENO)
                close(devnull);
        }
        log_set_stderr(false, false);
    }

    while (!master.stopping)
        event_loop_run_once(master.loop, -1);

    log_info("terminating on signal %d", stop_signal);
    stop_children();
    (void) unlink(str_cstr(pid_path));
    close(pid_fd);
    return 0;
}
