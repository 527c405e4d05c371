/*
 * pipe.c - delivery to an external command, like Postfix's pipe(8).
 *
 * master.cf:
 *   name unix - n n - - pipe flags=FR user=NAME[:GROUP] argv=/path arg ${recipient} ...
 * Attributes before argv=: flags=, user= (required, never root), size=
 * (bytes; a larger message bounces 5.2.3), eol= ("\n" or "\r\n"),
 * directory= (working directory of the command, default "/"),
 * null_sender= (what ${sender} is for <>, default MAILER-DAEMON).
 * Everything after argv= is the command and its arguments, run without a
 * shell, with these macros expanded in each argument ($name or ${name}):
 *   per message:   ${sender} ${nexthop} ${queue_id} ${size}
 *                  ${client_address} ${client_hostname} ${client_helo}
 *                  ${client_protocol}
 *   per recipient: ${recipient} ${original_recipient} ${user} ${extension}
 *                  ${domain} ${mailbox}
 * An argument with a per-recipient macro is repeated once per recipient of
 * the request. Flags: F "From " line, O X-Original-To:, R Return-Path:,
 * D Delivered-To: (O and D run the command once per recipient), > quote
 * "From " lines, . dot-stuff lines, B blank line at the end, h/H/u fold the
 * recipient domain / nexthop / recipient local part to lower case, q quote
 * addresses in arguments (RFC 5321 external form), X (final delivery) is
 * accepted. An unknown flag, macro or attribute, a missing or root user=,
 * is a configuration error: every request is deferred (4.3.5) with it.
 *
 * Results: exit 0 sent; a sysexits code maps to its status (EX_TEMPFAIL,
 * EX_OSERR defer, the others bounce); a first output line starting with
 * an enhanced status code decides instead; a signal defers; the command
 * still running after <service>_time_limit (default command_time_limit)
 * has its process group killed and the mail bounces (5.0.0). The command's
 * output (first PIPE_OUTPUT_MAX bytes) goes into the reason.
 *
 * SECURITY: started as root (unpriv = n) only to run the command as
 * user=; the message is copied from the queue file (opened by the request
 * reader) to an anonymous memory file that becomes the command's stdin,
 * so the command never sees the queue. The command runs in its own
 * session with a minimal environment, umask 077.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"
#include "deliver.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "queue.h"
#include "server.h"
#include "str.h"

#define PIPE_OUTPUT_MAX     1024        /* command output kept for the reason */
#define PIPE_MAX_ARGS       256         /* argv= elements */
#define PIPE_POLL_MS        100

/* Flags of flags=. */
#define PF_FROM     (1 << 0)    /* F */
#define PF_ORIG     (1 << 1)    /* O */
#define PF_RPATH    (1 << 2)    /* R */
#define PF_DELTO    (1 << 3)    /* D */
#define PF_QFROM    (1 << 4)    /* > */
#define PF_DOT      (1 << 5)    /* . */
#define PF_BLANK    (1 << 6)    /* B */
#define PF_FOLD_DOM (1 << 7)    /* h */
#define PF_FOLD_HOP (1 << 8)    /* H */
#define PF_FOLD_LOC (1 << 9)    /* u */
#define PF_QUOTE    (1 << 10)   /* q */

static struct {
    str_t  *error;              /* non-empty: configuration error, defer everything */
    int     flags;
    uid_t   uid;
    gid_t   gid;
    char   *user_name, *home, *shell;
    char  **argv;               /* templates */
    size_t  argc;
    long    size_limit;         /* 0 = none */
    bool    crlf;
    const char *directory;
    const char *null_sender;
    const char *delimiter;
    long    time_limit;
    bool    root;
} pconf;

static const char *const msg_macros[] = {
    "sender", "nexthop", "queue_id", "size", "client_address", "client_hostname", "client_helo",
    "client_protocol", NULL,
};
static const char *const rcpt_macros[] = {
    "recipient", "original_recipient", "user", "extension", "domain", "mailbox", NULL,
};

