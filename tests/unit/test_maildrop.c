/*
 * test_maildrop.c - unit tests for maildrop.c (the submission checker, the
 * authorized_submit_users list, alternate_config_directories) and submit.c
 * (sendmail's message reader and address parsing).
 *
 * Record streams are built with rec.h and fed back one record at a time;
 * each case says which origin it is checked as and the error it must give
 * (NULL: accepted).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup_proto.h"
#include "maildrop.h"
#include "rec.h"
#include "str.h"
#include "stream.h"
#include "submit.h"
#include "unit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A record list as text: "T1|S a@b|Asubmit_uid=5|Rbob|M|Nhi|X|E" (type letter, data). */
static void
build(str_t *out, const char *spec)
{
    char   *copy = strdup(spec), *save = NULL;

    str_reset(out);
    for (char *r = strtok_r(copy, "|", &save); r; r = strtok_r(NULL, "|", &save))
        rec_put(out, r[0], r + 1, strlen(r + 1));
    free(copy);
}

/* Feed every record; returns the final result and leaves mc for inspection. */
static int
run(struct maildrop_check *mc, const str_t *recs)
{
    size_t  off = 0, used, len;
    const char *data;
    int     type, rc = MAILDROP_MORE;

    while ((type = rec_decode(str_cstr(recs) + off, str_len(recs) - off, REC_MAX_LEN,
                              &data, &len, &used)) >= 0) {
        rc = maildrop_check_record(mc, type, data, len);
        off += used;
        if (rc == MAILDROP_BAD)
            break;
    }
    return rc;
}

