/*
 * postern_queue.c - "postern queue": list the mail queue and hurry it up.
 *
 *     postern [-c DIR] queue -p         the queue in mailq's layout
 *     postern [-c DIR] queue -j         one JSON object per message and line
 *     postern [-c DIR] queue -f         flush: ask qmgr to try all deferred mail now
 *     postern [-c DIR] queue -s SITE    make deferred mail for SITE due now
 *     postern [-c DIR] queue -i ID      make one deferred message due now
 *
 * Listing: qlist.h says what is listed and in which order. The queue is
 * read directly when this process may read it (root or mail_owner);
 * otherwise the listing comes from the showq service over public/showq
 * (showq_proto.h), which runs as mail_owner. Both paths produce the same
 * struct qlist_msg, printed by the same code, so the output is identical.
 *
 * -f sends the flush wake-up ('F') to qmgr over public/qmgr. -s and -i
 * need write access to the deferred queue: they set the modification time
 * of each matching deferred file (qmgr's "next attempt" time) to now, then
 * send qmgr the scan wake-up ('A'). -s matches a message when one of its
 * undelivered recipients has SITE as its domain (case-insensitive).
 *
 * Privileges: when "postern" is installed setgid to setgid_group (as
 * Postfix's postqueue is), the group is used only to connect to
 * public/showq and public/qmgr and is dropped right after; postern.c
 * drops it at once for every other command.
 *
 * JSON strings: '"', '\\' and control characters are escaped (\n, \t, ...,
 * \u00XX); valid UTF-8 is copied as is; a byte that is not part of valid
 * UTF-8 is written as \u00XX (the byte's value as a code point).
 *
 * SECURITY: the listing only reads. Every value printed came through the
 * strict queue file reader (directly or in showq) or the strict attribute
 * decoder, and is escaped here. -s/-i change only file times.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "diag.h"
#include "ipc.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "qlist.h"
#include "queue.h"
#include "showq_proto.h"
#include "str.h"

#define MAILQ_WIDTH     79              /* reason lines end at this column */
#define MAILQ_RCPT_COL  41              /* recipients start at this column */
#define SHOWQ_TIMEOUT   60              /* seconds per read from showq */

enum queue_format {
    FORMAT_NONE,
    FORMAT_MAILQ,
    FORMAT_JSON,
};

struct listing {
    enum queue_format format;
    long long total_size;
    long    messages;
};

config_t *
postern_queue_config(const char *dir)
{
    config_t *cfg = config_new();
    diag_list_t diags;
    str_t  *path = str_new(0);

    diag_init(&diags);
    config_set(cfg, "config_directory", dir);
    str_printf(path, "%s/main.cf", dir);
    if (config_read_file(cfg, str_cstr(path), &diags) != 0) {
        diag_log(&diags);
        diag_free(&diags);
        str_free(path);
        config_free(cfg);
        return NULL;
    }
    diag_free(&diags);
    str_free(path);
    queue_init(cfg);
    return cfg;
}

/* JSON output. */

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t  need;
    unsigned cp;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

static void
json_string(str_t *out, const char *text)
{
    const unsigned char *s = (const unsigned char *) text;
    size_t  n = strlen(text);

    str_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        size_t  u;

        switch (c) {
        case '"':
            str_append_cstr(out, "\\\"");
            break;
        case '\\':
            str_append_cstr(out, "\\\\");
            break;
        case '\n':
            str_append_cstr(out, "\\n");
            break;
        case '\r':
            str_append_cstr(out, "\\r");
            break;
        case '\t':
            str_append_cstr(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                str_append_printf(out, "\\u%04x", c);
            } else if (c < 0x80) {
                str_putc(out, c);
            } else if ((u = utf8_len(s + i, n - i)) > 0) {
                str_append(out, s + i, u);
                i += u - 1;
            } else {
                str_append_printf(out, "\\u%04x", c);
            }
        }
    }
    str_putc(out, '"');
}