static bool
in_list(const char *const *list, const char *name, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, name, len) == 0)
            return true;
    return false;
}

/*
 * Walk the macros of template t: calls fn(name, len, ctx) for each, and
 * appends the literal text around them to out (when out is not NULL) with
 * the macro values fn appends. Returns false on a syntax error.
 */
typedef void (*macro_fn)(const char *name, size_t len, str_t *out, void *ctx);

static bool
macro_walk(const char *t, str_t *out, macro_fn fn, void *ctx)
{
    while (*t) {
        const char *name;
        size_t  len;

        if (*t != '$') {
            if (out)
                str_putc(out, *t);
            t++;
            continue;
        }
        t++;
        if (*t == '$') {
            if (out)
                str_putc(out, '$');
            t++;
            continue;
        }
        if (*t == '{' || *t == '(') {
            char    close = *t == '{' ? '}' : ')';
            const char *end = strchr(t + 1, close);

            if (end == NULL)
                return false;
            name = t + 1;
            len = (size_t) (end - name);
            t = end + 1;
        } else {
            name = t;
            while ((*t >= 'a' && *t <= 'z') || *t == '_' || (*t >= '0' && *t <= '9'))
                t++;
            len = (size_t) (t - name);
        }
        if (len == 0)
            return false;
        fn(name, len, out, ctx);
    }
    return true;
}

struct check_ctx {
    bool    per_rcpt;
    str_t  *unknown;
};

static void
check_macro(const char *name, size_t len, str_t *out, void *vctx)
{
    struct check_ctx *c = vctx;

    if (in_list(rcpt_macros, name, len))
        c->per_rcpt = true;
    else if (!in_list(msg_macros, name, len) && str_len(c->unknown) == 0)
        str_set(c->unknown, name, len);
}

