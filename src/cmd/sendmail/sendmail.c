/*
 * sendmail - the Sendmail-compatible front end for local mail submission.
 *
 * Usage: sendmail [options] [recipient ...]      (also called as mailq, newaliases)
 *
 * Reads a message on standard input, turns it into submission records
 * (maildrop.h) and pipes them to postdrop ($command_directory/postdrop),
 * which stores them in maildrop/. With -bs it holds an SMTP dialogue on
 * standard input and output instead (sendmail_smtp.c). Exits 0 once postdrop has: the message
 * is then safely queued. Errors exit with a sysexits(3) status and a
 * message on standard error. Called as "mailq" it runs "postern queue -p";
 * as "newaliases" it rebuilds $alias_database.
 *
 * SECURITY: runs with the caller's privileges and needs no others; all it
 * can do is hand data to postdrop, which checks it again. Options that
 * cannot apply are refused with EX_USAGE or ignored as Postfix ignores them
 * (see docs/submission.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "cleanup_proto.h"
#include "config.h"
#include "dict.h"
#include "instance.h"
#include "log.h"
#include "maildrop.h"
#include "mem.h"
#include "rec.h"
#include "str.h"
#include "stream.h"
#include "submit.h"
#include "sendmail.h"

static const char *progname = "sendmail";

static _Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static _Noreturn void
die(int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

enum mode {
    MODE_DELIVER,           /* the default: read a message and queue it */
    MODE_MAILQ,             /* -bp, mailq */
    MODE_NEWALIASES,        /* -bi, -I, newaliases */
    MODE_FLUSH,             /* -q */
    MODE_SMTP,              /* -bs: an SMTP dialogue on standard input and output */
};

struct options {
    enum mode mode;
    const char *config_dir;
    const char *sender;         /* -f / -r; NULL: the login name */
    const char *full_name;      /* -F */
    bool    extract;            /* -t */
    bool    ignore_dots;        /* -i, -oi */
    int     notify;             /* -N, a DSN_NOTIFY_* mask, 0 when not given */
    int     ret;                /* -R, DSN_RET_*, 0 when not given */
    const char *envid;          /* -V */
};

static void
usage(void)
{
    die(EX_USAGE, "usage: sendmail [-t] [-i] [-f sender] [-F name] [-C config_dir] [-N dsn] "
        "[-R ret] [-V envid] [recipient ...]");
}