/* Text for the terminal: valid UTF-8 as is, any other byte above 0x7e as '?'. */
static const char *
mailq_text(str_t *buf, const char *text)
{
    const unsigned char *s = (const unsigned char *) text;
    size_t  n = strlen(text), u;

    str_reset(buf);
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            str_putc(buf, s[i]);
        } else if (s[i] >= 0x80 && (u = utf8_len(s + i, n - i)) > 0) {
            str_append(buf, s + i, u);
            i += u - 1;
        } else {
            str_putc(buf, '?');
        }
    }
    return str_cstr(buf);
}


/* Give up a setgid group (see the file comment); a failure is fatal. */
static void
drop_setgid(void)
{
    gid_t   rgid = getgid();

    if (getegid() != rgid && setresgid(rgid, rgid, rgid) != 0)
        log_fatal_errno("cannot drop the setgid group");
}

static char
queue_mark(const char *queue_name)
{
    if (strcmp(queue_name, QUEUE_ACTIVE) == 0)
        return '*';
    if (strcmp(queue_name, QUEUE_HOLD) == 0)
        return '!';
    return ' ';
}

static void
print_json(const struct qlist_msg *msg)
{
    str_t  *out = str_new(256);

    str_append_cstr(out, "{\"queue_name\": ");
    json_string(out, msg->queue_name);
    str_append_cstr(out, ", \"queue_id\": ");
    json_string(out, msg->queue_id);
    str_append_printf(out, ", \"arrival_time\": %lld, \"message_size\": %lld, "
                      "\"forced_expire\": false, \"sender\": ", msg->arrival_time,
                      msg->message_size);
    json_string(out, msg->sender);
    str_append_cstr(out, ", \"recipients\": [");
    for (size_t i = 0; i < msg->rcpt_count; i++) {
        str_append_cstr(out, i == 0 ? "{\"address\": " : ", {\"address\": ");
        json_string(out, msg->rcpts[i].address);
        if (msg->rcpts[i].reason) {
            str_append_cstr(out, ", \"delay_reason\": ");
            json_string(out, msg->rcpts[i].reason);
        }
        str_putc(out, '}');
    }
    str_append_cstr(out, "]}\n");
    (void) fwrite(str_cstr(out), 1, str_len(out), stdout);
    str_free(out);
}

static void
print_mailq(const struct qlist_msg *msg, const struct listing *ls)
{
    char    when[32];
    time_t  t = (time_t) msg->arrival_time;
    struct tm tm;
    const char *last_reason = NULL;
    str_t  *buf = str_new(64);

    if (ls->messages == 0)
        printf("%-11s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
               "-Sender/Recipient-------");
    if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
        snprintf(when, sizeof(when), "%lld", msg->arrival_time);
    printf("%-10s%c %8lld %-20.20s %s\n", msg->queue_id, queue_mark(msg->queue_name),
           msg->message_size, when, *msg->sender ? mailq_text(buf, msg->sender) : "MAILER-DAEMON");
    for (size_t i = 0; i < msg->rcpt_count; i++) {
        const char *reason = msg->rcpts[i].reason;

        if (reason && (last_reason == NULL || strcmp(reason, last_reason) != 0)) {
            int     pad;

            mailq_text(buf, reason);
            pad = MAILQ_WIDTH - (int) str_len(buf) - 2;
            printf("%*s(%s)\n", pad > 0 ? pad : 0, "", str_cstr(buf));
            last_reason = reason;
        }
        printf("%*s%s\n", MAILQ_RCPT_COL, "", mailq_text(buf, msg->rcpts[i].address));
    }
    printf("\n");
    str_free(buf);
}

/* qlist callback (also used for messages from showq): print one message. */
static int
print_message(const struct qlist_msg *msg, void *ctx)
{
    struct listing *ls = ctx;

    if (ls->format == FORMAT_JSON)
        print_json(msg);
    else
        print_mailq(msg, ls);
    ls->messages++;
    ls->total_size += msg->message_size;
    return 0;
}

/*
 * Decode one showq list into msg: a new message (cont false) or the
 * continuation of msg (cont true: same queue and ID). Sets *more.
 * Returns false with err set for anything malformed.
 */
