/*
 * postern_cat.c - "postern cat": print queue files, like postcat -q.
 *
 *     postern [-c DIR] cat [-e] [-h] [-b] [-q] ID|FILE...
 *
 * Each argument is a queue ID, looked up in incoming, active, deferred,
 * hold, maildrop and corrupt (in that order), or else the path of a queue
 * or maildrop file. -q: every argument must be a queue ID.
 *
 * Output, for "-e" (envelope), "-h" (headers), "-b" (body); all three when
 * none is given:
 *     *** ENVELOPE RECORDS queue/ID ***        (only with -e)
 *     one "name: value" line per envelope record
 *     *** MESSAGE CONTENTS queue/ID ***         (only with -e)
 *     the headers, the empty line (when both -h and -b), the body
 *     *** HEADER EXTRACTED queue/ID ***         (only with -e)
 *     the records written after the content
 *     *** MESSAGE FILE END queue/ID ***         (only with -e)
 * So "cat -hb ID" prints the message as it would be delivered.
 *
 * The file is checked as it is printed (qfile.h); a damaged file stops the
 * output with a message naming the offset and the problem, and exit 1.
 *
 * SECURITY: reads files the invoking user can read; never writes. Message
 * content is printed as it is (it is what the user asked to see).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "postern.h"
#include "qfile.h"
#include "queue.h"
#include "rec_type.h"
#include "str.h"

#define CAT_ENV     (1 << 0)
#define CAT_HDR     (1 << 1)
#define CAT_BODY    (1 << 2)

/* Queues searched for an ID, in order. */
static const char *const cat_queues[] = {
    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_MAILDROP, QUEUE_CORRUPT,
};

struct cat_state {
    int     what;               /* CAT_* */
    const char *label;          /* "queue/ID" or the path */
    bool    in_headers;         /* still in the primary header block */
    bool    line_start;         /* the next content record starts a line */
    bool    line_is_header;     /* class of the current physical line */
    bool    seen_header;
};

/* "Sat Nov 22 10:00:00 2025" in local time. */
static void
print_time(const char *label, long long secs)
{
    char    buf[64];
    time_t  t = (time_t) secs;
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(buf, sizeof(buf), "%lld", secs);
    printf("%s: %s\n", label, buf);
}

static void
print_notify(const char *data)
{
    static const struct {
        int     bit;
        const char *name;
    } names[] = {
        {DSN_NOTIFY_NEVER, "NEVER"}, {DSN_NOTIFY_SUCCESS, "SUCCESS"},
        {DSN_NOTIFY_FAILURE, "FAILURE"}, {DSN_NOTIFY_DELAY, "DELAY"},
    };
    long    v = 0;
    const char *sep = "";

    (void) cstr_parse_long(data, &v);
    printf("notify_flags: ");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (v & names[i].bit) {
            printf("%s%s", sep, names[i].name);
            sep = ",";
        }
    }
    printf("\n");
}

/* One envelope record (before M or after X) as "name: value". */
static void
print_envelope(const struct qfile_rec *rec)
{
    long long secs = 0;

    switch (rec->type) {
    case REC_TYPE_VERSION:
        printf("queue_file_version: %s\n", rec->data);
        break;
    case REC_TYPE_SIZE:
        printf("message_size: %s\n", rec->data);
        break;
    case REC_TYPE_TIME:
        for (const char *p = rec->data; *p >= '0' && *p <= '9'; p++)
            secs = secs * 10 + (*p - '0');
        print_time("message_arrival_time", secs);
        break;
    case REC_TYPE_WARN:
        for (const char *p = rec->data; *p >= '0' && *p <= '9'; p++)
            secs = secs * 10 + (*p - '0');
        print_time("warning_message_time", secs);
        break;
    case REC_TYPE_FULLNAME:
        printf("sender_fullname: %s\n", rec->data);
        break;
    case REC_TYPE_SENDER:
        printf("sender: %s\n", rec->data);
        break;
    case REC_TYPE_ATTR:
        printf("named_attribute: %s\n", rec->data);
        break;
    case REC_TYPE_ORCPT:
        printf("original_recipient: %s\n", rec->data);
        break;
    case REC_TYPE_NOTIFY:
        print_notify(rec->data);
        break;
    case REC_TYPE_RCPT:
        printf("recipient: %s\n", rec->data);
        break;
    case REC_TYPE_DONE:
        printf("done_recipient: %s\n", rec->data);
        break;
    default:
        break;
    }
}

/* Does a line start like a header field ("Name:")? */
static bool
header_start(const char *data, size_t len)
{
    size_t  i = 0;

    while (i < len && data[i] > ' ' && data[i] < 0x7f && data[i] != ':')
        i++;
    return i > 0 && i < len && data[i] == ':';
}

/* One content record: decide whether it is header or body, print if asked. */
static void
print_content(struct cat_state *cs, const struct qfile_rec *rec)
{
    bool    show;

    if (cs->line_start) {
        if (cs->in_headers && rec->type == REC_TYPE_NORM && rec->len == 0) {
            cs->in_headers = false;
            if ((cs->what & CAT_HDR) && (cs->what & CAT_BODY))
                putchar('\n');
            return;
        }
        if (cs->in_headers) {
            bool    cont = rec->len > 0 && (rec->data[0] == ' ' || rec->data[0] == '\t');

            if (header_start(rec->data, rec->len) || (cont && cs->seen_header))
                cs->seen_header = true;
            else
                cs->in_headers = false;     /* not a header: the body starts here */
        }
        cs->line_is_header = cs->in_headers;
    }
    show = cs->line_is_header ? (cs->what & CAT_HDR) : (cs->what & CAT_BODY);
    if (show) {
        if (rec->len > 0)
            (void) fwrite(rec->data, 1, rec->len, stdout);
        if (rec->type == REC_TYPE_NORM)
            putchar('\n');
    }
    cs->line_start = rec->type == REC_TYPE_NORM;
}

