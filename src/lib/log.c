/*
 * log.c - Postfix-style log lines to a file, syslog and/or stderr.
 *
 * The whole line is formatted first and written with one write(2) on an
 * O_APPEND descriptor, so lines from concurrent processes do not interleave.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define LOG_LINE_MAX 4096

static char log_prog[64] = "postern";
static char log_name[64] = "postern";
static char log_host[256];
static int log_fd = -1;
static bool log_use_syslog;
static bool log_stderr_on = true;
static bool log_stderr_full;
static unsigned log_problems;
static void (*log_fatal_hook)(void);

static void
copy_bounded(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

static pid_t log_pid;           /* 0 until the first line of this process */

static void
log_forget_pid(void)
{
    log_pid = 0;
}

void
log_init(const char *program)
{
    const char *slash = strrchr(program, '/');
    static bool registered;

    copy_bounded(log_prog, sizeof(log_prog), slash ? slash + 1 : program);
    if (!registered) {
        /* The pid is cached per process; a fork makes the child ask again. */
        (void) pthread_atfork(NULL, NULL, log_forget_pid);
        /*
         * With TZ unset, glibc checks /etc/localtime on every localtime_r();
         * naming it once keeps that to the first call.
         */
        if (getenv("TZ") == NULL)
            (void) setenv("TZ", ":/etc/localtime", 0);
        tzset();
        registered = true;
    }
}

const char *
log_program(void)
{
    return log_prog;
}

void
log_configure(const char *syslog_name, const char *maillog_file, const char *hostname)
{
    if (syslog_name && *syslog_name)
        copy_bounded(log_name, sizeof(log_name), syslog_name);
    if (hostname && *hostname) {
        copy_bounded(log_host, sizeof(log_host), hostname);
    } else if (gethostname(log_host, sizeof(log_host) - 1) != 0) {
        copy_bounded(log_host, sizeof(log_host), "localhost");
    }
    /* Use the short host name, as syslog does. */
    char   *dot = strchr(log_host, '.');

    if (dot)
        *dot = 0;
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    log_use_syslog = false;
    if (maillog_file && *maillog_file) {
        log_fd = open(maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (log_fd < 0) {
            fprintf(stderr, "%s: warning: cannot open log file %s: %s\n",
                    log_prog, maillog_file, strerror(errno));
        }
    } else {
        static char ident[160];

        snprintf(ident, sizeof(ident), "%s/%s", log_name, log_prog);
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        log_use_syslog = true;
    }
    log_stderr_on = false;
}

void
log_set_stderr(bool enabled, bool full_format)
{
    log_stderr_on = enabled;
    log_stderr_full = full_format;
}

unsigned
log_problem_count(void)
{
    return log_problems;
}

void
log_set_fatal_hook(void (*hook)(void))
{
    log_fatal_hook = hook;
}

static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t) n;
    }
}

static void log_emit(int priority, const char *prefix, const char *fmt, va_list ap, int err)
    __attribute__((format(printf, 3, 0)));

static void
log_emit(int priority, const char *prefix, const char *fmt, va_list ap, int err)
{
    char    text[LOG_LINE_MAX];
    char    line[LOG_LINE_MAX + 512];
    size_t  n;
    int     saved = errno;

    n = (size_t) snprintf(text, sizeof(text), "%s", prefix);
    if (n < sizeof(text))
        vsnprintf(text + n, sizeof(text) - n, fmt, ap);
    if (err) {
        n = strlen(text);
        snprintf(text + n, sizeof(text) - n, ": %s", strerror(err));
    }
    /* Never let control characters from peer data reach the log verbatim. */
    for (char *p = text; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';

    if (log_fd >= 0 || (log_stderr_on && log_stderr_full)) {
        char    stamp[32];
        time_t  now = clock_now();
        struct tm tm;

        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        if (log_host[0] == 0 && gethostname(log_host, sizeof(log_host) - 1) != 0)
            copy_bounded(log_host, sizeof(log_host), "localhost");
        n = (size_t) snprintf(line, sizeof(line), "%s %s %s/%s[%ld]: %s\n",
                              stamp, log_host, log_name, log_prog,
                              (long) (log_pid ? log_pid : (log_pid = getpid())), text);
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        if (log_fd >= 0)
            write_all(log_fd, line, n);
        if (log_stderr_on && log_stderr_full)
            write_all(STDERR_FILENO, line, n);
    }
    if (log_use_syslog)
        syslog(priority, "%s", text);
    if (log_stderr_on && !log_stderr_full) {
        n = (size_t) snprintf(line, sizeof(line), "%s: %s\n", log_prog, text);
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        write_all(STDERR_FILENO, line, n);
    }
    errno = saved;
}

#define LOG_BODY(prio, prefix, err) \
    do { va_list ap; va_start(ap, fmt); log_emit(prio, prefix, fmt, ap, err); va_end(ap); } while (0)

void
log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_INFO, "", 0);
}

void
log_warn(const char *fmt, ...)
{
    log_problems++;
    LOG_BODY(LOG_WARNING, "warning: ", 0);
}

void
log_warn_errno(const char *fmt, ...)
{
    int     err = errno;

    log_problems++;
    LOG_BODY(LOG_WARNING, "warning: ", err);
}

void
log_error(const char *fmt, ...)
{
    log_problems++;
    LOG_BODY(LOG_ERR, "error: ", 0);
}

void
log_fatal(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "fatal: ", 0);
    if (log_fatal_hook)
        log_fatal_hook();
    exit(1);
}

void
log_fatal_errno(const char *fmt, ...)
{
    int     err = errno;

    LOG_BODY(LOG_CRIT, "fatal: ", err);
    if (log_fatal_hook)
        log_fatal_hook();
    exit(1);
}

void
log_panic(const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "panic: ", 0);
    abort();
}