static bool
showq_decode(attr_list_t *al, struct qlist_msg *msg, bool cont, bool *more, str_t *err)
{
    const char *qname, *id, *sender, *addr, *reason, *more_s;
    long long arrival, size, count;
    str_t  *name = str_new(32);
    bool    ok = false;

    if (attr_get_str(al, "queue_name", &qname) != ATTR_OK
        || attr_get_str(al, "queue_id", &id) != ATTR_OK
        || attr_get_int(al, "arrival_time", 0, 1LL << 40, &arrival) != ATTR_OK
        || attr_get_int(al, "message_size", 0, 1LL << 50, &size) != ATTR_OK
        || attr_get_str(al, "sender", &sender) != ATTR_OK
        || attr_get_int(al, "rcpt_count", 0, SHOWQ_RCPT_CHUNK, &count) != ATTR_OK) {
        str_set_cstr(err, attr_last_error(al));
        goto out;
    }
    if (qlist_queue_name(qname) == NULL || !queue_id_ok(id)) {
        str_set_cstr(err, "bad queue name or queue ID");
        goto out;
    }
    if (cont) {
        if (strcmp(msg->queue_id, id) != 0 || strcmp(msg->queue_name, qname) != 0) {
            str_set_cstr(err, "continuation of a different message");
            goto out;
        }
    } else {
        qlist_msg_init(msg);
        msg->queue_name = qlist_queue_name(qname);
        memcpy(msg->queue_id, id, strlen(id) + 1);
        msg->arrival_time = arrival;
        msg->message_size = size;
        msg->sender = mem_strdup(sender);
    }
    for (long long i = 0; i < count; i++) {
        str_printf(name, "rcpt_%lld_address", i);
        if (attr_get_str(al, str_cstr(name), &addr) != ATTR_OK) {
            str_set_cstr(err, attr_last_error(al));
            goto out;
        }
        str_printf(name, "rcpt_%lld_reason", i);
        switch (attr_get_str(al, str_cstr(name), &reason)) {
        case ATTR_OK:
            break;
        case ATTR_MISSING:
            reason = NULL;
            break;
        default:
            str_set_cstr(err, attr_last_error(al));
            goto out;
        }
        qlist_msg_add_rcpt(msg, addr, reason);
    }
    switch (attr_get_str(al, "more", &more_s)) {
    case ATTR_OK:
        if (strcmp(more_s, "1") != 0) {
            str_set_cstr(err, "bad \"more\" attribute");
            goto out;
        }
        *more = true;
        break;
    case ATTR_MISSING:
        *more = false;
        break;
    default:
        str_set_cstr(err, attr_last_error(al));
        goto out;
    }
    ok = attr_check_end(al, err) == ATTR_OK;
out:
    str_free(name);
    return ok;
}

/* The listing from public/showq. */
static bool
list_via_showq(const char *qdir, struct listing *ls)
{
    str_t  *err = str_new(0);
    stream_t *st = ipc_connect(qdir, SHOWQ_CLASS, SHOWQ_SERVICE, SHOWQ_PROTOCOL, SHOWQ_TIMEOUT, err);
    attr_list_t *al = attr_list_new();
    struct qlist_msg msg;
    bool    ok = false, cont = false, more = false;
    long long done;

    drop_setgid();
    qlist_msg_init(&msg);
    if (st == NULL) {
        log_error("cannot list the queue: no access to %s, and the showq service is not "
                  "reachable: %s", qdir, str_cstr(err));
        goto out;
    }
    for (;;) {
        int     rc = attr_read(st, NULL, al, err);

        if (rc == ATTR_EOF)
            str_set_cstr(err, "connection closed");
        if (rc != ATTR_OK) {
            log_error("showq: listing incomplete: %s", str_cstr(err));
            goto out;
        }
        if (!cont && attr_list_count(al) == 1 && strcmp(attr_name_at(al, 0), "done") == 0) {
            if (attr_get_int(al, "done", 0, 1LL << 40, &done) != ATTR_OK || done != ls->messages) {
                log_error("showq: listing incomplete: server sent %s messages, %ld received",
                          attr_value_at(al, 0, NULL), ls->messages);
                goto out;
            }
            ok = true;
            break;
        }
        if (!showq_decode(al, &msg, cont, &more, err)) {
            log_error("showq: bad reply: %s", str_cstr(err));
            goto out;
        }
        cont = more;
        if (!more) {
            print_message(&msg, ls);
            qlist_msg_free(&msg);
        }
    }
out:
    qlist_msg_free(&msg);
    attr_list_free(al);
    if (st)
        (void) stream_close(st);
    str_free(err);
    return ok;
}