/* Print one open file. Returns POSTERN_EXIT_OK or POSTERN_EXIT_FAIL. */
static int
cat_fd(int fd, const char *label, int what)
{
    qfile_reader_t *r = qfile_reader_new(fd, label, QFILE_FLAG_ANY);
    struct qfile_rec rec;
    struct cat_state cs = {.what = what, .label = label, .in_headers = true, .line_start = true};
    int     rc;

    if (what & CAT_ENV)
        printf("*** ENVELOPE RECORDS %s ***\n", label);
    while ((rc = qfile_reader_next(r, &rec)) == QFILE_RECORD) {
        if (rec.type == REC_TYPE_MESG) {
            if (what & CAT_ENV)
                printf("*** MESSAGE CONTENTS %s ***\n", label);
        } else if (rec.type == REC_TYPE_XTRA) {
            if (what & CAT_ENV)
                printf("*** HEADER EXTRACTED %s ***\n", label);
        } else if (rec.type == REC_TYPE_END) {
            if (what & CAT_ENV)
                printf("*** MESSAGE FILE END %s ***\n", label);
        } else if (rec.section == QFILE_SEC_CONTENT) {
            print_content(&cs, &rec);
        } else if (what & CAT_ENV) {
            print_envelope(&rec);
        }
    }
    if (rc != QFILE_DONE) {
        if (!cs.line_start && (what & (CAT_HDR | CAT_BODY)))
            putchar('\n');
        (void) fflush(stdout);
        log_error("%s", qfile_reader_error(r));
    }
    qfile_reader_free(r);
    return rc == QFILE_DONE ? POSTERN_EXIT_OK : POSTERN_EXIT_FAIL;
}

/* Open ID in the first queue that has it; fills label. -1 when not found. */
static int
open_by_id(config_t *cfg, const char *id, str_t *label)
{
    const char *qdir = config_str(cfg, "queue_directory");
    str_t  *rel = str_new(64), *path = str_new(128);
    int     fd = -1;

    for (size_t i = 0; fd < 0 && i < sizeof(cat_queues) / sizeof(cat_queues[0]); i++) {
        queue_path(rel, cat_queues[i], id);
        str_printf(path, "%s/%s", qdir, str_cstr(rel));
        if ((fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
            str_printf(label, "%s/%s", cat_queues[i], id);
        } else if (errno != ENOENT) {
            log_warn("cannot open %s: %s", str_cstr(path), strerror(errno));
        }
    }
    str_free(rel);
    str_free(path);
    return fd;
}

int
postern_cat(const char *dir, int argc, char **argv)
{
    int     what = 0, ch, rc = POSTERN_EXIT_OK;
    bool    ids_only = false;
    config_t *cfg = NULL;
    str_t  *label = str_new(64);

    optind = 1;
    while ((ch = getopt(argc, argv, "ehbq")) != -1) {
        switch (ch) {
        case 'e':
            what |= CAT_ENV;
            break;
        case 'h':
            what |= CAT_HDR;
            break;
        case 'b':
            what |= CAT_BODY;
            break;
        case 'q':
            ids_only = true;
            break;
        default:
            fprintf(stderr, "usage: postern cat [-e] [-h] [-b] [-q] queue_id|file...\n");
            str_free(label);
            return POSTERN_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: postern cat [-e] [-h] [-b] [-q] queue_id|file...\n");
        str_free(label);
        return POSTERN_EXIT_USAGE;
    }
    if (what == 0)
        what = CAT_ENV | CAT_HDR | CAT_BODY;
    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i];
        int     fd = -1;

        if (queue_id_ok(arg)) {
            if (cfg == NULL && (cfg = postern_queue_config(dir)) == NULL) {
                rc = POSTERN_EXIT_FAIL;
                break;
            }
            fd = open_by_id(cfg, arg, label);
        } else if (ids_only) {
            log_error("not a queue ID: \"%.64s\"", arg);
            rc = POSTERN_EXIT_FAIL;
            continue;
        }
        if (fd < 0 && ids_only) {
            log_error("%s: no such message in the queue", arg);
            rc = POSTERN_EXIT_FAIL;
            continue;
        }
        if (fd < 0) {
            str_set_cstr(label, arg);
            if ((fd = open(arg, O_RDONLY | O_CLOEXEC)) < 0) {
                if (errno == ENOENT && queue_id_ok(arg))
                    log_error("%s: no such message in the queue", arg);
                else
                    log_error("cannot open %s: %s", arg, strerror(errno));
                rc = POSTERN_EXIT_FAIL;
                continue;
            }
        }
        if (cat_fd(fd, str_cstr(label), what) != POSTERN_EXIT_OK)
            rc = POSTERN_EXIT_FAIL;
        if (close(fd) != 0)
            log_warn("close %s: %s", str_cstr(label), strerror(errno));
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_error("write error on standard output: %s", strerror(errno));
        rc = POSTERN_EXIT_FAIL;
    }
    config_free(cfg);
    str_free(label);
    return rc;
}
