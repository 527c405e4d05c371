/*
 * postern_queue.c - "postern queue": list the mail queue.
 *
 *     postern [-c DIR] queue -p     the queue in mailq's layout
 *     postern [-c DIR] queue -j     one JSON object per message and line
 *
 * Messages are listed queue by queue (incoming, active, deferred, hold,
 * maildrop), oldest first within a queue (queue IDs sort by arrival time).
 * Only recipients not yet delivered are shown. For a deferred message the
 * reason of the last delivery attempt per recipient comes from its defer
 * log, defer/[hash/]ID, when there is one: blocks of "name=value" lines
 * ended by an empty line, of which "recipient" and "reason" are used.
 *
 * The queue is read directly, so this needs read access to it (root or
 * mail_owner); unprivileged listing through showq comes later. A message
 * that disappears while it is listed (delivered, moved) is skipped with a
 * warning on stderr, as is a file that cannot be parsed.
 *
 * JSON strings: '"', '\\' and control characters are escaped (\n, \t, ...,
 * \u00XX); valid UTF-8 is copied as is; a byte that is not part of valid
 * UTF-8 is written as \u00XX (the byte's value as a code point).
 *
 * SECURITY: reads queue files and defer logs, never writes. Every value
 * printed came through the strict queue file reader or is escaped here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "qfile.h"
#include "queue.h"
#include "str.h"

#define DEFER_LOG_MAX   (1024 * 1024)   /* larger defer logs are not read */
#define MAILQ_WIDTH     79              /* reason lines end at this column */
#define MAILQ_RCPT_COL  41              /* recipients start at this column */

enum queue_format {
    FORMAT_NONE,
    FORMAT_MAILQ,
    FORMAT_JSON,
};

/* Queues listed, in order, with the mark mailq puts after the ID. */
static const struct {
    const char *name;
    char    mark;
} list_queues[] = {
    {QUEUE_INCOMING, ' '},
    {QUEUE_ACTIVE, '*'},
    {QUEUE_DEFERRED, ' '},
    {QUEUE_HOLD, '!'},
    {QUEUE_MAILDROP, ' '},
};

struct id_list {
    char  **ids;
    size_t  count;
    size_t  cap;
};

struct defer_entry {
    char   *recipient;
    char   *reason;
};