/* Parse the master.cf arguments (pre_init: still root, so getpwnam works everywhere). */
static void
pipe_pre_init(config_t *cfg, int argc, char **argv)
{
    const char *user = NULL;
    int     i;

    pconf.error = str_new(0);
    pconf.directory = "/";
    pconf.null_sender = "MAILER-DAEMON";
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (cstr_has_prefix(a, "argv=")) {
            break;
        } else if (cstr_has_prefix(a, "flags=")) {
            for (const char *f = a + 6; *f; f++) {
                const char *all = "FORD>.BhHuqX";
                const char *p = strchr(all, *f);

                if (p == NULL) {
                    str_printf(pconf.error, "unknown flag '%c' in flags=", *f);
                    return;
                }
                if (*f != 'X')
                    pconf.flags |= 1 << (p - all);
            }
        } else if (cstr_has_prefix(a, "user=")) {
            user = a + 5;
        } else if (cstr_has_prefix(a, "size=")) {
            if (cstr_parse_long(a + 5, &pconf.size_limit) != 0 || pconf.size_limit < 0) {
                str_printf(pconf.error, "bad size= value \"%s\"", a + 5);
                return;
            }
        } else if (cstr_has_prefix(a, "eol=")) {
            if (strcmp(a + 4, "\\r\\n") == 0)
                pconf.crlf = true;
            else if (strcmp(a + 4, "\\n") != 0) {
                str_printf(pconf.error, "eol= must be \\n or \\r\\n");
                return;
            }
        } else if (cstr_has_prefix(a, "directory=")) {
            pconf.directory = a + 10;
        } else if (cstr_has_prefix(a, "null_sender=")) {
            pconf.null_sender = a + 12;
        } else {
            str_printf(pconf.error, "unknown attribute \"%s\" (expected flags=, user=, "
                       "size=, eol=, directory=, null_sender= or argv=)", a);
            return;
        }
    }
    if (i == argc || argv[i][5] == 0) {
        str_set_cstr(pconf.error, "argv= is missing or empty");
        return;
    }
    pconf.argc = (size_t) (argc - i);
    if (pconf.argc > PIPE_MAX_ARGS) {
        str_printf(pconf.error, "more than %d arguments in argv=", PIPE_MAX_ARGS);
        return;
    }
    pconf.argv = mem_array(pconf.argc + 1, sizeof(char *));
    pconf.argv[0] = mem_strdup(argv[i] + 5);
    for (size_t k = 1; k < pconf.argc; k++)
        pconf.argv[k] = mem_strdup(argv[i + (int) k]);
    for (size_t k = 0; k < pconf.argc; k++) {
        struct check_ctx c = {.unknown = str_new(0)};
        bool    ok = macro_walk(pconf.argv[k], NULL, check_macro, &c);

        if (!ok || str_len(c.unknown) > 0) {
            if (!ok)
                str_printf(pconf.error, "bad macro syntax in \"%s\"", pconf.argv[k]);
            else
                str_printf(pconf.error, "unknown macro ${%s} in \"%s\"", str_cstr(c.unknown),
                           pconf.argv[k]);
            str_free(c.unknown);
            return;
        }
        str_free(c.unknown);
    }

    /* user=name[:group] */
    if (user == NULL || *user == 0) {
        str_set_cstr(pconf.error, "user= is required");
        return;
    }
    {
        char   *name = mem_strdup(user), *colon = strchr(name, ':');
        struct passwd *pw;
        struct group *gr;

        if (colon)
            *colon = 0;
        if ((pw = getpwnam(name)) == NULL) {
            str_printf(pconf.error, "user=%s: no such user", name);
            mem_free(name);
            return;
        }
        pconf.uid = pw->pw_uid;
        pconf.gid = pw->pw_gid;
        pconf.user_name = mem_strdup(pw->pw_name);
        pconf.home = mem_strdup(pw->pw_dir);
        pconf.shell = mem_strdup(pw->pw_shell);
        if (colon) {
            if ((gr = getgrnam(colon + 1)) == NULL) {
                str_printf(pconf.error, "user=%s: no such group", user);
                mem_free(name);
                return;
            }
            pconf.gid = gr->gr_gid;
        }
        mem_free(name);
        if (pconf.uid == 0 || pconf.gid == 0) {
            str_printf(pconf.error, "user=%s has root privileges; refusing", user);
            return;
        }
    }
}

/* <service>_time_limit, else command_time_limit. */
static long
time_limit(config_t *cfg)
{
    str_t  *name = str_new(0), *value = str_new(0), *err = str_new(0);
    const char *raw;
    long    secs = config_time(cfg, "command_time_limit");

    str_printf(name, "%s_time_limit", server_service_name());
    if ((raw = config_get_raw(cfg, str_cstr(name))) != NULL) {
        long    t;

        if (config_expand(cfg, raw, value, err) && param_parse_time(str_cstr(value), 's', &t)
            && t > 0)
            secs = t;
        else
            log_warn("bad %s value \"%s\": using command_time_limit", str_cstr(name), raw);
    }
    str_free(name);
    str_free(value);
    str_free(err);
    return secs;
}

static void
pipe_post_init(config_t *cfg)
{
    queue_init(cfg);
    pconf.root = geteuid() == 0;
    pconf.delimiter = config_str(cfg, "recipient_delimiter");
    pconf.time_limit = time_limit(cfg);
    if (str_len(pconf.error) == 0 && !pconf.root && pconf.uid != geteuid())
        str_printf(pconf.error, "cannot run commands as %s: the pipe agent does not run as root "
                   "(master.cf unpriv field must be n)", pconf.user_name);
    if (str_len(pconf.error) > 0)
        log_warn("%s service: %s", server_service_name(), str_cstr(pconf.error));
    signal(SIGCHLD, SIG_DFL);
}

/* ---------------------------------------------------------------- expansion */