/* True when this process can read the queue itself (cwd = queue_directory). */
static bool
queue_readable(void)
{
    if (faccessat(AT_FDCWD, QUEUE_INCOMING, R_OK | X_OK, AT_EACCESS) == 0)
        return true;
    return errno == ENOENT;     /* not created yet: an empty queue */
}

static int
list_queue(const char *qdir, enum queue_format format)
{
    struct listing ls = {.format = format};

    if (chdir(qdir) == 0 && queue_readable()) {
        drop_setgid();
        (void) qlist_walk(print_message, &ls);
    } else if (errno != EACCES && errno != EPERM) {
        log_error("cannot enter queue_directory %s: %s", qdir, strerror(errno));
        return POSTERN_EXIT_FAIL;
    } else if (!list_via_showq(qdir, &ls)) {
        (void) fflush(stdout);
        return POSTERN_EXIT_FAIL;
    }
    if (format == FORMAT_MAILQ) {
        if (ls.messages == 0)
            printf("Mail queue is empty\n");
        else
            printf("-- %lld Kbytes in %ld Request%s.\n", (ls.total_size + 1023) / 1024,
                   ls.messages, ls.messages == 1 ? "" : "s");
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_error("write error on standard output: %s", strerror(errno));
        return POSTERN_EXIT_FAIL;
    }
    return POSTERN_EXIT_OK;
}

/* -f: wake qmgr with 'F'. */
static int
flush_queue(const char *qdir)
{
    int     rc = ipc_trigger(qdir, "public", "qmgr", IPC_TRIGGER_FLUSH);

    drop_setgid();
    if (rc != 0) {
        log_error("cannot flush the mail queue: the mail system is down "
                  "(nobody listens on %s/public/qmgr)", qdir);
        return POSTERN_EXIT_FAIL;
    }
    return POSTERN_EXIT_OK;
}

/* Make deferred/ID due now: its mtime is qmgr's next-attempt time. */
static bool
make_due(const char *id)
{
    str_t  *path = str_new(64);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
    bool    ok;

    queue_path(path, QUEUE_DEFERRED, id);
    ok = utimensat(AT_FDCWD, str_cstr(path), ts, AT_SYMLINK_NOFOLLOW) == 0;
    if (!ok && errno != ENOENT)
        log_warn("cannot set the time of %s: %s", str_cstr(path), strerror(errno));
    str_free(path);
    return ok;
}

/* Ask qmgr to scan deferred/ now; a stopped qmgr finds the files due when it starts. */
static void
wake_scan(const char *qdir)
{
    if (ipc_trigger(qdir, "public", "qmgr", IPC_TRIGGER_SCAN) != 0)
        log_warn("qmgr is not running: the mail is tried when the mail system starts");
}

struct site_match {
    const char *site;
    long    matched;
};

/* True when an undelivered recipient of msg is in domain site. */
static bool
has_site(const struct qlist_msg *msg, const char *site)
{
    for (size_t i = 0; i < msg->rcpt_count; i++) {
        const char *at = strrchr(msg->rcpts[i].address, '@');

        if (at && strcasecmp(at + 1, site) == 0)
            return true;
    }
    return false;
}

static int
site_one(const struct qlist_msg *msg, void *ctx)
{
    struct site_match *sm = ctx;

    if (has_site(msg, sm->site) && make_due(msg->queue_id))
        sm->matched++;
    return 0;
}

