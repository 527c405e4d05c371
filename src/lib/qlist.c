/*
 * qlist.c - walk the mail queue and describe each message; see qlist.h.
 *
 * Trust: queue files go through the strict reader (qfile_read); defer
 * logs are ours but read defensively: bounded in size, control characters
 * in values replaced by '?', malformed blocks ignored. Nothing here writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "qfile.h"
#include "qlist.h"
#include "queue.h"
#include "str.h"

#define DEFER_LOG_MAX   (1024 * 1024)   /* larger defer logs are not read */

const char *const qlist_queues[] = {
    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_MAILDROP,
};
const size_t qlist_queue_count = sizeof(qlist_queues) / sizeof(qlist_queues[0]);

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

const char *
qlist_queue_name(const char *name)
{
    for (size_t i = 0; i < qlist_queue_count; i++)
        if (strcmp(name, qlist_queues[i]) == 0)
            return qlist_queues[i];
    return NULL;
}

void
qlist_msg_init(struct qlist_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
}

void
qlist_msg_add_rcpt(struct qlist_msg *msg, const char *address, const char *reason)
{
    msg->rcpts = mem_grow_array(msg->rcpts, &msg->rcpt_cap, msg->rcpt_count + 1,
                                sizeof(*msg->rcpts));
    msg->rcpts[msg->rcpt_count].address = mem_strdup(address);
    msg->rcpts[msg->rcpt_count].reason = reason ? mem_strdup(reason) : NULL;
    msg->rcpt_count++;
}

void
qlist_msg_free(struct qlist_msg *msg)
{
    for (size_t i = 0; i < msg->rcpt_count; i++) {
        mem_free(msg->rcpts[i].address);
        mem_free(msg->rcpts[i].reason);
    }
    mem_free(msg->rcpts);
    mem_free(msg->sender);
    qlist_msg_init(msg);
}

static void
collect_id(const char *queue_name, const char *id, void *ctx)
{
    struct id_list *l = ctx;

    (void) queue_name;
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

/*
 * Describe one message into *msg. Returns false (with a warning) when it
 * vanished or cannot be parsed.
 */
static bool
describe(const char *queue_name, const char *id, struct qlist_msg *msg)
{
    str_t  *path = str_new(64), *err = str_new(0);
    struct qfile qf;
    struct defer_log dl = {0};
    int     fd, rc;
    bool    maildrop = strcmp(queue_name, QUEUE_MAILDROP) == 0, ok = false;

    memset(&qf, 0, sizeof(qf));
    queue_path(path, queue_name, id);
    if ((fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno == ENOENT)
            log_warn("%s/%s: gone while listing (delivered or moved)", queue_name, id);
        else
            log_warn("cannot open %s: %s", str_cstr(path), strerror(errno));
        goto out;
    }
    rc = qfile_read(fd, str_cstr(path), maildrop ? QFILE_FLAG_MAILDROP : QFILE_FLAG_QUEUE, &qf, err);
    if (close(fd) != 0)
        log_warn("close %s: %s", str_cstr(path), strerror(errno));
    if (rc != QFILE_DONE) {
        log_warn("skipping %s", str_cstr(err));
        qfile_free(&qf);
        goto out;
    }
    if (strcmp(queue_name, QUEUE_DEFERRED) == 0)
        read_defer(id, &dl);
    qlist_msg_init(msg);
    msg->queue_name = queue_name;
    memcpy(msg->queue_id, id, strlen(id) + 1);
    msg->arrival_time = qf.arrival_sec;
    msg->message_size = qf.message_size;
    msg->sender = mem_strdup(qf.sender);
    for (size_t i = 0; i < qf.rcpt_count; i++)
        if (!qf.rcpts[i].done)
            qlist_msg_add_rcpt(msg, qf.rcpts[i].address, defer_reason(&dl, qf.rcpts[i].address));
    free_defer(&dl);
    qfile_free(&qf);
    ok = true;
out:
    str_free(path);
    str_free(err);
    return ok;
}

int
qlist_walk_queue(const char *name, qlist_fn fn, void *ctx)
{
    struct id_list ids = {0};
    int     rc = 0;

    if (queue_walk(name, collect_id, &ids) < 0) {
        if (errno != ENOENT)
            log_warn("cannot read queue %s: %s", name, strerror(errno));
        free_ids(&ids);
        return 0;
    }
    if (ids.count > 1)
        qsort(ids.ids, ids.count, sizeof(*ids.ids), compare_ids);
    for (size_t i = 0; i < ids.count && rc == 0; i++) {
        struct qlist_msg msg;

        if (!describe(name, ids.ids[i], &msg))
            continue;
        rc = fn(&msg, ctx);
        qlist_msg_free(&msg);
    }
    free_ids(&ids);
    return rc;
}

int
qlist_walk(qlist_fn fn, void *ctx)
{
    int     rc = 0;

    for (size_t q = 0; q < qlist_queue_count && rc == 0; q++)
        rc = qlist_walk_queue(qlist_queues[q], fn, ctx);
    return rc;
}
