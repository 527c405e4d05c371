/*
 * local_command.c - delivery to |command destinations.
 *
 * The message, with a "From sender date" line, Return-Path: and
 * Delivered-To: on top, is copied into an anonymous memory file first; the
 * command reads it as its standard input, so a command that reads nothing
 * or dies early can never block the agent. The command runs as
 * "/bin/sh -c COMMAND" in a child that is the leader of a new process
 * group, with the owner's uid, gid and groups (root is dropped for good
 * before exec), in the owner's home directory, with a small environment
 * built here (nothing of the agent's own environment leaks except the
 * names in export_environment). Its standard output and error are
 * captured, at most LOCAL_OUTPUT_MAX bytes, for the reason text.
 *
 * After command_time_limit the whole process group is killed and the
 * recipient bounced (as Postfix does). Exit status 0 is success; the
 * sysexits codes map to defer or bounce (local_exit_status); when the
 * command's output starts with an enhanced status code ("5.2.2 ...",
 * "4.3.1 ..."), that code decides. Death by a signal defers.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "local.h"
#include "log.h"
#include "mem.h"

#define COMMAND_SHELL       "/bin/sh"
#define COMMAND_PATH        "PATH=/usr/bin:/bin"
#define COMMAND_SHOW_MAX    100     /* command text shown in reasons */
#define POLL_STEP_MS        100

/* Environment entries, owned. */
struct envv {
    char  **v;
    size_t  n, cap;
};

static void
env_add(struct envv *e, const char *name, const char *value)
{
    str_t  *s = str_new(64);

    str_printf(s, "%s=%s", name, value ? value : "");
    e->v = mem_grow_array(e->v, &e->cap, e->n + 2, sizeof(char *));
    e->v[e->n++] = str_steal(s);
    e->v[e->n] = NULL;
}

static void
env_free(struct envv *e)
{
    for (size_t i = 0; i < e->n; i++)
        mem_free(e->v[i]);
    mem_free(e->v);
}

static void
env_build(struct envv *e, struct local_ctx *ctx, const struct local_attr *a,
          const struct local_owner *o)
{
    const struct deliver_rcpt *r = &ctx->rq->rcpt[ctx->idx];
    const char *p = local_conf.export_env;
    char    name[128];

    env_add(e, "HOME", o->home);
    env_add(e, "USER", o->name);
    env_add(e, "LOGNAME", o->name);
    env_add(e, "SHELL", o->shell);
    env_add(e, "SENDER", ctx->rq->sender);
    env_add(e, "RECIPIENT", a->address);
    env_add(e, "LOCAL", a->local);
    env_add(e, "EXTENSION", a->extension);
    env_add(e, "DOMAIN", a->domain);
    env_add(e, "ORIGINAL_RECIPIENT", r->orig && *r->orig ? r->orig : ctx->rcpt);
    env_add(e, "QUEUE_ID", ctx->rq->queue_id);
    e->v = mem_grow_array(e->v, &e->cap, e->n + 2, sizeof(char *));
    e->v[e->n++] = mem_strdup(COMMAND_PATH);
    e->v[e->n] = NULL;
    while (*p) {
        size_t  len;
        const char *val;

        p += strspn(p, ", \t\r\n");
        if ((len = strcspn(p, ", \t\r\n")) == 0)
            break;
        if (len < sizeof(name) && memchr(p, '=', len) == NULL) {
            memcpy(name, p, len);
            name[len] = 0;
            if ((val = getenv(name)) != NULL)
                env_add(e, name, val);
        }
        p += len;
    }
}