struct expand_ctx {
    const struct deliver_request *rq;
    const size_t *rcpts;        /* recipients of this run */
    size_t  nrcpts;
    size_t  cur;                /* which one a per-recipient macro uses */
};

/* Address in the form the flags ask for (q: external; h/u: folding when fold). */
static void
addr_form(str_t *out, const char *addr, bool fold)
{
    str_t  *tmp = str_new(0);
    const char *at = strrchr(addr, '@');

    str_set_cstr(tmp, addr);
    if (fold && (pconf.flags & (PF_FOLD_DOM | PF_FOLD_LOC))) {
        size_t  split = at ? (size_t) (at - addr) : str_len(tmp);

        for (size_t k = 0; k < str_len(tmp); k++) {
            char   *c = &tmp->data[k];

            if (((k < split && (pconf.flags & PF_FOLD_LOC))
                 || (k >= split && (pconf.flags & PF_FOLD_DOM))) && *c >= 'A' && *c <= 'Z')
                *c = (char) (*c - 'A' + 'a');
        }
    }
    if (pconf.flags & PF_QUOTE)
        addr_externalize(out, str_cstr(tmp));
    else
        str_set_cstr(out, str_cstr(tmp));
    str_free(tmp);
}

static void
expand_macro(const char *name, size_t len, str_t *out, void *vctx)
{
    struct expand_ctx *x = vctx;
    const struct deliver_request *rq = x->rq;
    str_t  *v = str_new(0);
    char    key[32];

    snprintf(key, sizeof(key), "%.*s", (int) (len < 31 ? len : 31), name);
    if (strcmp(key, "sender") == 0) {
        addr_form(v, *rq->sender ? rq->sender : pconf.null_sender, false);
    } else if (strcmp(key, "nexthop") == 0) {
        str_set_cstr(v, rq->nexthop);
        if (pconf.flags & PF_FOLD_HOP)
            str_lower(v);
    } else if (strcmp(key, "queue_id") == 0) {
        str_set_cstr(v, rq->queue_id);
    } else if (strcmp(key, "size") == 0) {
        str_printf(v, "%lld", rq->message_size);
    } else if (strcmp(key, "client_address") == 0) {
        str_set_cstr(v, rq->client_address);
    } else if (strcmp(key, "client_hostname") == 0) {
        str_set_cstr(v, rq->client_name);
    } else if (strcmp(key, "client_helo") == 0) {
        str_set_cstr(v, rq->helo_name);
    } else if (strcmp(key, "client_protocol") == 0) {
        str_set_cstr(v, rq->protocol);
    } else {
        const struct deliver_rcpt *r = &rq->rcpt[x->rcpts[x->cur]];
        str_t  *a = str_new(0);
        const char *at;
        size_t  local_len, user_len;

        addr_form(a, strcmp(key, "original_recipient") == 0 && *r->orig ? r->orig : r->address,
                  true);
        if (strcmp(key, "recipient") == 0 || strcmp(key, "original_recipient") == 0) {
            str_set_cstr(v, str_cstr(a));
        } else {
            /* The parts come from the internal form (folded), never quoted. */
            str_t  *plain = str_new(0);
            int     saved = pconf.flags;

            pconf.flags &= ~PF_QUOTE;
            addr_form(plain, r->address, true);
            pconf.flags = saved;
            at = strrchr(str_cstr(plain), '@');
            local_len = at ? (size_t) (at - str_cstr(plain)) : str_len(plain);
            user_len = local_len;
            if (*pconf.delimiter && local_len > 1) {
                size_t  d = strcspn(str_cstr(plain) + 1, pconf.delimiter) + 1;

                if (d < local_len)
                    user_len = d;
            }
            if (strcmp(key, "domain") == 0)
                str_set_cstr(v, at ? at + 1 : "");
            else if (strcmp(key, "mailbox") == 0)
                str_set(v, str_cstr(plain), local_len);
            else if (strcmp(key, "user") == 0)
                str_set(v, str_cstr(plain), user_len);
            else if (strcmp(key, "extension") == 0 && user_len < local_len)
                str_set(v, str_cstr(plain) + user_len + 1, local_len - user_len - 1);
            str_free(plain);
        }
        str_free(a);
    }
    if (out)
        str_append_str(out, v);
    str_free(v);
}

