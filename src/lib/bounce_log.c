/*
 * bounce_log.c - writer and reader of the bounce/, defer/ and trace/ logs.
 *
 * See bounce_log.h for the contract and bounce_proto.h for the format.
 *
 * SECURITY: the writer only appends to files below the queue directory
 * whose names come from queue_path() (the queue ID is checked there); it
 * refuses to follow a symbolic link. The reader bounds the file size and
 * the line length and never trusts a number without parsing it fully.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce_log.h"
#include "mem.h"
#include "queue.h"
#include "rec_type.h"
#include "stream.h"

#define LOG_FILE_MODE   0600
#define LOG_DIR_MODE    0700
#define DSN_NOTIFY_ALL  (DSN_NOTIFY_NEVER | DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY)

/* Writer. */

/* Append "name=value\n", with CR and LF in value turned into spaces. */
static void
put_field(str_t *out, const char *name, const char *value)
{
    if (value == NULL)
        return;
    str_append_cstr(out, name);
    str_putc(out, '=');
    for (const char *p = value; *p; p++)
        str_putc(out, (*p == '\n' || *p == '\r') ? ' ' : *p);
    str_putc(out, '\n');
}

void
bounce_log_format(str_t *out, const struct bounce_log_entry *e)
{
    put_field(out, "recipient", e->recipient ? e->recipient : "");
    put_field(out, "orig_rcpt", e->orig_rcpt);
    put_field(out, "dsn_orcpt", e->dsn_orcpt);
    if (e->dsn_notify > 0)
        str_append_printf(out, "dsn_notify=%d\n", e->dsn_notify);
    if (e->offset >= 0)
        str_append_printf(out, "offset=%lld\n", e->offset);
    put_field(out, "status", e->status);
    put_field(out, "action", e->action);
    put_field(out, "reason", e->reason);
    put_field(out, "relay", e->relay);
    if (e->time >= 0)
        str_append_printf(out, "time=%lld\n", e->time);
    str_putc(out, '\n');
}