/* "Mon Nov 22 10:00:00 2023" for the From line. */
static void
from_line(str_t *out, const char *sender)
{
    time_t  now = clock_now();
    struct tm tm;
    char    date[64];

    if (gmtime_r(&now, &tm) == NULL || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
    str_printf(out, "From %s  %s\n", *sender ? sender : "MAILER-DAEMON", date);
}

/* Copy the message into an anonymous file for the command's stdin; -1 with why. */
static int
message_file(struct local_ctx *ctx, str_t *why)
{
    struct deliver_request *rq = ctx->rq;
    str_t  *rp = str_new(128), *dt = str_new(128), *from = str_new(128);
    const char *headers[3];
    int     fd;

    if ((fd = memfd_create("postern-local", MFD_CLOEXEC)) < 0) {
        str_printf(why, "memfd_create: %s", strerror(errno));
        goto out;
    }
    str_printf(rp, "Return-Path: <%s>", rq->sender);
    str_printf(dt, "Delivered-To: %s", ctx->rcpt);
    headers[0] = str_cstr(rp);
    headers[1] = str_cstr(dt);
    headers[2] = NULL;
    from_line(from, rq->sender);
    if (fd_write_all(fd, from->data, str_len(from)) < 0) {
        str_printf(why, "write: %s", strerror(errno));
    } else if (deliver_copy(rq, fd, headers, 0, why) != 0) {
        /* why says it */
    } else if (lseek(fd, 0, SEEK_SET) != 0) {
        str_printf(why, "lseek: %s", strerror(errno));
    } else {
        goto out;
    }
    (void) close(fd);
    fd = -1;
  out:
    str_free(rp);
    str_free(dt);
    str_free(from);
    return fd;
}

/* In the child: become o for good and run the command. Never returns. */
static _Noreturn void
child(const struct local_owner *o, const char *command, char **envp, int in_fd, int out_fd)
{
    sigset_t none;
    char   *argv[4] = {"sh", "-c", (char *) command, NULL};

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void) signal(s, SIG_DFL);
    if (setsid() < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0
        || dup2(out_fd, STDERR_FILENO) < 0) {
        _exit(EX_OSERR);
    }
    closefrom(STDERR_FILENO + 1);
    if (geteuid() == 0 || getuid() == 0) {
        if (initgroups(o->name, o->gid) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0) {
            dprintf(STDERR_FILENO, "cannot switch to user %s: %s\n", o->name, strerror(errno));
            _exit(EX_OSERR);
        }
        if (o->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
            _exit(EX_OSERR);            /* root could be regained: refuse */
    }
    if (chdir(o->home) != 0 && chdir("/") != 0)
        _exit(EX_OSERR);
    execve(COMMAND_SHELL, argv, envp);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", COMMAND_SHELL, strerror(errno));
    _exit(EX_OSERR);
}

/* Keep at most LOCAL_OUTPUT_MAX bytes of what fd has now. false at EOF/error. */
static bool
read_output(int fd, str_t *out)
{
    char    buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return false;
    if (str_len(out) < LOCAL_OUTPUT_MAX)
        str_append(out, buf, (size_t) n < LOCAL_OUTPUT_MAX - str_len(out)
                   ? (size_t) n : LOCAL_OUTPUT_MAX - str_len(out));
    return true;
}

/* An enhanced status code at the start of text ("5.1.1 ..."): its length, else 0. */
static size_t
dsn_prefix(const char *text)
{
    const char *p = text;
    int     parts[3] = {0, 0, 0};

    if (*p != '4' && *p != '5')
        return 0;
    p++;
    for (int i = 1; i < 3; i++) {
        if (*p++ != '.')
            return 0;
        while (isdigit((unsigned char) *p) && parts[i] < 4) {
            p++;
            parts[i]++;
        }
        if (parts[i] == 0 || parts[i] > 3)
            return 0;
    }
    return (*p == ' ' || *p == 0) ? (size_t) (p - text) : 0;
}

void
local_command(struct local_ctx *ctx, const struct local_attr *a, const char *command,
              const struct local_owner *owner)
{
    struct local_owner o = {0};
    struct envv env = {0};
    str_t  *why = str_new(64), *out = str_new(256), *text = str_new(256), *show = str_new(64);
    int     in_fd = -1, pipefd[2] = {-1, -1}, status = 0;
    bool    timed_out = false, have_o = false;
    int64_t deadline;
    pid_t   pid;

    while (*command == ' ' || *command == '\t')
        command++;
    local_clean_text(show, command, strlen(command), COMMAND_SHOW_MAX);
    if (*command == 0) {
        local_result(ctx, LOCAL_BOUNCE, "5.3.5", "empty command in an alias or forward list");
        goto out;
    }
    if (owner && owner->uid != 0) {
        local_owner_copy(&o, owner);
    } else if (!local_default_privs(&o, why)) {
        local_result(ctx, LOCAL_DEFER, "4.3.5", "cannot run command \"%s\": %s", str_cstr(show),
                     str_cstr(why));
        goto out;
    }
    have_o = true;
    str_printf(text, "command:%ld:%s", (long) o.uid, command);
    if (local_dup(ctx, str_cstr(text)))
        goto out;
    if (!local_conf.root && o.uid != geteuid()) {
        /* Without root only our own account can run commands. */
        local_owner_free(&o);
        if (!local_owner_by_uid(geteuid(), &o)) {
            have_o = false;
            local_result(ctx, LOCAL_DEFER, "4.3.5", "cannot find the account of uid %ld",
                         (long) geteuid());
            goto out;
        }
    }
    if ((in_fd = message_file(ctx, why)) < 0) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot prepare the message for command \"%s\": %s",
                     str_cstr(show), str_cstr(why));
        goto out;
    }
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "pipe: %s", strerror(errno));
        goto out;
    }
    env_build(&env, ctx, a, &o);
    if ((pid = fork()) < 0) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(&o, command, env.v, in_fd, pipefd[1]);
    (void) close(pipefd[1]);
    pipefd[1] = -1;
    (void) fcntl(pipefd[0], F_SETFL, O_NONBLOCK);

    deadline = clock_mono_ms() + local_conf.command_time_limit * 1000;
    for (bool reading = true;;) {
        int64_t left = deadline - clock_mono_ms();
        pid_t   w;

        if ((w = waitpid(pid, &status, WNOHANG)) == pid) {
            while (reading && read_output(pipefd[0], out) && str_len(out) < LOCAL_OUTPUT_MAX)
                ;                       /* what it wrote before it exited */
            break;
        }
        if (w < 0 && errno != EINTR) {
            log_warn_errno("waitpid %ld", (long) pid);
            status = EX_OSERR << 8;
            break;
        }
        if (left <= 0) {
            timed_out = true;
            (void) kill(-pid, SIGKILL);
            (void) kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        if (reading) {
            struct pollfd p = {.fd = pipefd[0], .events = POLLIN};

            if (poll(&p, 1, (int) (left < POLL_STEP_MS ? left : POLL_STEP_MS)) > 0)
                reading = read_output(pipefd[0], out);
        } else {
            struct timespec ts = {0, 10 * 1000 * 1000};

            (void) nanosleep(&ts, NULL);
        }
    }
    str_reset(text);
    local_clean_text(text, out->data, str_len(out), LOCAL_OUTPUT_MAX);
    if (timed_out) {
        log_warn("%s: command \"%s\" (pid %ld) ran longer than command_time_limit (%lds): killed",
                 ctx->rq->queue_id, str_cstr(show), (long) pid, local_conf.command_time_limit);
        local_result(ctx, LOCAL_BOUNCE, "5.3.0", "command time limit exceeded: \"%s\"%s%s",
                     str_cstr(show), str_len(text) ? ". Command output: " : "", str_cstr(text));
    } else if (WIFSIGNALED(status)) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "command \"%s\" died with signal %d%s%s",
                     str_cstr(show), WTERMSIG(status), str_len(text) ? ". Command output: " : "",
                     str_cstr(text));
    } else {
        const char *dsn, *desc;
        int     code = WEXITSTATUS(status);
        enum local_status st = local_exit_status(code, &dsn, &desc);
        size_t  plen = code ? dsn_prefix(str_cstr(text)) : 0;
        char    given[16];

        if (st == LOCAL_SENT) {
            local_result(ctx, LOCAL_SENT, "2.0.0", "delivered to command: %s", str_cstr(show));
        } else if (plen > 0 && plen < sizeof(given)) {
            memcpy(given, str_cstr(text), plen);
            given[plen] = 0;
            local_result(ctx, given[0] == '4' ? LOCAL_DEFER : LOCAL_BOUNCE, given,
                         "command \"%s\" failed with exit status %d: %s", str_cstr(show), code,
                         str_cstr(text) + plen + (str_cstr(text)[plen] == ' '));
        } else {
            local_result(ctx, st, dsn, "command \"%s\" failed with exit status %d (%s)%s%s",
                         str_cstr(show), code, desc, str_len(text) ? ". Command output: " : "",
                         str_cstr(text));
        }
    }
  out:
    if (in_fd >= 0)
        (void) close(in_fd);
    if (pipefd[0] >= 0)
        (void) close(pipefd[0]);
    if (pipefd[1] >= 0)
        (void) close(pipefd[1]);
    env_free(&env);
    if (have_o)
        local_owner_free(&o);
    str_free(why);
    str_free(out);
    str_free(text);
    str_free(show);
}