static const struct check_case {
    enum maildrop_origin origin;
    const char *spec;
    const char *error;          /* substring of the error; NULL = accepted */
} check_cases[] = {
    {MAILDROP_FROM_USER, "T1700000000.123456|Sa@b|Rbob|M|Nhi|X|E", NULL},
    {MAILDROP_FROM_USER, "T1|FJoe\tUser|S|Rbob|M|X|E", NULL},
    {MAILDROP_FROM_USER, "T1|Sa|Asubmit_flags=2|M|NTo: x|X|E", NULL},
    {MAILDROP_FROM_USER, "T1|Sa|Adsn_envid=abc|Adsn_ret=2|Orfc822;b@c|N6|Rb|M|X|E", NULL},
    {MAILDROP_FROM_FILE, "T1|Sa|Asubmit_uid=1000|Asubmit_user=joe|Rb|M|X|E", NULL},
    {MAILDROP_FROM_USER, "Sa|Rb|M|X|E", "arrival time"},
    {MAILDROP_FROM_USER, "Tx|Sa|Rb|M|X|E", "bad arrival time"},
    {MAILDROP_FROM_USER, "T1.1234567|Sa|Rb|M|X|E", "bad arrival time"},
    {MAILDROP_FROM_USER, "T1|Fa|Fb|Sa|Rb|M|X|E", "twice"},
    {MAILDROP_FROM_USER, "T1|Rb|M|X|E", "no sender"},
    {MAILDROP_FROM_USER, "T1|Sa|M|X|E", "no recipients"},
    {MAILDROP_FROM_USER, "T1|Sa|Asubmit_uid=0|Rb|M|X|E", "not allowed"},
    {MAILDROP_FROM_USER, "T1|Sa|Asubmit_user=root|Rb|M|X|E", "not allowed"},
    {MAILDROP_FROM_USER, "T1|Sa|Aprotocol=SMTP|Rb|M|X|E", "not allowed"},
    {MAILDROP_FROM_USER, "T1|Sa|Anoequals|Rb|M|X|E", "name=value"},
    {MAILDROP_FROM_USER, "T1|Sa|Asubmit_flags=1|Rb|M|X|E", "submit_flags"},
    {MAILDROP_FROM_USER, "T1|Sa|Adsn_ret=3|Rb|M|X|E", "dsn_ret"},
    {MAILDROP_FROM_USER, "T1|Sa|Adsn_envid=a b|Rb|M|X|E", "dsn_envid"},
    {MAILDROP_FROM_USER, "T1|Sa|Adsn_ret=1|Adsn_ret=1|Rb|M|X|E", "twice"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|Adsn_ret=1|M|X|E", "after a recipient"},
    {MAILDROP_FROM_USER, "T1|Sa|N3|Rb|M|X|E", "notify"},
    {MAILDROP_FROM_USER, "T1|Sa|N2|N2|Rb|M|X|E", "twice"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|N2|M|X|E", "without a recipient"},
    {MAILDROP_FROM_USER, "T1|Sa|Onosemicolon|Rb|M|X|E", "original recipient"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|M|Lab|X|E", "inside a line"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|M|Rc|X|E", "unexpected record in the content"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|M|X|Nx|E", "no end record"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|M|X|E|E", "after the end"},
    {MAILDROP_FROM_USER, "T1|Sa|Rb|Qx|M|X|E", "unexpected 'Q'"},
    {MAILDROP_FROM_FILE, "T1|Sa|Rb|M|X|E", "no submit_uid"},
    {MAILDROP_FROM_FILE, "T1|Sa|Asubmit_uid=-1|Rb|M|X|E", "submit_uid"},
    {MAILDROP_FROM_FILE, "T1|Sa|Asubmit_uid=1|Asubmit_user=a/b|Rb|M|X|E", "submit_user"},
};

TEST(check_table)
{
    str_t  *recs = str_new(0);

    for (size_t i = 0; i < NELEM(check_cases); i++) {
        const struct check_case *c = &check_cases[i];
        struct maildrop_check mc;
        int     rc;

        maildrop_check_init(&mc, c->origin, 100, 0);
        build(recs, c->spec);
        rc = run(&mc, recs);
        if (c->error == NULL) {
            if (rc != MAILDROP_DONE)
                fprintf(stderr, "  case %zu (%s): %s\n", i, c->spec, str_cstr(&mc.error));
            CHECK_INTEQ(rc, MAILDROP_DONE);
        } else {
            if (rc != MAILDROP_BAD || strstr(str_cstr(&mc.error), c->error) == NULL)
                fprintf(stderr, "  case %zu (%s): rc %d error \"%s\", want \"%s\"\n", i, c->spec, rc,
                        str_cstr(&mc.error), c->error);
            CHECK(rc == MAILDROP_BAD && strstr(str_cstr(&mc.error), c->error) != NULL);
        }
        maildrop_check_free(&mc);
    }
    str_free(recs);
}

TEST(check_results_and_limits)
{
    str_t  *recs = str_new(0);
    struct maildrop_check mc;

    maildrop_check_init(&mc, MAILDROP_FROM_FILE, 100, 0);
    build(recs, "T1|Sme@here|Asubmit_uid=42|Asubmit_flags=2|Ra|Rb|M|N12345|Labc|Nde|X|E");
    CHECK_INTEQ(run(&mc, recs), MAILDROP_DONE);
    CHECK_INTEQ(mc.submit_uid, 42);
    CHECK_INTEQ(mc.submit_flags, CLEANUP_FLAG_EXTRACT);
    CHECK_INTEQ(mc.rcpt_count, 2);
    CHECK_INTEQ(mc.content_size, 6 + 6);
    CHECK_STREQ(str_cstr(&mc.sender), "me@here");
    maildrop_check_free(&mc);

    /* 12 content bytes against a limit of 11, then of 12. */
    maildrop_check_init(&mc, MAILDROP_FROM_USER, 100, 11);
    build(recs, "T1|Sa|Rb|M|N12345|Labc|Nde|X|E");
    CHECK_INTEQ(run(&mc, recs), MAILDROP_BAD);
    CHECK_STREQ(str_cstr(&mc.error), "message file too big");
    maildrop_check_free(&mc);
    maildrop_check_init(&mc, MAILDROP_FROM_USER, 100, 12);
    CHECK_INTEQ(run(&mc, recs), MAILDROP_DONE);
    maildrop_check_free(&mc);

    /* Line limit 4: a 5-byte record is refused. */
    maildrop_check_init(&mc, MAILDROP_FROM_USER, 4, 0);
    CHECK_INTEQ(run(&mc, recs), MAILDROP_BAD);
    CHECK(strstr(str_cstr(&mc.error), "longer than 4") != NULL);
    maildrop_check_free(&mc);

    /* A NUL or newline in an address is refused. */
    maildrop_check_init(&mc, MAILDROP_FROM_USER, 100, 0);
    str_reset(recs);
    rec_put_str(recs, 'T', "1");
    rec_put(recs, 'S', "a\0b", 3);
    CHECK_INTEQ(run(&mc, recs), MAILDROP_BAD);
    maildrop_check_free(&mc);
    maildrop_check_init(&mc, MAILDROP_FROM_USER, 100, 0);
    build(recs, "T1|Sa|Rb\nc|M|X|E");
    CHECK_INTEQ(run(&mc, recs), MAILDROP_BAD);
    maildrop_check_free(&mc);
    str_free(recs);
}

TEST(user_lists)
{
    str_t  *err = str_new(0);

    CHECK_INTEQ(maildrop_user_allowed("static:anyone", "joe", err), 1);
    CHECK_INTEQ(maildrop_user_allowed("", "joe", err), 0);
    CHECK_INTEQ(maildrop_user_allowed("root, joe", "JOE", err), 1);
    CHECK_INTEQ(maildrop_user_allowed("root joe", "jo", err), 0);
    CHECK_INTEQ(maildrop_user_allowed("!joe, static:anyone", "joe", err), 0);
    CHECK_INTEQ(maildrop_user_allowed("!joe, static:anyone", "ann", err), 1);
    CHECK_INTEQ(maildrop_user_allowed("inline:{ann=1, bob=1}", "bob", err), 1);
    CHECK_INTEQ(maildrop_user_allowed("inline:{ann=1}", "bob", err), 0);
    CHECK_INTEQ(maildrop_user_allowed("nosuchtype:x", "bob", err), -1);
    CHECK(str_len(err) > 0);
    str_free(err);
}

TEST(config_dir_lists)
{
    CHECK(maildrop_dir_listed("/etc/a, /etc/b/", "/etc/b"));
    CHECK(maildrop_dir_listed("/etc/a /etc/b", "/etc/a/"));
    CHECK(!maildrop_dir_listed("/etc/a", "/etc/ab"));
    CHECK(!maildrop_dir_listed("", "/etc/a"));
}

/* Run submit_input over text; returns the status and the records in out. */
static int read_input(const char *text, size_t len, size_t line_limit, long long size_limit,
                      bool ignore_dots, bool smtp, str_t *out);

static int
read_message(const char *text, size_t len, size_t line_limit, long long size_limit, bool ignore_dots,
             str_t *out)
{
    return read_input(text, len, line_limit, size_limit, ignore_dots, false, out);
}

/* The same in SMTP mode (sendmail -bs DATA). */
static int
read_smtp(const char *text, size_t len, size_t line_limit, long long size_limit, str_t *out)
{
    return read_input(text, len, line_limit, size_limit, false, true, out);
}

static int
read_input(const char *text, size_t len, size_t line_limit, long long size_limit, bool ignore_dots,
           bool smtp, str_t *out)
{
    int     p[2];
    struct submit_input in;
    int     rc;

    if (pipe(p) != 0 || write(p[1], text, len) != (ssize_t) len)
        abort();
    close(p[1]);
    stream_t *st = stream_open(p[0]);

    submit_input_init(&in, line_limit, size_limit, ignore_dots);
    in.smtp = smtp;
    str_reset(out);
    while ((rc = submit_input_next(&in, st, out)) == SUBMIT_INPUT_MORE)
        ;
    submit_input_free(&in);
    stream_close(st);
    return rc;
}

/* The records of out as text: "Nhi|Labc|Nd". */
static const char *
show(const str_t *recs)
{
    static char buf[1024];
    size_t  off = 0, used, len, n = 0;
    const char *data;
    int     type;

    buf[0] = 0;
    while ((type = rec_decode(str_cstr(recs) + off, str_len(recs) - off, REC_MAX_LEN,
                              &data, &len, &used)) >= 0 && n + len + 3 < sizeof(buf)) {
        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%c%.*s", off ? "|" : "", type,
                               (int) len, data);
        off += used;
    }
    return buf;
}

TEST(message_reader)
{
    str_t  *out = str_new(0);

#define MSG(s) s, sizeof(s) - 1
    CHECK_INTEQ(read_message(MSG("a\nb\n"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na|Nb");
    CHECK_INTEQ(read_message(MSG("a\r\nb\r\n\r\nlast"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na|Nb|N|Nlast");
    CHECK_INTEQ(read_message(MSG("a\n.\nb\n"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na");
    CHECK_INTEQ(read_message(MSG("a\r\n.\r\nb\n"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na");
    CHECK_INTEQ(read_message(MSG("a\n.\nb\n"), 100, 0, true, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na|N.|Nb");
    CHECK_INTEQ(read_message(MSG("abcdefghij\nxy\n"), 4, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Labcd|Lefgh|Nij|Nxy");
    CHECK_INTEQ(read_message(MSG("abcd\r\n"), 4, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Nabcd");
    CHECK_INTEQ(read_message(MSG("abcd\r"), 4, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Labcd|N\r");
    /* A long line whose last piece is "." does not end the message. */
    CHECK_INTEQ(read_message(MSG("abcd.\nz\n"), 4, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Labcd|N.|Nz");
    CHECK_INTEQ(read_message(MSG("From x y\nFrom: a\n"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "NFrom: a");
    CHECK_INTEQ(read_message(MSG("a\nFrom x\n"), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Na|NFrom x");
    CHECK_INTEQ(read_message(MSG(""), 100, 0, false, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "");
    /* Size: "abc\n" + "de\n" = 7 bytes. */
    CHECK_INTEQ(read_message(MSG("abc\nde\n"), 100, 7, false, out), SUBMIT_INPUT_OK);
    CHECK_INTEQ(read_message(MSG("abc\nde\n"), 100, 6, false, out), SUBMIT_INPUT_TOOBIG);
#undef MSG
    str_free(out);
}

TEST(message_reader_smtp)
{
    str_t  *out = str_new(0);

#define MSG(s) s, sizeof(s) - 1
    /* Only "." ends it; leading dots are removed; a "From " line is data. */
    CHECK_INTEQ(read_smtp(MSG("From x\r\n..a\r\n.\r\nafter\r\n"), 100, 0, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "NFrom x|N.a");
    CHECK_INTEQ(read_smtp(MSG(".\n"), 100, 0, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "");
    /* The dot of a long line's first piece goes; a later piece keeps its dot. */
    CHECK_INTEQ(read_smtp(MSG(".abcdef.gh\n.\n"), 4, 0, out), SUBMIT_INPUT_OK);
    CHECK_STREQ(show(out), "Labc|Ldef.|Ngh");
    /* The input ends before the "." line: nothing is complete. */
    CHECK_INTEQ(read_smtp(MSG("a\r\nb"), 100, 0, out), SUBMIT_INPUT_EOF);
    CHECK_INTEQ(read_smtp(MSG(""), 100, 0, out), SUBMIT_INPUT_EOF);
    /* Over the limit: read to the "." line, keep nothing after the line that crossed it. */
    CHECK_INTEQ(read_smtp(MSG("abc\nde\n.\n"), 100, 7, out), SUBMIT_INPUT_OK);
    CHECK_INTEQ(read_smtp(MSG("abc\nde\nfgh\nij\n.\nrest\n"), 100, 6, out), SUBMIT_INPUT_TOOBIG);
    CHECK_STREQ(show(out), "Nabc|Nde");
#undef MSG
    str_free(out);
}

TEST(addresses)
{
    str_t  *out = str_new(0);

    submit_put_sender(out, " <joe@example.org> ");
    CHECK_STREQ(show(out), "Sjoe@example.org");
    str_reset(out);
    submit_put_sender(out, "<>");
    CHECK_STREQ(show(out), "S");
    str_reset(out);
    CHECK_INTEQ(submit_put_recipients(out, "a, Bee <b@x>,,\"c, d\"@y", 0), 3);
    CHECK_STREQ(show(out), "Ra|Rb@x|R\"c, d\"@y");
    str_reset(out);
    CHECK_INTEQ(submit_put_recipients(out, "a", 6), 1);
    CHECK_STREQ(show(out), "N6|Ra");
    str_reset(out);
    CHECK_INTEQ(submit_put_recipients(out, " , ", 0), 0);
    str_free(out);
}