/* Create the hashed subdirectories below the log directory "dir" (a/b/c). */
static int
make_dirs(const char *dir)
{
    char   *copy = mem_strdup(dir);
    int     rc = 0;

    /* The log directory itself (the first component) must exist already. */
    for (char *slash = strchr(copy, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        char   *next = strchr(slash + 1, '/');

        if (next)
            *next = 0;
        if (mkdir(copy, LOG_DIR_MODE) != 0 && errno != EEXIST)
            rc = -1;
        if (next)
            *next = '/';
        if (rc != 0)
            break;
    }
    mem_free(copy);
    return rc;
}

/* fsync a directory by name. */
static int
sync_dir(const char *dir)
{
    int     fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int     rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int
bounce_log_append(const char *log_name, const char *queue_id, const struct bounce_log_entry *e,
                  size_t n, bool sync, str_t *err)
{
    str_t  *path = str_new(64), *dir = str_new(64), *text = str_new(256);
    struct stat st;
    int     fd = -1, rc = -1, saved;
    bool    created = false;

    if (!queue_id_ok(queue_id)) {
        str_printf(err, "%s: bad queue ID", log_name);
        errno = EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (e[i].recipient == NULL || e[i].recipient[0] == 0) {
            str_printf(err, "%s/%s: entry without a recipient", log_name, queue_id);
            errno = EINVAL;
            goto out;
        }
        bounce_log_format(text, &e[i]);
    }
    queue_path(path, log_name, queue_id);
    queue_dir_path(dir, log_name, queue_id);
    for (int attempt = 0; fd < 0; attempt++) {
        fd = open(str_cstr(path), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            break;
        fd = open(str_cstr(path), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                  LOG_FILE_MODE);
        if (fd >= 0) {
            created = true;
            break;
        }
        if (errno == EEXIST && attempt < 2)
            continue;               /* created meanwhile: open it */
        if (errno != ENOENT || attempt > 0 || strchr(str_cstr(dir), '/') == NULL
            || make_dirs(str_cstr(dir)) != 0)
            break;
    }
    if (fd < 0) {
        saved = errno;
        str_printf(err, "open %s: %s", str_cstr(path), strerror(saved));
        errno = saved;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        str_printf(err, "fstat %s: %s", str_cstr(path), strerror(saved));
        errno = saved;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        str_printf(err, "%s: not a regular file", str_cstr(path));
        errno = EINVAL;
        goto out;
    }
    if (fd_write_all(fd, str_cstr(text), str_len(text)) != (ssize_t) str_len(text)) {
        saved = errno ? errno : EIO;
        str_printf(err, "write %s: %s", str_cstr(path), strerror(saved));
        /* Do not leave half a block for the next one to merge with. */
        if (ftruncate(fd, st.st_size) != 0)
            str_append_printf(err, "; and cannot cut it back: %s", strerror(errno));
        errno = saved;
        goto out;
    }
    if (sync && (fsync(fd) != 0 || (created && sync_dir(str_cstr(dir)) != 0))) {
        saved = errno;
        str_printf(err, "fsync %s: %s", str_cstr(path), strerror(saved));
        errno = saved;
        goto out;
    }
    rc = 0;
  out:
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        saved = errno;
        str_printf(err, "close %s: %s", str_cstr(path), strerror(saved));
        errno = saved;
        rc = -1;
    }
    str_free(path);
    str_free(dir);
    str_free(text);
    return rc;
}

/* Reader. */

static void
entry_free(struct bounce_log_entry *e)
{
    mem_free(e->recipient);
    mem_free(e->orig_rcpt);
    mem_free(e->dsn_orcpt);
    mem_free(e->status);
    mem_free(e->action);
    mem_free(e->reason);
    mem_free(e->relay);
    memset(e, 0, sizeof(*e));
}

static void
entry_init(struct bounce_log_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->offset = -1;
    e->time = -1;
}

/* Note a problem (only the first is kept). */
static void
problem(struct bounce_log *log, size_t line, const char *what)
{
    if (log->problem == NULL)
        log->problem = str_new(64);
    if (str_len(log->problem) == 0)
        str_printf(log->problem, "line %zu: %s", line, what);
}

/* A non-negative decimal number, nothing else, at most max. */
static bool
parse_number(const char *v, long long max, long long *out)
{
    long long n = 0;

    if (*v == 0)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return false;
        if (n > (max - (*v - '0')) / 10)
            return false;
        n = n * 10 + (*v - '0');
    }
    *out = n;
    return true;
}

/* "X.Y.Z": class 2, 4 or 5, then 1-3 and 1-3 digits. */
static bool
status_ok(const char *v)
{
    size_t  n;

    if ((v[0] != '2' && v[0] != '4' && v[0] != '5') || v[1] != '.')
        return false;
    v += 2;
    for (int part = 0; part < 2; part++) {
        for (n = 0; v[n] >= '0' && v[n] <= '9'; n++)
            ;
        if (n < 1 || n > 3)
            return false;
        v += n;
        if (part == 0 && *v++ != '.')
            return false;
    }
    return *v == 0;
}

static bool
action_ok(const char *v)
{
    static const char *const actions[] = {
        BOUNCE_ACTION_FAILED, BOUNCE_ACTION_DELAYED, BOUNCE_ACTION_DELIVERED,
        BOUNCE_ACTION_RELAYED, BOUNCE_ACTION_EXPANDED, NULL,
    };

    for (const char *const *a = actions; *a; a++)
        if (strcmp(v, *a) == 0)
            return true;
    return false;
}

/*
 * Replace a string field (a name given twice: the later value wins). A
 * stray CR becomes a space, as the writer does it: values never hold one.
 */
static void
set_field(char **field, const char *v)
{
    mem_free(*field);
    *field = mem_strdup(v);
    for (char *p = *field; (p = strchr(p, '\r')) != NULL; p++)
        *p = ' ';
}

/*
 * Apply one "name=value" line (NUL-terminated, without newline) to e.
 * Returns false with why set when it makes the block malformed.
 */
static bool
apply_line(struct bounce_log_entry *e, char *line, const char **why)
{
    char   *eq = strchr(line, '=');
    const char *v;
    long long n;

    if (eq == NULL || eq == line) {
        *why = "line without name=value";
        return false;
    }
    *eq = 0;
    v = eq + 1;
    if (strcmp(line, "recipient") == 0) {
        if (*v == 0) {
            *why = "empty recipient";
            return false;
        }
        set_field(&e->recipient, v);
    } else if (strcmp(line, "orig_rcpt") == 0) {
        set_field(&e->orig_rcpt, v);
    } else if (strcmp(line, "dsn_orcpt") == 0) {
        set_field(&e->dsn_orcpt, v);
    } else if (strcmp(line, "dsn_notify") == 0) {
        if (!parse_number(v, DSN_NOTIFY_ALL, &n)) {
            *why = "bad dsn_notify";
            return false;
        }
        e->dsn_notify = (int) n;
    } else if (strcmp(line, "offset") == 0) {
        if (!parse_number(v, (1LL << 62), &n)) {
            *why = "bad offset";
            return false;
        }
        e->offset = n;
    } else if (strcmp(line, "status") == 0) {
        if (!status_ok(v)) {
            *why = "bad status";
            return false;
        }
        set_field(&e->status, v);
    } else if (strcmp(line, "action") == 0) {
        if (!action_ok(v)) {
            *why = "bad action";
            return false;
        }
        set_field(&e->action, v);
    } else if (strcmp(line, "reason") == 0) {
        set_field(&e->reason, v);
    } else if (strcmp(line, "relay") == 0) {
        set_field(&e->relay, v);
    } else if (strcmp(line, "time") == 0) {
        if (!parse_number(v, (1LL << 62), &n)) {
            *why = "bad time";
            return false;
        }
        e->time = n;
    }
    /* Unknown names are ignored: newer writers may add fields. */
    return true;
}

void
bounce_log_parse(struct bounce_log *log, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    struct bounce_log_entry cur;
    str_t  *line = str_new(128);
    size_t  lineno = 0, block_start = 1;
    bool    in_block = false, bad = false;
    const char *why = NULL;

    if (log->problem == NULL)
        log->problem = str_new(64);
    entry_init(&cur);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        size_t  n = (size_t) ((nl ? nl : end) - p);

        lineno++;
        if (nl == NULL) {
            /* The file ends inside a block: a write that was cut short. */
            in_block = true;
            bad = true;
            if (why == NULL)
                why = "last block not ended by an empty line";
            break;
        }
        if (n == 0) {
            if (in_block) {
                if (!bad && cur.recipient == NULL) {
                    bad = true;
                    why = "block without recipient";
                }
                if (bad) {
                    log->skipped++;
                    problem(log, block_start, why);
                    entry_free(&cur);
                } else {
                    log->entries = mem_grow_array(log->entries, &log->cap, log->count + 1,
                                                  sizeof(*log->entries));
                    log->entries[log->count++] = cur;
                }
                entry_init(&cur);
            }
            in_block = bad = false;
            why = NULL;
        } else {
            if (!in_block)
                block_start = lineno;
            in_block = true;
            if (bad) {
                /* Skip the rest of a bad block. */
            } else if (n > BOUNCE_LOG_LINE_MAX) {
                bad = true;
                why = "line too long";
            } else if (memchr(p, 0, n) != NULL) {
                bad = true;
                why = "NUL byte in line";
            } else {
                str_set(line, p, n);
                if (!apply_line(&cur, line->data, &why))
                    bad = true;
            }
        }
        p = nl + 1;
    }
    if (in_block) {
        if (!bad) {
            bad = true;
            why = "last block not ended by an empty line";
        }
        log->skipped++;
        problem(log, block_start, why);
    }
    entry_free(&cur);
    str_free(line);
}