/* The argument vector for one run (recipients rcpts[0..n)); caller frees. */
static char **
build_argv(const struct deliver_request *rq, const size_t *rcpts, size_t n)
{
    size_t  cap = pconf.argc * n + 1, count = 0;
    char  **out = mem_array(cap, sizeof(char *));
    str_t  *arg = str_new(0);

    for (size_t k = 0; k < pconf.argc; k++) {
        struct check_ctx c = {.unknown = str_new(0)};
        struct expand_ctx x = {.rq = rq, .rcpts = rcpts, .nrcpts = n};

        macro_walk(pconf.argv[k], NULL, check_macro, &c);
        str_free(c.unknown);
        for (x.cur = 0; x.cur < (c.per_rcpt ? n : 1); x.cur++) {
            str_reset(arg);
            macro_walk(pconf.argv[k], arg, expand_macro, &x);
            out[count++] = mem_strdup(str_cstr(arg));
        }
    }
    out[count] = NULL;
    str_free(arg);
    return out;
}

static void
free_argv(char **v)
{
    for (size_t k = 0; v && v[k]; k++)
        mem_free(v[k]);
    mem_free(v);
}

/* ---------------------------------------------------------------- running */

enum run_result { RUN_SENT, RUN_DEFER, RUN_BOUNCE };

/* sysexits codes: DSN and text (NULL: not a sysexits code). */
static const struct {
    int     code;
    const char *dsn;
    const char *text;
} sysexits[] = {
    {EX_USAGE, "5.3.0", "command line usage error"},
    {EX_DATAERR, "5.6.0", "data format error"},
    {EX_NOINPUT, "5.3.0", "cannot open input"},
    {EX_NOUSER, "5.1.1", "user unknown"},
    {EX_NOHOST, "5.1.2", "host name unknown"},
    {EX_UNAVAILABLE, "5.3.0", "service unavailable"},
    {EX_SOFTWARE, "5.3.0", "internal software error"},
    {EX_OSERR, "4.3.0", "system resource problem"},
    {EX_OSFILE, "5.3.0", "critical OS file missing"},
    {EX_CANTCREAT, "5.2.0", "cannot create output file"},
    {EX_IOERR, "5.3.0", "input/output error"},
    {EX_TEMPFAIL, "4.3.0", "temporary failure"},
    {EX_PROTOCOL, "5.5.0", "remote error in protocol"},
    {EX_NOPERM, "5.7.0", "permission denied"},
    {EX_CONFIG, "5.3.5", "local configuration error"},
};

/* A code "D.D{1,3}.D{1,3}" at the start of text: its length, else 0. */
static size_t
dsn_prefix(const char *t)
{
    const char *p = t;
    int     n;

    if ((*p != '2' && *p != '4' && *p != '5') || p[1] != '.')
        return 0;
    p += 2;
    for (n = 0; *p >= '0' && *p <= '9' && n < 3; n++)
        p++;
    if (n == 0 || *p != '.')
        return 0;
    p++;
    for (n = 0; *p >= '0' && *p <= '9' && n < 3; n++)
        p++;
    if (n == 0 || (*p != 0 && *p != ' ' && *p != '\t' && *p != '\n'))
        return 0;
    return (size_t) (p - t);
}

