/*
 * test_bounce_log.c - unit tests for bounce_log.c: block formatting, the
 * append writer (hashed directories, O_APPEND, newline scrubbing), the
 * tolerant reader (unknown names, malformed and truncated blocks), the
 * newest-per-recipient view and removal. File tests run in a private
 * temporary directory that is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce_log.h"
#include "config.h"
#include "mem.h"
#include "queue.h"
#include "rec_type.h"
#include "str.h"
#include "unit.h"

#define ID1 "4bKj7Pq2RtzM3x"
#define ID2 "4bKj7Pq2RszM3y"

static char tmpdir[] = "/tmp/test_bounce_log.XXXXXX";
static char oldcwd[4096];

static void
enter_tmp(const char *hashed)
{
    config_t *cfg = config_new();

    if (mkdtemp(tmpdir) == NULL || getcwd(oldcwd, sizeof(oldcwd)) == NULL || chdir(tmpdir) != 0) {
        perror("setup");
        exit(2);
    }
    if (mkdir("bounce", 0700) != 0 || mkdir("defer", 0700) != 0 || mkdir("trace", 0700) != 0) {
        perror("mkdir");
        exit(2);
    }
    config_set(cfg, "hash_queue_names", hashed);
    config_set(cfg, "hash_queue_depth", "2");
    queue_init(cfg);
    config_free(cfg);
}

static void
leave_tmp(void)
{
    str_t  *cmd = str_new(0);

    if (chdir(oldcwd) != 0)
        perror("chdir");
    str_printf(cmd, "rm -rf '%s'", tmpdir);
    if (system(str_cstr(cmd)) != 0)
        perror("rm");
    str_free(cmd);
}

static struct bounce_log_entry
entry(const char *rcpt, const char *status, const char *action, const char *reason)
{
    struct bounce_log_entry e = {0};

    e.recipient = (char *) rcpt;
    e.status = (char *) status;
    e.action = (char *) action;
    e.reason = (char *) reason;
    e.offset = -1;
    e.time = -1;
    return e;
}

static void
parse_text(struct bounce_log *log, const char *text)
{
    memset(log, 0, sizeof(*log));
    bounce_log_parse(log, text, strlen(text));
}

TEST(format_all_fields)
{
    struct bounce_log_entry e = entry("bob@example.com", "5.1.1", "failed", "unknown\r\nuser");
    str_t  *out = str_new(0);

    e.orig_rcpt = "Bob@Example.COM";
    e.dsn_orcpt = "rfc822;bob@example.com";
    e.dsn_notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
    e.offset = 321;
    e.relay = "local";
    e.time = 1700000000;
    bounce_log_format(out, &e);
    CHECK_STREQ(str_cstr(out),
                "recipient=bob@example.com\norig_rcpt=Bob@Example.COM\n"
                "dsn_orcpt=rfc822;bob@example.com\ndsn_notify=12\noffset=321\n"
                "status=5.1.1\naction=failed\nreason=unknown  user\nrelay=local\n"
                "time=1700000000\n\n");
    str_free(out);
}

TEST(format_minimal)
{
    struct bounce_log_entry e = entry("a@b", NULL, NULL, NULL);
    str_t  *out = str_new(0);

    bounce_log_format(out, &e);
    CHECK_STREQ(str_cstr(out), "recipient=a@b\n\n");
    str_free(out);
}

TEST(parse_round_trip)
{
    struct bounce_log_entry e = entry("x@y.example", "4.2.2", "delayed", "mailbox full");
    struct bounce_log log;
    str_t  *out = str_new(0);

    e.offset = 77;
    e.dsn_notify = DSN_NOTIFY_NEVER;
    e.time = 12;
    e.relay = "virtual";
    bounce_log_format(out, &e);
    bounce_log_format(out, &e);
    memset(&log, 0, sizeof(log));
    bounce_log_parse(&log, str_cstr(out), str_len(out));
    CHECK_INTEQ(log.count, 2);
    CHECK_INTEQ(log.skipped, 0);
    if (log.count == 2) {
        CHECK_STREQ(log.entries[1].recipient, "x@y.example");
        CHECK_STREQ(log.entries[1].status, "4.2.2");
        CHECK_STREQ(log.entries[1].action, "delayed");
        CHECK_STREQ(log.entries[1].reason, "mailbox full");
        CHECK_STREQ(log.entries[1].relay, "virtual");
        CHECK(log.entries[1].orig_rcpt == NULL);
        CHECK_INTEQ(log.entries[1].offset, 77);
        CHECK_INTEQ(log.entries[1].time, 12);
        CHECK_INTEQ(log.entries[1].dsn_notify, DSN_NOTIFY_NEVER);
    }
    CHECK_STREQ(str_cstr(log.problem), "");
    bounce_log_free(&log);
    str_free(out);
}

TEST(parse_unknown_names_and_defaults)
{
    struct bounce_log log;

    parse_text(&log, "future=1\nrecipient=a@b\nx_y=z\n\n\n\nrecipient=c@d\nreason=a=b\n\n");
    CHECK_INTEQ(log.count, 2);
    CHECK_INTEQ(log.skipped, 0);
    if (log.count == 2) {
        CHECK_INTEQ(log.entries[0].offset, -1);
        CHECK_INTEQ(log.entries[0].time, -1);
        CHECK_INTEQ(log.entries[0].dsn_notify, 0);
        CHECK(log.entries[0].status == NULL);
        CHECK_STREQ(log.entries[1].reason, "a=b");
    }
    bounce_log_free(&log);
}

TEST(parse_skips_malformed_blocks)
{
    static const struct {
        const char *text;
        const char *problem;
    } cases[] = {
        {"reason=x\n\n", "line 1: block without recipient"},
        {"recipient=\n\n", "line 1: empty recipient"},
        {"recipient=a\nno equals\n\n", "line 1: line without name=value"},
        {"recipient=a\n=x\n\n", "line 1: line without name=value"},
        {"recipient=a\noffset=-1\n\n", "line 1: bad offset"},
        {"recipient=a\noffset=12x\n\n", "line 1: bad offset"},
        {"recipient=a\noffset=99999999999999999999999\n\n", "line 1: bad offset"},
        {"recipient=a\ntime=\n\n", "line 1: bad time"},
        {"recipient=a\ndsn_notify=16\n\n", "line 1: bad dsn_notify"},
        {"recipient=a\nstatus=3.0.0\n\n", "line 1: bad status"},
        {"recipient=a\nstatus=5.1\n\n", "line 1: bad status"},
        {"recipient=a\nstatus=5.1.1234\n\n", "line 1: bad status"},
        {"recipient=a\nstatus=5.1.1 \n\n", "line 1: bad status"},
        {"recipient=a\naction=bounced\n\n", "line 1: bad action"},
        {"recipient=a\nreason=cut sh", "line 1: last block not ended by an empty line"},
        {"recipient=a\nreason=x\n", "line 1: last block not ended by an empty line"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bounce_log log;
        str_t  *text = str_new(0);

        /* Each bad block sits between two good ones, which must survive. */
        str_printf(text, "\nrecipient=first@x\n\n%s", cases[i].text);
        if (cases[i].text[strlen(cases[i].text) - 1] == '\n'
            && strstr(cases[i].problem, "last block") == NULL)
            str_append_cstr(text, "recipient=last@x\n\n");
        memset(&log, 0, sizeof(log));
        bounce_log_parse(&log, str_cstr(text), str_len(text));
        CHECK_INTEQ(log.skipped, 1);
        CHECK(log.count >= 1 && strcmp(log.entries[0].recipient, "first@x") == 0);
        /* Line numbers in the problem are relative to the block: shift them. */
        if (log.problem) {
            long    line = atol(str_cstr(log.problem) + 5);
            const char *colon = strchr(str_cstr(log.problem), ':');
            str_t  *want = str_new(0);

            str_printf(want, "line %ld%s", line - 3, colon ? colon : "");
            CHECK_STREQ(str_cstr(want), cases[i].problem);
            str_free(want);
        }
        bounce_log_free(&log);
        str_free(text);
    }
}