/* -N: "never" or a comma-separated list of success, failure, delay. */
static int
parse_notify(const char *arg)
{
    char   *copy = mem_strdup(arg), *save = NULL;
    int     mask = 0;

    for (char *w = strtok_r(copy, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
        if (strcasecmp(w, "never") == 0)
            mask |= DSN_NOTIFY_NEVER;
        else if (strcasecmp(w, "success") == 0)
            mask |= DSN_NOTIFY_SUCCESS;
        else if (strcasecmp(w, "failure") == 0)
            mask |= DSN_NOTIFY_FAILURE;
        else if (strcasecmp(w, "delay") == 0)
            mask |= DSN_NOTIFY_DELAY;
        else
            die(EX_USAGE, "-N: bad DSN notification keyword \"%s\"", w);
    }
    mem_free(copy);
    if (mask == 0 || ((mask & DSN_NOTIFY_NEVER) && mask != DSN_NOTIFY_NEVER))
        die(EX_USAGE, "-N: use \"never\" alone, or any of success, failure, delay");
    return mask;
}

/*
 * Parse the command line. Options follow Sendmail/Postfix; argv is
 * permuted by nothing: recipients start at the first non-option.
 */
static int
parse_args(int argc, char **argv, struct options *o)
{
    int     ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:q:r:tvx")) != -1) {
        switch (ch) {
        case 'B': case 'G': case 'L': case 'O': case 'U': case 'X': case 'c':
        case 'e': case 'h': case 'm': case 'n': case 'p': case 'v': case 'x':
            break;                  /* accepted and ignored, as by Postfix */
        case 'C':
            o->config_dir = optarg;
            break;
        case 'F':
            o->full_name = optarg;
            break;
        case 'I':
            o->mode = MODE_NEWALIASES;
            break;
        case 'N':
            o->notify = parse_notify(optarg);
            break;
        case 'R':
            if (strcasecmp(optarg, "full") == 0)
                o->ret = DSN_RET_FULL;
            else if (strcasecmp(optarg, "hdrs") == 0)
                o->ret = DSN_RET_HDRS;
            else
                die(EX_USAGE, "-R: use \"full\" or \"hdrs\", not \"%s\"", optarg);
            break;
        case 'V':
            o->envid = optarg;
            break;
        case 'b':
            if (strcmp(optarg, "m") == 0 || strcmp(optarg, "d") == 0)
                o->mode = MODE_DELIVER;
            else if (strcmp(optarg, "p") == 0)
                o->mode = MODE_MAILQ;
            else if (strcmp(optarg, "i") == 0)
                o->mode = MODE_NEWALIASES;
            else if (strcmp(optarg, "s") == 0)
                o->mode = MODE_SMTP;
            else if (strcmp(optarg, "v") == 0)
                die(EX_UNAVAILABLE, "-bv (address verification report) is not supported yet");
            else
                die(EX_USAGE, "-b%s: unsupported mode", optarg);
            break;
        case 'f':
        case 'r':
            o->sender = optarg;
            break;
        case 'i':
            o->ignore_dots = true;
            break;
        case 'o':
            if (strcmp(optarg, "i") == 0)
                o->ignore_dots = true;
            break;                  /* -oX: other Sendmail options are ignored */
        case 'q':
            if (optarg[0] == 'R' || optarg[0] == 'S' || optarg[0] == 'I')
                die(EX_UNAVAILABLE, "-q%c is not supported", optarg[0]);
            break;                  /* -qINTERVAL: no daemon mode; ignored like Postfix */
        case 't':
            o->extract = true;
            break;
        default:
            if (optopt && strchr("BCFLNORVXbefhopqr", optopt))
                die(EX_USAGE, "option -%c needs an argument", optopt);
            fprintf(stderr, "%s: unknown option -%c\n", progname, optopt ? optopt : '?');
            usage();
        }
    }
    return optind;
}

/* Run argv, return its sysexits status (EX_TEMPFAIL if it died by a signal). */
static int
run_wait(pid_t pid, const char *what)
{
    int     status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            die(EX_OSERR, "wait for %s: %s", what, strerror(errno));
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "%s: %s died by signal %d\n", progname, what, WTERMSIG(status));
    return EX_TEMPFAIL;
}

/* mailq and sendmail -bp: the queue listing of "postern queue -p". */
static int
run_mailq(config_t *cfg, const char *config_dir)
{
    str_t  *path = str_new(0);

    str_printf(path, "%s/postern", config_str(cfg, "command_directory"));
    fflush(NULL);
    execl(str_cstr(path), "postern", "-c", config_dir, "queue", "-p", (char *) NULL);
    die(EX_OSERR, "execute %s: %s", str_cstr(path), strerror(errno));
}

/* sendmail -q: deliver deferred mail now, like "postern queue -f". */
static int
run_flush(config_t *cfg, const char *config_dir)
{
    str_t  *path = str_new(0);

    str_printf(path, "%s/postern", config_str(cfg, "command_directory"));
    fflush(NULL);
    execl(str_cstr(path), "postern", "-c", config_dir, "queue", "-f", (char *) NULL);
    die(EX_OSERR, "execute %s: %s", str_cstr(path), strerror(errno));
}

/* newaliases, sendmail -bi: rebuild every table in alias_database. */
static int
run_newaliases(config_t *cfg)
{
    char   *list = mem_strdup(config_str(cfg, "alias_database")), *save = NULL;
    str_t  *err = str_new(0);
    int     status = EX_OK;

    for (char *t = strtok_r(list, ", \t\n", &save); t; t = strtok_r(NULL, ", \t\n", &save)) {
        if (dict_build(t, DICT_BUILD_ALIASES, err) != 0) {
            fprintf(stderr, "%s: %s: %s\n", progname, t, str_cstr(err));
            status = EX_SOFTWARE;
        }
    }
    mem_free(list);
    str_free(err);
    return status;
}