int
bounce_log_read(const char *log_name, const char *queue_id, struct bounce_log *log, str_t *err)
{
    str_t  *path = str_new(64), *text = str_new(0);
    struct stat st;
    int     fd, rc = -1;
    ssize_t got;

    if (!queue_id_ok(queue_id)) {
        str_printf(err, "%s: bad queue ID", log_name);
        goto out;
    }
    queue_path(path, log_name, queue_id);
    if ((fd = open(str_cstr(path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            rc = 0;
        else
            str_printf(err, "open %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        str_printf(err, "fstat %s: %s", str_cstr(path), strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        str_printf(err, "%s: not a regular file", str_cstr(path));
    } else if (st.st_size > BOUNCE_LOG_MAX) {
        str_printf(err, "%s: larger than %ld bytes", str_cstr(path), BOUNCE_LOG_MAX);
    } else {
        /* Read one byte more than the size, to see a file that grew. */
        str_reserve(text, (size_t) st.st_size + 1);
        got = fd_read_full(fd, text->data, (size_t) st.st_size + 1);
        if (got < 0) {
            str_printf(err, "read %s: %s", str_cstr(path), strerror(errno));
        } else {
            text->len = (size_t) got;
            text->data[got] = 0;
            bounce_log_parse(log, str_cstr(text), str_len(text));
            rc = 1;
        }
    }
    close(fd);
  out:
    str_free(path);
    str_free(text);
    return rc;
}

void
bounce_log_free(struct bounce_log *log)
{
    for (size_t i = 0; i < log->count; i++)
        entry_free(&log->entries[i]);
    mem_free(log->entries);
    str_free(log->problem);
    memset(log, 0, sizeof(*log));
}

static bool
same_recipient(const struct bounce_log_entry *a, const struct bounce_log_entry *b)
{
    return strcmp(a->recipient, b->recipient) == 0 && a->offset == b->offset;
}

void
bounce_log_newest(struct bounce_log *log)
{
    size_t  kept = 0;

    /* Quadratic in the distinct recipients; logs hold one message's recipients. */
    for (size_t i = 0; i < log->count; i++) {
        size_t  j;

        for (j = 0; j < kept; j++)
            if (same_recipient(&log->entries[j], &log->entries[i]))
                break;
        if (j < kept) {
            /* A later result for a recipient seen before: it takes that place. */
            entry_free(&log->entries[j]);
            log->entries[j] = log->entries[i];
        } else {
            log->entries[kept++] = log->entries[i];
        }
    }
    log->count = kept;
}

const struct bounce_log_entry *
bounce_log_find(const struct bounce_log *log, const char *recipient)
{
    for (size_t i = log->count; i > 0; i--)
        if (strcmp(log->entries[i - 1].recipient, recipient) == 0)
            return &log->entries[i - 1];
    return NULL;
}

int
bounce_log_remove(const char *log_name, const char *queue_id)
{
    str_t  *path = str_new(64);
    int     rc = 0;

    if (!queue_id_ok(queue_id)) {
        errno = EINVAL;
        rc = -1;
    } else {
        queue_path(path, log_name, queue_id);
        if (unlink(str_cstr(path)) != 0 && errno != ENOENT)
            rc = -1;
    }
    str_free(path);
    return rc;
}

bool
bounce_log_exists(const char *log_name, const char *queue_id)
{
    str_t  *path = str_new(64);
    struct stat st;
    bool    found = false;

    if (queue_id_ok(queue_id)) {
        queue_path(path, log_name, queue_id);
        found = lstat(str_cstr(path), &st) == 0;
    }
    str_free(path);
    return found;
}