TEST(parse_long_line_and_nul)
{
    struct bounce_log log;
    str_t  *text = str_new(0);

    str_append_cstr(text, "recipient=a\nreason=");
    for (int i = 0; i < BOUNCE_LOG_LINE_MAX; i++)
        str_putc(text, 'x');
    str_append_cstr(text, "\n\nrecipient=b\n\nrecipient=c\nreason=a");
    str_putc(text, 0);
    str_append_cstr(text, "b\n\nrecipient=d\n\n");
    memset(&log, 0, sizeof(log));
    bounce_log_parse(&log, str_cstr(text), str_len(text));
    CHECK_INTEQ(log.count, 2);
    CHECK_INTEQ(log.skipped, 2);
    if (log.count == 2) {
        CHECK_STREQ(log.entries[0].recipient, "b");
        CHECK_STREQ(log.entries[1].recipient, "d");
    }
    CHECK_STREQ(str_cstr(log.problem), "line 1: line too long");
    bounce_log_free(&log);
    str_free(text);
}

TEST(newest_per_recipient)
{
    struct bounce_log log;

    parse_text(&log, "recipient=a\nreason=1\n\nrecipient=b\nreason=2\n\n"
               "recipient=a\nreason=3\n\nrecipient=c\nreason=4\n\nrecipient=b\nreason=5\n\n"
               "recipient=a\noffset=9\nreason=6\n\n");
    CHECK_INTEQ(log.count, 6);
    CHECK_STREQ(bounce_log_find(&log, "a")->reason, "6");
    CHECK(bounce_log_find(&log, "zz") == NULL);
    bounce_log_newest(&log);
    CHECK_INTEQ(log.count, 4);
    if (log.count == 4) {
        CHECK_STREQ(log.entries[0].recipient, "a");
        CHECK_STREQ(log.entries[0].reason, "3");
        CHECK_STREQ(log.entries[1].recipient, "b");
        CHECK_STREQ(log.entries[1].reason, "5");
        CHECK_STREQ(log.entries[2].recipient, "c");
        CHECK_STREQ(log.entries[3].reason, "6");
        CHECK_INTEQ(log.entries[3].offset, 9);
    }
    bounce_log_free(&log);
}