struct defer_log {
    struct defer_entry *items;
    size_t  count;
    size_t  cap;
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

static void
collect_id(const char *queue_name, const char *id, void *ctx)
{
    struct id_list *l = ctx;

    l->ids = mem_grow_array(l->ids, &l->cap, l->count + 1, sizeof(*l->ids));
    l->ids[l->count++] = mem_strdup(id);
}

static int
compare_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
free_ids(struct id_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        mem_free(l->ids[i]);
    mem_free(l->ids);
    memset(l, 0, sizeof(*l));
}

/* Defer logs. */

static void
free_defer(struct defer_log *dl)
{
    for (size_t i = 0; i < dl->count; i++) {
        mem_free(dl->items[i].recipient);
        mem_free(dl->items[i].reason);
    }
    mem_free(dl->items);
    memset(dl, 0, sizeof(*dl));
}

/* Copy text, replacing control characters (and NUL) by '?'. */
static char *
clean_copy(const char *s, size_t len)
{
    char   *out = mem_strndup(s, len);

    for (size_t i = 0; i < len; i++)
        if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
    return out;
}

/* Read defer/[hash/]ID when it exists. A missing or unreadable log is no reason. */
static void
read_defer(const char *id, struct defer_log *dl)
{
    str_t  *path = str_new(64), *text = str_new(0), *err = str_new(0);
    const char *p, *end, *rcpt = NULL, *reason = NULL;
    size_t  rcpt_len = 0, reason_len = 0;

    queue_path(path, QUEUE_DEFER, id);
    if (!config_read_text(str_cstr(path), DEFER_LOG_MAX, text, err)) {
        if (access(str_cstr(path), F_OK) == 0)
            log_warn("%s", str_cstr(err));
        goto out;
    }
    p = str_cstr(text);
    end = p + str_len(text);
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        size_t  len = (size_t) ((nl ? nl : end) - p);

        if (len > 10 && memcmp(p, "recipient=", 10) == 0) {
            rcpt = p + 10;
            rcpt_len = len - 10;
        } else if (len > 7 && memcmp(p, "reason=", 7) == 0) {
            reason = p + 7;
            reason_len = len - 7;
        }
        /* An empty line (or the end) closes a block: keep recipient + reason. */
        if (len == 0 || nl == NULL) {
            if (rcpt && reason) {
                dl->items = mem_grow_array(dl->items, &dl->cap, dl->count + 1, sizeof(*dl->items));
                dl->items[dl->count].recipient = clean_copy(rcpt, rcpt_len);
                dl->items[dl->count].reason = clean_copy(reason, reason_len);
                dl->count++;
            }
            rcpt = reason = NULL;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
out:
    str_free(path);
    str_free(text);
    str_free(err);
}

/* The last reason logged for a recipient, or NULL. */
static const char *
defer_reason(const struct defer_log *dl, const char *rcpt)
{
    for (size_t i = dl->count; i > 0; i--)
        if (strcmp(dl->items[i - 1].recipient, rcpt) == 0)
            return dl->items[i - 1].reason;
    return NULL;
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

static void
print_json(const char *queue_name, const char *id, const struct qfile *qf,
           const struct defer_log *dl)
{
    str_t  *out = str_new(256);
    bool    first = true;

    str_append_cstr(out, "{\"queue_name\": ");
    json_string(out, queue_name);
    str_append_cstr(out, ", \"queue_id\": ");
    json_string(out, id);
    str_append_printf(out, ", \"arrival_time\": %lld, \"message_size\": %lld, "
                      "\"forced_expire\": false, \"sender\": ", qf->arrival_sec, qf->message_size);
    json_string(out, qf->sender);
    str_append_cstr(out, ", \"recipients\": [");
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        const char *reason;

        if (qf->rcpts[i].done)
            continue;
        str_append_cstr(out, first ? "{\"address\": " : ", {\"address\": ");
        first = false;
        json_string(out, qf->rcpts[i].address);
        if ((reason = defer_reason(dl, qf->rcpts[i].address)) != NULL) {
            str_append_cstr(out, ", \"delay_reason\": ");
            json_string(out, reason);
        }
        str_putc(out, '}');
    }
    str_append_cstr(out, "]}\n");
    (void) fwrite(str_cstr(out), 1, str_len(out), stdout);
    str_free(out);
}

/* mailq output. */

static void
print_mailq(const char *id, char mark, const struct qfile *qf, const struct defer_log *dl,
            struct listing *ls)
{
    char    when[32];
    time_t  t = (time_t) qf->arrival_sec;
    struct tm tm;
    const char *last_reason = NULL;
    str_t  *buf = str_new(64);

    if (ls->messages == 0)
        printf("%-11s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
               "-Sender/Recipient-------");
    if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
        snprintf(when, sizeof(when), "%lld", qf->arrival_sec);
    printf("%-10s%c %8lld %-20.20s %s\n", id, mark, qf->message_size, when,
           *qf->sender ? mailq_text(buf, qf->sender) : "MAILER-DAEMON");
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        const char *reason;

        if (qf->rcpts[i].done)
            continue;
        reason = defer_reason(dl, qf->rcpts[i].address);
        if (reason && (last_reason == NULL || strcmp(reason, last_reason) != 0)) {
            int     pad;

            mailq_text(buf, reason);
            pad = MAILQ_WIDTH - (int) str_len(buf) - 2;
            printf("%*s(%s)\n", pad > 0 ? pad : 0, "", str_cstr(buf));
            last_reason = reason;
        }
        printf("%*s%s\n", MAILQ_RCPT_COL, "", mailq_text(buf, qf->rcpts[i].address));
    }
    printf("\n");
    str_free(buf);
}

/* List one message; skipped with a warning when it vanished or is damaged. */
static void
list_one(const char *queue_name, char mark, const char *id, struct listing *ls)
{
    str_t  *path = str_new(64), *err = str_new(0);
    struct qfile qf;
    struct defer_log dl = {0};
    int     fd, rc;
    bool    maildrop = strcmp(queue_name, QUEUE_MAILDROP) == 0;

    queue_path(path, queue_name, id);
    if ((fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno == ENOENT)
            log_warn("%s/%s: gone while listing (delivered or moved)", queue_name, id);
        else
            log_warn("cannot open %s: %s", str_cstr(path), strerror(errno));
        str_free(path);
        str_free(err);
        return;
    }
    rc = qfile_read(fd, str_cstr(path), maildrop ? QFILE_FLAG_MAILDROP : QFILE_FLAG_QUEUE, &qf, err);
    if (close(fd) != 0)
        log_warn("close %s: %s", str_cstr(path), strerror(errno));
    if (rc != QFILE_DONE) {
        log_warn("skipping %s", str_cstr(err));
    } else {
        if (strcmp(queue_name, QUEUE_DEFERRED) == 0)
            read_defer(id, &dl);
        if (ls->format == FORMAT_JSON)
            print_json(queue_name, id, &qf, &dl);
        else
            print_mailq(id, mark, &qf, &dl, ls);
        ls->messages++;
        ls->total_size += qf.message_size;
    }
    free_defer(&dl);
    qfile_free(&qf);
    str_free(path);
    str_free(err);
}

static int
list_queue(enum queue_format format)
{
    struct listing ls = {.format = format};

    for (size_t q = 0; q < sizeof(list_queues) / sizeof(list_queues[0]); q++) {
        struct id_list ids = {0};
        const char *name = list_queues[q].name;

        if (queue_walk(name, collect_id, &ids) < 0) {
            if (errno != ENOENT)
                log_warn("cannot read queue %s: %s", name, strerror(errno));
            free_ids(&ids);
            continue;
        }
        if (ids.count > 1)
            qsort(ids.ids, ids.count, sizeof(*ids.ids), compare_ids);
        for (size_t i = 0; i < ids.count; i++)
            list_one(name, list_queues[q].mark, ids.ids[i], &ls);
        free_ids(&ids);
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

static int
queue_usage(void)
{
    fprintf(stderr, "usage: postern queue -p | -j\n");
    return POSTERN_EXIT_USAGE;
}

int
postern_queue(const char *dir, int argc, char **argv)
{
    enum queue_format format = FORMAT_NONE;
    config_t *cfg;
    const char *qdir;
    int     ch, rc;

    optind = 1;
    while ((ch = getopt(argc, argv, "pjfsi:")) != -1) {
        switch (ch) {
        case 'p':
        case 'j':
            if (format != FORMAT_NONE)
                return queue_usage();
            format = ch == 'p' ? FORMAT_MAILQ : FORMAT_JSON;
            break;
        case 'f':
        case 's':
        case 'i':
            log_error("queue: -%c is not available yet (it comes with the flush service)", ch);
            return POSTERN_EXIT_FAIL;
        default:
            return queue_usage();
        }
    }
    if (format == FORMAT_NONE || optind != argc)
        return queue_usage();
    if ((cfg = postern_queue_config(dir)) == NULL)
        return POSTERN_EXIT_FAIL;
    qdir = config_str(cfg, "queue_directory");
    if (chdir(qdir) != 0) {
        log_error("cannot enter queue_directory %s: %s", qdir, strerror(errno));
        config_free(cfg);
        return POSTERN_EXIT_FAIL;
    }
    rc = list_queue(format);
    config_free(cfg);
    return rc;
}
