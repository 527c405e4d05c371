/*
 * postern_control.c - start, start-fg, stop, reload, status, check.
 *
 * "start" checks the configuration, then runs master detached from the
 * terminal and waits for it to say "ready" (every listener open) on a pipe
 * that is also master's stderr until then, so that any start-up error
 * master reports is shown here. "stop" signals master and waits until it
 * released the instance lock, which it does only after all its children
 * have exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "instance.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "str.h"

#define START_TIMEOUT_MS  60000
#define STOP_TIMEOUT_MS   60000
#define POLL_STEP_MS      20

/* Load and check the instance; print every diagnostic. NULL when it has errors. */
static config_t *
load_checked(const char *dir)
{
    config_t *cfg;
    struct mastercf mc;
    diag_list_t diags;
    size_t  errors;

    diag_init(&diags);
    errors = instance_load(dir, &cfg, &mc, &diags);
    diag_log(&diags);
    diag_free(&diags);
    mastercf_free(&mc);
    if (errors > 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Log to the instance's maillog as well as to stderr. */
static void
log_to_instance(config_t *cfg)
{
    log_init("postern-script");
    log_configure(config_str(cfg, "syslog_name"), config_str(cfg, "maillog_file"),
                  config_str(cfg, "myhostname"));
    log_set_stderr(true, false);
}

static void
master_path(config_t *cfg, str_t *out)
{
    str_printf(out, "%s/master", config_str(cfg, "daemon_directory"));
}

int
postern_start(const char *dir, bool foreground)
{
    config_t *cfg = load_checked(dir);
    str_t  *exe = str_new(0);
    pid_t   running;
    int     p[2];

    if (cfg == NULL) {
        log_error("%s: configuration errors; the mail system was not started", dir);
        return POSTERN_EXIT_FAIL;
    }
    if ((running = instance_master_pid(cfg)) > 0) {
        log_error("the Postern mail system is already running (pid %ld)", (long) running);
        return POSTERN_EXIT_FAIL;
    }
    master_path(cfg, exe);
    log_to_instance(cfg);
    log_info("starting the Postern mail system");
    if (foreground) {
        char   *argv[] = {"master", "-c", (char *) dir, "-f", NULL};

        fflush(NULL);
        execv(str_cstr(exe), argv);
        log_fatal_errno("exec %s", str_cstr(exe));
    }

    if (pipe2(p, O_CLOEXEC) != 0)
        log_fatal_errno("pipe2");
    fflush(NULL);
    pid_t   pid = fork();

    if (pid < 0)
        log_fatal_errno("fork");
    if (pid == 0) {
        char    fdbuf[16];
        int     devnull = open("/dev/null", O_RDWR);

        snprintf(fdbuf, sizeof(fdbuf), "%d", STDERR_FILENO);
        if (setsid() < 0 || devnull < 0 || dup2(devnull, STDIN_FILENO) < 0
            || dup2(devnull, STDOUT_FILENO) < 0 || dup2(p[1], STDERR_FILENO) < 0)
            _exit(127);
        char   *argv[] = {"master", "-c", (char *) dir, "-w", fdbuf, NULL};

        execv(str_cstr(exe), argv);
        _exit(127);
    }
    close(p[1]);

    /* Relay what master says until "ready" or the pipe closes. */
    str_t  *said = str_new(256);
    int64_t deadline = clock_mono_ms() + START_TIMEOUT_MS;
    bool    ready = false;

    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int64_t left = deadline - clock_mono_ms();
        char    buf[1024];

        if (left <= 0)
            break;
        if (poll(&pfd, 1, (int) left) <= 0)
            continue;
        ssize_t n = read(p[0], buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        str_append(said, buf, (size_t) n);
    }
    close(p[0]);
    const char *mark = strstr(str_cstr(said), "ready\n");

    if (mark && (mark == str_cstr(said) || mark[-1] == '\n')) {
        ready = true;
        fwrite(str_cstr(said), 1, (size_t) (mark - str_cstr(said)), stderr);
    } else {
        fwrite(str_cstr(said), 1, str_len(said), stderr);
    }
    str_free(said);
    str_free(exe);
    if (!ready) {
        log_error("the Postern mail system did not start (see %s)",
                  *config_str(cfg, "maillog_file") ? config_str(cfg, "maillog_file") : "the mail log");
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    config_free(cfg);
    return POSTERN_EXIT_OK;
}

/* The config needed to find master; errors in it do not stop "stop"/"status". */
static config_t *
load_for_control(const char *dir)
{
    config_t *cfg = config_new();
    diag_list_t diags;
    str_t  *path = str_new(0);

    diag_init(&diags);
    config_set(cfg, "config_directory", dir);
    str_printf(path, "%s/main.cf", dir);
    if (config_read_file(cfg, str_cstr(path), &diags) != 0) {
        diag_log(&diags);
        log_fatal("cannot read %s", str_cstr(path));
    }
    diag_free(&diags);
    str_free(path);
    return cfg;
}

static bool
wait_for_exit(config_t *cfg, int64_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;

    while (instance_master_pid(cfg) > 0) {
        if (clock_mono_ms() > deadline)
            return false;
        usleep(POLL_STEP_MS * 1000);
    }
    return true;
}

int
postern_stop(const char *dir)
{
    config_t *cfg = load_for_control(dir);
    pid_t   pid = instance_master_pid(cfg);

    if (pid <= 0) {
        log_error("the Postern mail system is not running");
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    log_to_instance(cfg);
    log_info("stopping the Postern mail system");
    if (kill(pid, SIGTERM) != 0) {
        log_error("cannot signal master pid %ld: %s", (long) pid, strerror(errno));
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    if (!wait_for_exit(cfg, STOP_TIMEOUT_MS)) {
        log_error("master pid %ld did not stop within %d seconds", (long) pid,
                  STOP_TIMEOUT_MS / 1000);
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    config_free(cfg);
    return POSTERN_EXIT_OK;
}

int
postern_reload(const char *dir)
{
    config_t *cfg = load_checked(dir);
    pid_t   pid;

    if (cfg == NULL) {
        log_error("%s: configuration errors; not reloading", dir);
        return POSTERN_EXIT_FAIL;
    }
    if ((pid = instance_master_pid(cfg)) <= 0) {
        log_error("the Postern mail system is not running");
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    log_to_instance(cfg);
    log_info("refreshing the Postern mail system");
    if (kill(pid, SIGHUP) != 0) {
        log_error("cannot signal master pid %ld: %s", (long) pid, strerror(errno));
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    config_free(cfg);
    return POSTERN_EXIT_OK;
}

int
postern_status(const char *dir)
{
    config_t *cfg = load_for_control(dir);
    pid_t   pid = instance_master_pid(cfg);

    config_free(cfg);
    if (pid > 0) {
        printf("running (pid %ld)\n", (long) pid);
        return POSTERN_EXIT_OK;
    }
    printf("not running\n");
    return POSTERN_EXIT_FAIL;
}

int
postern_check(const char *dir)
{
    config_t *cfg;
    struct mastercf mc;
    diag_list_t diags;
    size_t  errors;

    diag_init(&diags);
    errors = instance_load(dir, &cfg, &mc, &diags);
    if (errors == 0)
        instance_check_dirs(cfg, &diags);
    diag_log(&diags);
    errors = diag_errors(&diags);
    diag_free(&diags);
    mastercf_free(&mc);
    config_free(cfg);
    return errors ? POSTERN_EXIT_FAIL : POSTERN_EXIT_OK;
}