TEST(append_read_remove_files)
{
    struct bounce_log_entry e[2] = {
        entry("one@example.com", "5.1.1", "failed", "no such user"),
        entry("two@example.com", "4.4.1", "delayed", "connection\nrefused"),
    };
    struct bounce_log log;
    str_t  *err = str_new(0);
    struct stat st;

    enter_tmp("defer");
    /* Not hashed: bounce/ID. */
    CHECK_INTEQ(bounce_log_read(BOUNCE_LOG_BOUNCE, ID1, &log, err), 0);
    CHECK(!bounce_log_exists(BOUNCE_LOG_BOUNCE, ID1));
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_BOUNCE, ID1, e, 1, true, err), 0);
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_BOUNCE, ID1, e + 1, 1, false, err), 0);
    CHECK(stat("bounce/" ID1, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(bounce_log_exists(BOUNCE_LOG_BOUNCE, ID1));
    memset(&log, 0, sizeof(log));
    CHECK_INTEQ(bounce_log_read(BOUNCE_LOG_BOUNCE, ID1, &log, err), 1);
    CHECK_INTEQ(log.count, 2);
    if (log.count == 2) {
        CHECK_STREQ(log.entries[0].reason, "no such user");
        CHECK_STREQ(log.entries[1].reason, "connection refused");
    }
    bounce_log_free(&log);

    /* Hashed, two levels: the subdirectories appear on demand. */
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_DEFER, ID2, e, 2, true, err), 0);
    CHECK(stat("defer/s/R/" ID2, &st) == 0);
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_DEFER, ID2, e, 1, true, err), 0);
    memset(&log, 0, sizeof(log));
    CHECK_INTEQ(bounce_log_read(BOUNCE_LOG_DEFER, ID2, &log, err), 1);
    CHECK_INTEQ(log.count, 3);
    bounce_log_free(&log);

    /* Refusals. */
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_BOUNCE, "../x", e, 1, false, err), -1);
    e[0].recipient = "";
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_BOUNCE, ID1, e, 1, false, err), -1);
    CHECK(strstr(str_cstr(err), "without a recipient") != NULL);
    CHECK(symlink("/etc/passwd", "trace/" ID1) == 0);
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_TRACE, ID1, e + 1, 1, false, err), -1);
    memset(&log, 0, sizeof(log));
    CHECK_INTEQ(bounce_log_read(BOUNCE_LOG_TRACE, ID1, &log, err), -1);
    bounce_log_free(&log);
    CHECK(mkfifo("trace/" ID2, 0600) == 0);
    /* Without a reader the open fails (ENXIO) instead of blocking. */
    CHECK_INTEQ(bounce_log_append(BOUNCE_LOG_TRACE, ID2, e + 1, 1, false, err), -1);
    memset(&log, 0, sizeof(log));
    CHECK_INTEQ(bounce_log_read(BOUNCE_LOG_TRACE, ID2, &log, err), -1);
    bounce_log_free(&log);

    /* Removal. */
    CHECK_INTEQ(bounce_log_remove(BOUNCE_LOG_BOUNCE, ID1), 0);
    CHECK(!bounce_log_exists(BOUNCE_LOG_BOUNCE, ID1));
    CHECK_INTEQ(bounce_log_remove(BOUNCE_LOG_BOUNCE, ID1), 0);
    CHECK_INTEQ(bounce_log_remove(BOUNCE_LOG_DEFER, ID2), 0);
    CHECK(stat("defer/s/R/" ID2, &st) != 0 && errno == ENOENT);
    CHECK_INTEQ(bounce_log_remove(BOUNCE_LOG_DEFER, "bad/id"), -1);
    leave_tmp();
    str_free(err);
}