/* Start postdrop with a pipe to its standard input. */
static pid_t
start_postdrop(config_t *cfg, const char *config_dir, bool explicit_dir, int *to_child)
{
    str_t  *path = str_new(0);
    int     p[2];
    pid_t   pid;

    str_printf(path, "%s/postdrop", config_str(cfg, "command_directory"));
    if (pipe2(p, O_CLOEXEC) != 0)
        die(EX_OSERR, "pipe: %s", strerror(errno));
    fflush(NULL);
    if ((pid = fork()) < 0)
        die(EX_OSERR, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(p[0], STDIN_FILENO) < 0)
            _exit(EX_OSERR);
        if (explicit_dir)
            execl(str_cstr(path), "postdrop", "-c", config_dir, (char *) NULL);
        else
            execl(str_cstr(path), "postdrop", (char *) NULL);
        fprintf(stderr, "%s: execute %s: %s\n", progname, str_cstr(path), strerror(errno));
        _exit(EX_OSERR);
    }
    close(p[0]);
    *to_child = p[1];
    str_free(path);
    return pid;
}

int
sendmail_post(const struct sendmail_ctx *c, str_t *records, stream_t *src,
              struct submit_input *in, int *status)
{
    int     fd;
    pid_t   pid = start_postdrop(c->cfg, c->config_dir, c->explicit_dir, &fd);
    stream_t *out = stream_open(fd);
    int     rc = stream_write(out, str_cstr(records), str_len(records));
    int     read_status;

    /* Read to the end even when postdrop failed: an SMTP dialogue must stay in step. */
    do {
        str_reset(records);
        read_status = submit_input_next(in, src, records);
        if (str_len(records) > 0 && rc == STREAM_OK)
            rc = stream_write(out, str_cstr(records), str_len(records));
    } while (read_status == SUBMIT_INPUT_MORE && (rc == STREAM_OK || in->smtp));
    if (rc == STREAM_OK && read_status == SUBMIT_INPUT_OK) {
        str_reset(records);
        rec_put(records, REC_TYPE_XTRA, "", 0);
        rec_put(records, REC_TYPE_END, "", 0);
        rc = stream_write(out, str_cstr(records), str_len(records));
        if (rc == STREAM_OK)
            rc = stream_flush(out);
    }
    /* Without an end record postdrop removes what it wrote. */
    (void) stream_close(out);
    *status = run_wait(pid, "postdrop");
    if (*status == EX_OK && rc != STREAM_OK)
        *status = EX_TEMPFAIL;      /* cannot happen: postdrop needs the end record */
    return read_status;
}