/* Need write access to the queue for -s and -i. */
static bool
enter_queue_rw(const char *qdir, const char *what)
{
    drop_setgid();
    if (chdir(qdir) != 0) {
        log_error("cannot enter queue_directory %s: %s", qdir, strerror(errno));
        return false;
    }
    if (faccessat(AT_FDCWD, QUEUE_DEFERRED, W_OK | X_OK, AT_EACCESS) != 0 && errno != ENOENT) {
        log_error("%s: permission denied: run as root or as mail_owner", what);
        return false;
    }
    return true;
}

static bool
site_ok(const char *site)
{
    if (*site == 0 || strlen(site) > 255)
        return false;
    for (const char *p = site; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f || *p == '@')
            return false;
    return true;
}

/* -s SITE */
static int
flush_site(const char *qdir, const char *site)
{
    struct site_match sm = {.site = site};

    if (!site_ok(site)) {
        log_error("queue -s: bad site name");
        return POSTERN_EXIT_USAGE;
    }
    if (!enter_queue_rw(qdir, "queue -s"))
        return POSTERN_EXIT_FAIL;
    (void) qlist_walk_queue(QUEUE_DEFERRED, site_one, &sm);
    if (sm.matched > 0)
        wake_scan(qdir);
    return POSTERN_EXIT_OK;
}

/* -i ID */
static int
flush_id(const char *qdir, const char *id)
{
    str_t  *path = str_new(64);
    struct stat sb;
    int     rc = POSTERN_EXIT_FAIL;

    if (!queue_id_ok(id)) {
        log_error("queue -i: invalid queue ID");
        str_free(path);
        return POSTERN_EXIT_USAGE;
    }
    if (!enter_queue_rw(qdir, "queue -i")) {
        str_free(path);
        return POSTERN_EXIT_FAIL;
    }
    if (make_due(id)) {
        wake_scan(qdir);
        rc = POSTERN_EXIT_OK;
        goto out;
    }
    queue_path(path, QUEUE_ACTIVE, id);
    if (lstat(str_cstr(path), &sb) == 0) {
        rc = POSTERN_EXIT_OK;           /* being delivered right now */
        goto out;
    }
    queue_path(path, QUEUE_INCOMING, id);
    if (lstat(str_cstr(path), &sb) == 0) {
        (void) ipc_trigger(qdir, "public", "qmgr", IPC_TRIGGER_WAKEUP);
        rc = POSTERN_EXIT_OK;
        goto out;
    }
    queue_path(path, QUEUE_HOLD, id);
    if (lstat(str_cstr(path), &sb) == 0)
        log_error("%s: the message is on hold (release it with \"postern super -H %s\")", id, id);
    else
        log_error("%s: no such message in the deferred queue", id);
out:
    str_free(path);
    return rc;
}

static int
queue_usage(void)
{
    fprintf(stderr, "usage: postern queue -p | -j | -f | -s site | -i queue_id\n");
    return POSTERN_EXIT_USAGE;
}

int
postern_queue(const char *dir, int argc, char **argv)
{
    enum queue_format format = FORMAT_NONE;
    config_t *cfg;
    char   *qdir;
    const char *arg = NULL;
    int     ch, rc, action = 0;

    optind = 1;
    while ((ch = getopt(argc, argv, "pjfs:i:")) != -1) {
        if (ch == '?' || action != 0)
            return queue_usage();
        action = ch;
        if (ch == 'p' || ch == 'j')
            format = ch == 'p' ? FORMAT_MAILQ : FORMAT_JSON;
        else if (ch == 's' || ch == 'i')
            arg = optarg;
    }
    if (action == 0 || optind != argc)
        return queue_usage();
    if ((cfg = postern_queue_config(dir)) == NULL) {
        drop_setgid();
        return POSTERN_EXIT_FAIL;
    }
    qdir = mem_strdup(config_str(cfg, "queue_directory"));
    config_free(cfg);
    switch (action) {
    case 'p':
    case 'j':
        rc = list_queue(qdir, format);
        break;
    case 'f':
        rc = flush_queue(qdir);
        break;
    case 's':
        rc = flush_site(qdir, arg);
        break;
    default:
        rc = flush_id(qdir, arg);
        break;
    }
    mem_free(qdir);
    return rc;
}