/* Copy the message for recipient r (or NULL) into a new memory file; -1 with why. */
static int
make_input(struct deliver_request *rq, const struct deliver_rcpt *r, str_t *why)
{
    str_t  *h[4] = {str_new(0), str_new(0), str_new(0), str_new(0)}, *ext = str_new(0);
    const char *headers[5];
    size_t  nh = 0;
    int     fd = memfd_create("postern-pipe", MFD_CLOEXEC), flags = 0;

    if (fd < 0) {
        str_printf(why, "cannot create the message buffer: %s", strerror(errno));
        goto out;
    }
    if (pconf.flags & PF_FROM) {
        char    date[64];
        time_t  now = clock_now();
        struct tm tm;

        if (localtime_r(&now, &tm) == NULL
            || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
            snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
        str_printf(h[nh], "From %s  %s", *rq->sender ? rq->sender : "MAILER-DAEMON", date);
        for (size_t k = 5; k < str_len(h[nh]) - strlen(date) - 2; k++)
            if (h[nh]->data[k] == ' ' || h[nh]->data[k] == '\t')
                h[nh]->data[k] = '_';
        headers[nh] = str_cstr(h[nh]);
        nh++;
    }
    if ((pconf.flags & PF_ORIG) && r != NULL) {
        addr_externalize(ext, *r->orig ? r->orig : r->address);
        str_printf(h[nh], "X-Original-To: %s", str_cstr(ext));
        headers[nh] = str_cstr(h[nh]);
        nh++;
    }
    if ((pconf.flags & PF_DELTO) && r != NULL) {
        addr_externalize(ext, r->address);
        str_lower(ext);
        str_printf(h[nh], "Delivered-To: %s", str_cstr(ext));
        headers[nh] = str_cstr(h[nh]);
        nh++;
    }
    if (pconf.flags & PF_RPATH) {
        addr_externalize(ext, rq->sender);
        str_printf(h[nh], "Return-Path: <%s>", str_cstr(ext));
        headers[nh] = str_cstr(h[nh]);
        nh++;
    }
    headers[nh] = NULL;
    if (pconf.flags & PF_QFROM)
        flags |= DELIVER_COPY_QUOTE_FROM;
    if (pconf.flags & PF_DOT)
        flags |= DELIVER_COPY_DOT;
    if (pconf.flags & PF_BLANK)
        flags |= DELIVER_COPY_BLANK;
    if (pconf.crlf)
        flags |= DELIVER_COPY_CRLF;
    if (deliver_copy(rq, fd, headers, flags, why) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        if (str_len(why) == 0)
            str_printf(why, "cannot rewind the message buffer: %s", strerror(errno));
        close(fd);
        fd = -1;
    }
out:
    for (size_t k = 0; k < 4; k++)
        str_free(h[k]);
    str_free(ext);
    return fd;
}

/* In the child: become the user and run the command. Never returns. */
static _Noreturn void
child(int in, int out, char **args)
{
    char    path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
    str_t  *home = str_new(0), *logname = str_new(0), *user = str_new(0), *shell = str_new(0);
    char   *env[8];
    size_t  ne = 0;
    sigset_t none;

    setsid();
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(EX_OSERR);
    if (pconf.root && (setgroups(1, &pconf.gid) != 0 || setgid(pconf.gid) != 0
                       || setuid(pconf.uid) != 0)) {
        dprintf(2, "cannot switch to user %s: %s\n", pconf.user_name, strerror(errno));
        _exit(EX_TEMPFAIL);
    }
    if (chdir(pconf.directory) != 0) {
        dprintf(2, "cannot change to directory %s: %s\n", pconf.directory, strerror(errno));
        _exit(EX_TEMPFAIL);
    }
    umask(077);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    str_printf(home, "HOME=%s", pconf.home);
    str_printf(logname, "LOGNAME=%s", pconf.user_name);
    str_printf(user, "USER=%s", pconf.user_name);
    str_printf(shell, "SHELL=%s", pconf.shell);
    env[ne++] = path;
    env[ne++] = home->data;
    env[ne++] = logname->data;
    env[ne++] = user->data;
    env[ne++] = shell->data;
    env[ne] = NULL;
    execvpe(args[0], args, env);
    dprintf(2, "cannot execute %s: %s\n", args[0], strerror(errno));
    _exit(EX_TEMPFAIL);
}

/*
 * Run the command with the message on stdin. Sets *dsn (static text) and
 * reason; returns how it ended.
 */
static enum run_result
run(struct deliver_request *rq, const size_t *rcpts, size_t n, const char **dsn, str_t *reason)
{
    int     in, fds[2], status = 0;
    char  **args;
    str_t  *output = str_new(0), *why = str_new(0);
    pid_t   pid;
    int64_t deadline;
    bool    timed_out = false, exited = false, eof = false;
    enum run_result res;

    in = make_input(rq, (pconf.flags & (PF_ORIG | PF_DELTO)) ? &rq->rcpt[rcpts[0]] : NULL, why);
    if (in < 0) {
        *dsn = "4.3.0";
        str_set_cstr(reason, str_cstr(why));
        str_free(output);
        str_free(why);
        return RUN_DEFER;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *dsn = "4.3.0";
        str_printf(reason, "cannot create a pipe: %s", strerror(errno));
        close(in);
        str_free(output);
        str_free(why);
        return RUN_DEFER;
    }
    args = build_argv(rq, rcpts, n);
    if ((pid = fork()) < 0) {
        *dsn = "4.3.0";
        str_printf(reason, "cannot fork: %s", strerror(errno));
        close(in);
        close(fds[0]);
        close(fds[1]);
        free_argv(args);
        str_free(output);
        str_free(why);
        return RUN_DEFER;
    }
    if (pid == 0)
        child(in, fds[1], args);
    close(in);
    close(fds[1]);
    free_argv(args);

    /* Collect output until the command exits (or the time limit passes). */
    deadline = clock_mono_ms() + pconf.time_limit * 1000;
    while (!exited) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int64_t left = deadline - clock_mono_ms();
        pid_t   w;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (!eof && poll(&p, 1, (int) (left < PIPE_POLL_MS ? left : PIPE_POLL_MS)) > 0) {
            char    buf[4096];
            ssize_t got = read(fds[0], buf, sizeof(buf));

            if (got > 0 && str_len(output) < PIPE_OUTPUT_MAX)
                str_append(output, buf, (size_t) got);
            else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
                eof = true;
        } else if (eof) {
            struct timespec ts = {.tv_nsec = 20 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
        if ((w = waitpid(pid, &status, WNOHANG)) == pid)
            exited = true;
        else if (w < 0 && errno != EINTR) {
            exited = true;
            status = EX_TEMPFAIL << 8;
        }
    }
    if (timed_out) {
        if (kill(-pid, SIGKILL) != 0 && errno != ESRCH)
            log_warn_errno("kill process group %ld", (long) pid);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        /* Take what is already there, without waiting for descendants. */
        struct pollfd p = {.fd = fds[0], .events = POLLIN};

        while (!eof && str_len(output) < PIPE_OUTPUT_MAX && poll(&p, 1, 0) > 0) {
            char    buf[4096];
            ssize_t got = read(fds[0], buf, sizeof(buf));

            if (got <= 0)
                break;
            str_append(output, buf, (size_t) got);
        }
    }
    close(fds[0]);
    if (str_len(output) > PIPE_OUTPUT_MAX)
        str_truncate(output, PIPE_OUTPUT_MAX);
    str_chomp(output);

    /* Decide. */
    const char *text;
    size_t  dl = dsn_prefix(str_cstr(output));
    static char out_dsn[16];

    if (timed_out) {
        *dsn = "5.0.0";
        text = "command time limit exceeded";
        res = RUN_BOUNCE;
    } else if (WIFSIGNALED(status)) {
        *dsn = "4.3.0";
        str_printf(why, "command died with signal %d", WTERMSIG(status));
        text = str_cstr(why);
        res = RUN_DEFER;
    } else if (WEXITSTATUS(status) == 0) {
        *dsn = "2.0.0";
        str_printf(why, "delivered via %s service", server_service_name());
        text = str_cstr(why);
        res = RUN_SENT;
    } else {
        int     code = WEXITSTATUS(status);
        size_t  k;

        for (k = 0; k < sizeof(sysexits) / sizeof(sysexits[0]); k++)
            if (sysexits[k].code == code)
                break;
        if (k < sizeof(sysexits) / sizeof(sysexits[0])) {
            *dsn = sysexits[k].dsn;
            text = sysexits[k].text;
        } else {
            *dsn = "5.3.0";
            str_printf(why, "command died with status %d", code);
            text = str_cstr(why);
        }
        res = (*dsn)[0] == '4' ? RUN_DEFER : RUN_BOUNCE;
    }
    /* An enhanced status code on the first output line of a failure decides. */
    if (res != RUN_SENT && !timed_out && dl > 0 && str_cstr(output)[0] != '2') {
        snprintf(out_dsn, sizeof(out_dsn), "%.*s", (int) dl, str_cstr(output));
        *dsn = out_dsn;
        res = out_dsn[0] == '4' ? RUN_DEFER : RUN_BOUNCE;
    }
    str_set_cstr(reason, text);
    if (str_len(output) > 0)
        str_append_printf(reason, ". Command output: %s", str_cstr(output));
    str_free(output);
    str_free(why);
    return res;
}

/* Set the result of recipients rcpts[0..n). */
static void
set_results(struct deliver_request *rq, const size_t *rcpts, size_t n, enum run_result res,
            const char *dsn, const char *reason)
{
    const char *relay = server_service_name();

    for (size_t k = 0; k < n; k++) {
        if (res == RUN_SENT)
            deliver_sent(rq, rcpts[k], relay, dsn, "%s", reason);
        else if (res == RUN_DEFER)
            deliver_defer(rq, rcpts[k], relay, dsn, "%s", reason);
        else
            deliver_bounce(rq, rcpts[k], relay, dsn, "%s", reason);
    }
}

static void
pipe_deliver(struct deliver_request *rq, void *ctx)
{
    str_t  *reason = str_new(0);
    size_t *all;
    const char *dsn;
    enum run_result res;

    all = mem_array(rq->nrcpt, sizeof(size_t));
    for (size_t i = 0; i < rq->nrcpt; i++)
        all[i] = i;
    if (str_len(pconf.error) > 0) {
        set_results(rq, all, rq->nrcpt, RUN_DEFER, "4.3.5", str_cstr(pconf.error));
    } else if (pconf.size_limit > 0 && rq->message_size > pconf.size_limit) {
        set_results(rq, all, rq->nrcpt, RUN_BOUNCE, "5.2.3", "message too large");
    } else if (rq->flags & DELIVER_FLAG_VERIFY) {
        set_results(rq, all, rq->nrcpt, RUN_SENT, "2.0.0", "deliverable via pipe");
    } else if (pconf.flags & (PF_ORIG | PF_DELTO)) {
        /* One run per recipient: the headers name it. */
        for (size_t i = 0; i < rq->nrcpt; i++) {
            res = run(rq, &all[i], 1, &dsn, reason);
            set_results(rq, &all[i], 1, res, dsn, str_cstr(reason));
        }
    } else {
        res = run(rq, all, rq->nrcpt, &dsn, reason);
        set_results(rq, all, rq->nrcpt, res, dsn, str_cstr(reason));
    }
    mem_free(all);
    str_free(reason);
}

static void
pipe_service(stream_t *client, config_t *cfg)
{
    deliver_serve(client, pipe_deliver, NULL);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "pipe",
        .pre_init = pipe_pre_init,
        .post_init = pipe_post_init,
        .service = pipe_service,
        .finish_on_term = true,     /* end the request under way at a stop */
    };

    single_server_main(argc, argv, &ops);
}