int
main(int argc, char **argv)
{
    struct options o = {.mode = MODE_DELIVER};
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    const char *config_dir;
    bool    explicit_dir;
    config_t *cfg;
    diag_list_t diags;
    str_t  *path = str_new(0);
    str_t  *records = str_new(0);
    int     first_rcpt;

    log_init("sendmail");
    log_set_stderr(true, false);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(base, "mailq") == 0) {
        progname = "mailq";
        o.mode = MODE_MAILQ;
    } else if (strcmp(base, "newaliases") == 0) {
        progname = "newaliases";
        o.mode = MODE_NEWALIASES;
    }

    /* A lone "-q" takes no interval; getopt's "q:" would take the next word. */
    for (int i = 1; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-q") == 0) {
            o.mode = MODE_FLUSH;
            for (int k = i; k < argc; k++)
                argv[k] = argv[k + 1];
            argc--;
            i--;
        }
    }
    first_rcpt = parse_args(argc, argv, &o);

    explicit_dir = (o.config_dir != NULL || getenv("POSTERN_CONFIG") != NULL);
    config_dir = instance_config_dir(o.config_dir);
    cfg = config_new();
    diag_init(&diags);
    config_set(cfg, "config_directory", config_dir);
    str_printf(path, "%s/main.cf", config_dir);
    if (config_read_file(cfg, str_cstr(path), &diags) != 0) {
        diag_log(&diags);
        die(EX_CONFIG, "cannot read %s", str_cstr(path));
    }
    if (config_validate(cfg, NULL, &diags) > 0) {
        diag_log(&diags);
        die(EX_CONFIG, "%s: configuration errors, see above", str_cstr(path));
    }
    diag_free(&diags);

    switch (o.mode) {
    case MODE_MAILQ:
        return run_mailq(cfg, config_dir);
    case MODE_FLUSH:
        return run_flush(cfg, config_dir);
    case MODE_NEWALIASES:
        return run_newaliases(cfg);
    case MODE_DELIVER:
    case MODE_SMTP:
        break;
    }
    struct sendmail_ctx post = {.cfg = cfg, .config_dir = config_dir, .explicit_dir = explicit_dir};

    if (o.mode == MODE_SMTP) {
        if (first_rcpt < argc || o.extract)
            die(EX_USAGE, "-bs takes its recipients from the SMTP dialogue, not from -t or arguments");
        return sendmail_smtp(&post);
    }

    /* The envelope. */
    struct passwd *pw = getpwuid(getuid());
    struct timeval tv;

    if (pw == NULL)
        die(EX_NOUSER, "no login name for user ID %lu", (unsigned long) getuid());
    if (first_rcpt >= argc && !o.extract)
        die(EX_USAGE, "no recipient addresses: name them on the command line or use -t");
    gettimeofday(&tv, NULL);
    rec_putf(records, REC_TYPE_TIME, "%lld.%06ld", (long long) tv.tv_sec, (long) tv.tv_usec);
    if (o.full_name)
        rec_put_str(records, REC_TYPE_FULLNAME, o.full_name);
    submit_put_sender(records, o.sender ? o.sender : pw->pw_name);
    if (o.extract)
        rec_putf(records, REC_TYPE_ATTR, "%s=%d", REC_ATTR_SUBMIT_FLAGS, CLEANUP_FLAG_EXTRACT);
    if (o.envid)
        rec_putf(records, REC_TYPE_ATTR, "%s=%s", REC_ATTR_DSN_ENVID, o.envid);
    if (o.ret)
        rec_putf(records, REC_TYPE_ATTR, "%s=%d", REC_ATTR_DSN_RET, o.ret);
    int     nrcpt = 0;

    for (int i = first_rcpt; i < argc; i++)
        nrcpt += submit_put_recipients(records, argv[i], o.notify);
    if (nrcpt == 0 && !o.extract)
        die(EX_USAGE, "no recipient addresses: name them on the command line or use -t");
    rec_put(records, REC_TYPE_MESG, "", 0);

    /* Check the envelope here too, for a clear message before postdrop runs. */
    {
        struct maildrop_check mc;
        const char *data;
        size_t  len, used, off = 0;
        int     type;

        maildrop_check_init(&mc, MAILDROP_FROM_USER, (size_t) config_int(cfg, "line_length_limit"), 0);
        while ((type = rec_decode(str_cstr(records) + off, str_len(records) - off, REC_MAX_LEN,
                                  &data, &len, &used)) >= 0) {
            if (maildrop_check_record(&mc, type, data, len) == MAILDROP_BAD)
                die(EX_USAGE, "%s", str_cstr(&mc.error));
            off += used;
        }
        maildrop_check_free(&mc);
    }

    stream_t *stdin_st = stream_open(STDIN_FILENO);
    struct submit_input in;
    int     status, read_status;

    submit_input_init(&in, (size_t) config_int(cfg, "line_length_limit"),
                      config_int(cfg, "message_size_limit"), o.ignore_dots);
    read_status = sendmail_post(&post, records, stdin_st, &in, &status);
    submit_input_free(&in);
    stream_abandon(stdin_st);
    if (read_status == SUBMIT_INPUT_TOOBIG)
        die(EX_DATAERR, "message too large: more than message_size_limit (%ld bytes)",
            config_int(cfg, "message_size_limit"));
    if (read_status == SUBMIT_INPUT_ERROR)
        die(EX_IOERR, "read standard input: %s", strerror(in.err ? in.err : EIO));
    if (status != EX_OK) {
        if (status < EX__BASE || status > EX__MAX)
            status = EX_TEMPFAIL;
        die(status, "postdrop failed: the message was not queued");
    }
    config_free(cfg);
    str_free(path);
    str_free(records);
    return EX_OK;
}
