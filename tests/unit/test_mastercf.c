/*
 * test_mastercf.c - unit tests for mastercf.c: a default Postfix-like
 * service table, continuation lines, every field's checks, "-o" forms,
 * braces, duplicates, and reading from a file.
 */
#include <fcntl.h>
#include <unistd.h>

#include "mastercf.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_NAME "/x/master.cf"

static const char default_master_cf[] =
    "#\n"
    "# Postern master process configuration file.\n"
    "# ==========================================================================\n"
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "#               (yes)   (yes)   (no)    (never) (100)\n"
    "# ==========================================================================\n"
    "smtp      inet  n       -       n       -       -       smtpd\n"
    "#submission inet n      -       n       -       -       smtpd\n"
    "#  -o syslog_name=postern/submission\n"
    "pickup    unix  n       -       n       60      1       pickup\n"
    "cleanup   unix  n       -       n       -       0       cleanup\n"
    "qmgr      unix  n       -       n       300     1       qmgr\n"
    "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
    "rewrite   unix  -       -       n       -       -       trivial-rewrite\n"
    "bounce    unix  -       -       n       -       0       bounce\n"
    "defer     unix  -       -       n       -       0       bounce\n"
    "trace     unix  -       -       n       -       0       bounce\n"
    "verify    unix  -       -       n       -       1       verify\n"
    "flush     unix  n       -       n       1000?   0       flush\n"
    "proxymap  unix  -       -       n       -       -       proxymap\n"
    "smtp      unix  -       -       n       -       -       smtp\n"
    "relay     unix  -       -       n       -       -       smtp\n"
    "        -o syslog_name=${multi_instance_name?{$multi_instance_name}:{postern}}/$service_name\n"
    "showq     unix  n       -       n       -       -       showq\n"
    "error     unix  -       -       n       -       -       error\n"
    "retry     unix  -       -       n       -       -       error\n"
    "discard   unix  -       -       n       -       -       discard\n"
    "local     unix  -       n       n       -       -       local\n"
    "lmtp      unix  -       -       n       -       -       lmtp\n"
    "anvil     unix  -       -       n       -       1       anvil\n"
    "scache    unix  -       -       n       -       1       scache\n"
    "postlog   unix-dgram n  -       n       -       1       postlogd\n"
    "127.0.0.1:2525 inet n   -       n       -       4       smtpd\n"
    "  -o smtpd_client_restrictions=permit_mynetworks,reject\n"
    "[::1]:2526 inet n       -       y       -       -       smtpd\n"
    "submission inet n       -       n       -       -       smtpd\n"
    "  -o syslog_name=postern/submission\n"
    "  # a comment inside the entry\n"
    "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n"
    "  -o {smtpd_banner=$myhostname says hello}\n"
    "  -o {\n"
    "    smtpd_helo_restrictions = permit\n"
    "  }\n"
    "  -v\n"
    "  -o milter_macro_daemon_name=ORIGINATING\n"
    "maildrop  unix  -       n       n       -       -       pipe\n"
    "  flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient} -o not_an_option=1\n"
    "public/x  fifo  n       -       n       60      1       pickup\n";

static const struct mastercf_entry *
find(const struct mastercf *mc, const char *service, enum mastercf_type type)
{
    for (size_t i = 0; i < mc->count; i++)
        if (strcmp(mc->entries[i].service, service) == 0 && mc->entries[i].type == type)
            return &mc->entries[i];
    return NULL;
}

static void
dump_diags(const diag_list_t *dl)
{
    char    buf[512];

    for (size_t i = 0; i < dl->count; i++) {
        diag_format(&dl->items[i], buf, sizeof(buf));
        fprintf(stderr, "    diag: %s\n", buf);
    }
}

TEST(default_table)
{
    struct mastercf mc;
    diag_list_t diags;
    const struct mastercf_entry *e;

    diag_init(&diags);
    CHECK_INTEQ(mastercf_read_string(FILE_NAME, default_master_cf, strlen(default_master_cf), &mc,
                                     &diags), 0);
    /* One error: "public/x" is not a valid fifo name. */
    if (diags.count != 1)
        dump_diags(&diags);
    CHECK_INTEQ(diags.count, 1);
    CHECK_INTEQ(diags.items[0].line, 48);
    CHECK(strstr(diags.items[0].text, "bad fifo service name \"public/x\"") != NULL);
    CHECK_INTEQ(mc.count, 27);

    e = find(&mc, "smtp", MASTERCF_INET);
    CHECK(e != NULL);
    if (e) {
        CHECK(!e->private_ && e->unpriv && !e->chroot);
        CHECK_INTEQ(e->wakeup, 0);
        CHECK(!e->wakeup_if_used);
        CHECK_INTEQ(e->maxproc, -1);
        CHECK_INTEQ(e->argc, 1);
        CHECK_STREQ(e->argv[0], "smtpd");
        CHECK(e->argv[1] == NULL);
        CHECK_INTEQ(e->nopts, 0);
        CHECK_STREQ(e->file, FILE_NAME);
        CHECK_INTEQ(e->line, 7);
    }
    CHECK(find(&mc, "smtp", MASTERCF_UNIX) != NULL);
    e = find(&mc, "pickup", MASTERCF_UNIX);
    CHECK(e && !e->private_ && e->wakeup == 60 && !e->wakeup_if_used && e->maxproc == 1);
    e = find(&mc, "tlsmgr", MASTERCF_UNIX);
    CHECK(e && e->private_ && e->wakeup == 1000 && e->wakeup_if_used);
    e = find(&mc, "cleanup", MASTERCF_UNIX);
    CHECK(e && e->maxproc == 0);
    e = find(&mc, "local", MASTERCF_UNIX);
    CHECK(e && !e->unpriv);
    e = find(&mc, "postlog", MASTERCF_UNIX_DGRAM);
    CHECK(e && e->maxproc == 1);
    e = find(&mc, "rewrite", MASTERCF_UNIX);
    CHECK(e && strcmp(e->argv[0], "trivial-rewrite") == 0);

    e = find(&mc, "relay", MASTERCF_UNIX);
    CHECK(e && e->nopts == 1 && e->line == 22);
    if (e && e->nopts == 1) {
        CHECK_STREQ(e->opts[0].name, "syslog_name");
        CHECK_STREQ(e->opts[0].value, "${multi_instance_name?{$multi_instance_name}:{postern}}/$service_name");
    }
    e = find(&mc, "127.0.0.1:2525", MASTERCF_INET);
    CHECK(e && e->maxproc == 4 && e->nopts == 1 && e->argc == 1);
    e = find(&mc, "[::1]:2526", MASTERCF_INET);
    CHECK(e && e->chroot);

    e = find(&mc, "submission", MASTERCF_INET);
    CHECK(e != NULL);
    if (e) {
        static const char *const want[][2] = {
            {"syslog_name", "postern/submission"},
            {"smtpd_client_restrictions", "permit_sasl_authenticated, reject"},
            {"smtpd_banner", "$myhostname says hello"},
            {"smtpd_helo_restrictions", "permit"},
            {"milter_macro_daemon_name", "ORIGINATING"},
        };

        CHECK_INTEQ(e->line, 36);
        CHECK_INTEQ(e->nopts, N_ELEMENTS(want));
        for (size_t i = 0; i < N_ELEMENTS(want) && i < e->nopts; i++) {
            CHECK_STREQ(e->opts[i].name, want[i][0]);
            CHECK_STREQ(e->opts[i].value, want[i][1]);
        }
        /* Other options stay in argv, in order. */
        CHECK_INTEQ(e->argc, 2);
        CHECK_STREQ(e->argv[0], "smtpd");
        CHECK_STREQ(e->argv[1], "-v");
        CHECK(e->argv[2] == NULL);
    }
    /* After the first non-option argument, "-o" is an ordinary argument. */
    e = find(&mc, "maildrop", MASTERCF_UNIX);
    CHECK(e != NULL);
    if (e) {
        static const char *const want[] = {
            "pipe", "flags=DRhu", "user=vmail", "argv=/usr/bin/maildrop", "-d", "${recipient}",
            "-o", "not_an_option=1",
        };

        CHECK_INTEQ(e->nopts, 0);
        CHECK_INTEQ(e->argc, N_ELEMENTS(want));
        for (size_t i = 0; i < N_ELEMENTS(want) && i < (size_t) e->argc; i++)
            CHECK_STREQ(e->argv[i], want[i]);
        CHECK(e->argv[e->argc] == NULL);
    }
    mastercf_free(&mc);
    CHECK(mc.entries == NULL && mc.count == 0);
    diag_free(&diags);
}

TEST(field_errors)
{
    static const struct {
        const char *text;
        int     line;
        const char *err;            /* exact diagnostic text */
    } cases[] = {
        {"smtp inet n - n - -\n", 1, "wrong number of fields (7): need at least 8"},
        {"# c\n\nsmtp inet n -\n  n\n", 3, "wrong number of fields (5): need at least 8"},
        {"smtp\n", 1, "wrong number of fields (1): need at least 8"},
        {"smtp tcp n - n - - smtpd\n", 1,
         "unknown service type \"tcp\": need inet, unix, unix-dgram, fifo or pass"},
        {"smtp INET n - n - - smtpd\n", 1,
         "unknown service type \"INET\": need inet, unix, unix-dgram, fifo or pass"},
        {"smtp inet x - n - - smtpd\n", 1, "bad \"private\" field \"x\": need y, n or -"},
        {"smtp inet yes - n - - smtpd\n", 1, "bad \"private\" field \"yes\": need y, n or -"},
        {"smtp inet n Y n - - smtpd\n", 1, "bad \"unpriv\" field \"Y\": need y, n or -"},
        {"smtp inet n - 1 - - smtpd\n", 1, "bad \"chroot\" field \"1\": need y, n or -"},
        {"smtp inet y - n - - smtpd\n", 1, "inet service \"smtp\" cannot be private"},
        {"pickup unix n - n abc 1 pickup\n", 1,
         "bad \"wakeup\" field \"abc\": need a number of seconds, N? or -"},
        {"pickup unix n - n -5 1 pickup\n", 1,
         "bad \"wakeup\" field \"-5\": need a number of seconds, N? or -"},
        {"pickup unix n - n 5?? 1 pickup\n", 1,
         "bad \"wakeup\" field \"5??\": need a number of seconds, N? or -"},
        {"pickup unix n - n 99999999999 1 pickup\n", 1,
         "bad \"wakeup\" field \"99999999999\": need a number of seconds, N? or -"},
        {"pickup unix n - n 60 x pickup\n", 1, "bad \"maxproc\" field \"x\": need a number or -"},
        {"pickup unix n - n 60 -1 pickup\n", 1, "bad \"maxproc\" field \"-1\": need a number or -"},
        {"pickup unix n - n 60 +1 pickup\n", 1, "bad \"maxproc\" field \"+1\": need a number or -"},
        {"../evil unix n - n - - pickup\n", 1,
         "bad unix service name \"../evil\": must not contain \"/\" or start with \".\""},
        {"{} unix n - n - - pickup\n", 1, "empty service name"},
        {"x unix n - n - - {}\n", 1, "empty command name"},
        {"  smtp inet n - n - - smtpd\n", 1,
         "line starts with white space but does not continue a logical line"},
        {"smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd -v\n", 2,
         "duplicate service \"smtp\" type inet (first defined on line 1)"},
        {"a unix - - n - - x\nb unix - - n - - x\na unix - - n - - y\n", 3,
         "duplicate service \"a\" type unix (first defined on line 1)"},
        {"submission inet n - n - - smtpd -o\n", 1, "-o without a name=value argument"},
        {"submission inet n - n - - smtpd\n  -o syslog_name\n", 1,
         "bad -o argument \"syslog_name\": need name=value"},
        {"submission inet n - n - - smtpd -o =x\n", 1,
         "bad parameter name \"\" in -o argument: use only letters, digits and \"_\""},
        {"submission inet n - n - - smtpd -o bad-name=x\n", 1,
         "bad parameter name \"bad-name\" in -o argument: use only letters, digits and \"_\""},
        {"submission inet n - n - - smtpd -o { a = b\n", 1, "missing \"}\" after \"{ a = b\""},
        {"submission inet n - n - - smtpd -o {a=b}c\n", 1, "need white space after \"}\" in \"{a=b}c\""},
        {"submission inet n - n - - smtpd -o { a = b }\n\n  -o c=d\n", 3,
         "line starts with white space but does not continue a logical line"},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        struct mastercf mc;
        diag_list_t diags;
        bool    found = false;

        diag_init(&diags);
        mastercf_read_string(FILE_NAME, cases[i].text, strlen(cases[i].text), &mc, &diags);
        for (size_t j = 0; j < diags.count; j++) {
            if (diags.items[j].severity == DIAG_ERROR && diags.items[j].line == cases[i].line
                && strcmp(diags.items[j].text, cases[i].err) == 0
                && strcmp(diags.items[j].file, FILE_NAME) == 0)
                found = true;
        }
        if (!found || diags.count != 1) {
            fprintf(stderr, "  case %zu, expected line %d: %s\n", i, cases[i].line, cases[i].err);
            dump_diags(&diags);
        }
        CHECK(found);
        CHECK_INTEQ(diags.count, 1);
        /* Bad lines produce no entry; good ones around them do. */
        for (size_t j = 0; j < mc.count; j++)
            CHECK(mc.entries[j].line != cases[i].line);
        mastercf_free(&mc);
        diag_free(&diags);
    }
}

TEST(good_variants)
{
    static const struct {
        const char *text;
        const char *service;
        enum mastercf_type type;
        bool    private_, unpriv, chroot;
        int     wakeup;
        bool    if_used;
        int     maxproc;
        int     argc;
        size_t  nopts;
    } cases[] = {
        {"smtp inet - - - - - smtpd", "smtp", MASTERCF_INET, false, true, false, 0, false, -1, 1, 0},
        {"25 inet n n y 0 0 smtpd a b c", "25", MASTERCF_INET, false, false, true, 0, false, 0, 4, 0},
        {"x unix y y n 10? 7 prog", "x", MASTERCF_UNIX, true, true, false, 10, true, 7, 1, 0},
        {"x unix - - - 0? - prog", "x", MASTERCF_UNIX, true, true, false, 0, false, -1, 1, 0},
        {"p fifo n - n 60 1 pickup", "p", MASTERCF_FIFO, false, true, false, 60, false, 1, 1, 0},
        {"s pass - - n - - smtpd", "s", MASTERCF_PASS, true, true, false, 0, false, -1, 1, 0},
        {"d unix-dgram n - n - 1 postlogd", "d", MASTERCF_UNIX_DGRAM, false, true, false, 0, false, 1, 1, 0},
        {"[2001:db8::1]:25 inet n - n - - smtpd -o a=1 -o b= -- -o c=3", "[2001:db8::1]:25",
         MASTERCF_INET, false, true, false, 0, false, -1, 4, 2},
        {"h:smtp inet n - n - - smtpd\t-o\t{ a = { nested } }", "h:smtp", MASTERCF_INET,
         false, true, false, 0, false, -1, 1, 1},
        {"x unix - - n - - { /usr/bin/prog with spaces } { arg one }", "x", MASTERCF_UNIX,
         true, true, false, 0, false, -1, 2, 0},
        {"x unix - - n - 2147483647 prog\r\n", "x", MASTERCF_UNIX, true, true, false, 0, false,
         2147483647, 1, 0},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        struct mastercf mc;
        diag_list_t diags;

        diag_init(&diags);
        mastercf_read_string(NULL, cases[i].text, strlen(cases[i].text), &mc, &diags);
        if (diags.count) {
            fprintf(stderr, "  case %zu\n", i);
            dump_diags(&diags);
        }
        CHECK_INTEQ(diags.count, 0);
        CHECK_INTEQ(mc.count, 1);
        if (mc.count == 1) {
            const struct mastercf_entry *e = &mc.entries[0];

            CHECK_STREQ(e->service, cases[i].service);
            CHECK_INTEQ(e->type, cases[i].type);
            CHECK(e->private_ == cases[i].private_);
            CHECK(e->unpriv == cases[i].unpriv);
            CHECK(e->chroot == cases[i].chroot);
            CHECK_INTEQ(e->wakeup, cases[i].wakeup);
            CHECK(e->wakeup_if_used == cases[i].if_used);
            CHECK_INTEQ(e->maxproc, cases[i].maxproc);
            CHECK_INTEQ(e->argc, cases[i].argc);
            CHECK_INTEQ(e->nopts, cases[i].nopts);
            CHECK(e->argv[e->argc] == NULL);
            CHECK_STREQ(e->file, "master.cf");
        }
        mastercf_free(&mc);
        diag_free(&diags);
    }
}

TEST(option_and_brace_values)
{
    static const char text[] =
        "[2001:db8::1]:25 inet n - n - - smtpd -o a=1 -o b= -- -o c=3\n"
        "h:smtp inet n - n - - smtpd -o { a = { nested } } -o {x=y  z}\n"
        "x unix - - n - - { /usr/bin/prog with spaces } { arg one }\n";
    struct mastercf mc;
    diag_list_t diags;

    diag_init(&diags);
    mastercf_read_string(FILE_NAME, text, strlen(text), &mc, &diags);
    CHECK_INTEQ(diags.count, 0);
    CHECK_INTEQ(mc.count, 3);
    if (mc.count == 3) {
        const struct mastercf_entry *e = &mc.entries[0];

        CHECK_STREQ(e->opts[0].name, "a");
        CHECK_STREQ(e->opts[0].value, "1");
        CHECK_STREQ(e->opts[1].name, "b");
        CHECK_STREQ(e->opts[1].value, "");
        CHECK_STREQ(e->argv[1], "--");
        CHECK_STREQ(e->argv[2], "-o");
        CHECK_STREQ(e->argv[3], "c=3");
        e = &mc.entries[1];
        CHECK_INTEQ(e->nopts, 2);
        CHECK_STREQ(e->opts[0].name, "a");
        CHECK_STREQ(e->opts[0].value, "{ nested }");
        CHECK_STREQ(e->opts[1].name, "x");
        CHECK_STREQ(e->opts[1].value, "y  z");
        e = &mc.entries[2];
        CHECK_STREQ(e->argv[0], "/usr/bin/prog with spaces");
        CHECK_STREQ(e->argv[1], "arg one");
        CHECK_INTEQ(e->line, 3);
    }
    mastercf_free(&mc);
    diag_free(&diags);
}

TEST(nul_and_long_lines)
{
    static const char with_nul[] = "a unix - - n - - x\0y\nb unix - - n - - x\n";
    struct mastercf mc;
    diag_list_t diags;
    str_t  *big = str_new(0);

    diag_init(&diags);
    mastercf_read_string(FILE_NAME, with_nul, sizeof(with_nul) - 1, &mc, &diags);
    CHECK_INTEQ(diags.count, 1);
    CHECK(diags.count == 1 && diags.items[0].line == 1 && strstr(diags.items[0].text, "NUL"));
    CHECK(mc.count == 1 && strcmp(mc.entries[0].service, "b") == 0);
    mastercf_free(&mc);
    diag_free(&diags);

    /* Many fields are fine; a logical line over 1 MiB is refused. */
    str_set_cstr(big, "a unix - - n - - prog");
    for (int i = 0; i < 20000; i++)
        str_append_cstr(big, " arg");
    str_append_cstr(big, "\nhuge unix - - n - - prog\n");
    for (int i = 0; i < 300000; i++)
        str_append_cstr(big, "  arg\n");
    str_append_cstr(big, "c unix - - n - - prog\n");
    diag_init(&diags);
    mastercf_read_string(FILE_NAME, str_cstr(big), str_len(big), &mc, &diags);
    CHECK_INTEQ(diags.count, 1);
    CHECK(diags.count == 1 && diags.items[0].line == 2
          && strstr(diags.items[0].text, "longer than 1048576 bytes"));
    CHECK_INTEQ(mc.count, 2);
    if (mc.count == 2) {
        CHECK_INTEQ(mc.entries[0].argc, 20001);
        CHECK_STREQ(mc.entries[1].service, "c");
        CHECK_INTEQ(mc.entries[1].line, 300003);
    }
    mastercf_free(&mc);
    diag_free(&diags);
    str_free(big);
}

TEST(read_file)
{
    char    dir[] = "/tmp/test_mastercf.XXXXXX";
    str_t  *path = str_new(0);
    struct mastercf mc;
    diag_list_t diags;
    int     fd;

    CHECK(mkdtemp(dir) != NULL);
    str_printf(path, "%s/master.cf", dir);
    fd = open(str_cstr(path), O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, default_master_cf, strlen(default_master_cf)) == (ssize_t) strlen(default_master_cf));
    close(fd);

    diag_init(&diags);
    CHECK_INTEQ(mastercf_read_file(str_cstr(path), &mc, &diags), 0);
    CHECK_INTEQ(mc.count, 27);
    CHECK(mc.count > 0 && strcmp(mc.entries[0].file, str_cstr(path)) == 0);
    CHECK(diags.count == 1 && strcmp(diags.items[0].file, str_cstr(path)) == 0);
    mastercf_free(&mc);
    diag_free(&diags);

    diag_init(&diags);
    CHECK_INTEQ(mastercf_read_file("/nonexistent/postern/master.cf", &mc, &diags), -1);
    CHECK(mc.count == 0 && mc.entries == NULL);
    CHECK(diag_errors(&diags) == 1 && strstr(diags.items[0].text, "/nonexistent/postern/master.cf"));
    mastercf_free(&mc);
    diag_free(&diags);

    CHECK(unlink(str_cstr(path)) == 0);
    CHECK(rmdir(dir) == 0);
    str_free(path);
}

TEST(type_names)
{
    CHECK_STREQ(mastercf_type_name(MASTERCF_INET), "inet");
    CHECK_STREQ(mastercf_type_name(MASTERCF_UNIX), "unix");
    CHECK_STREQ(mastercf_type_name(MASTERCF_UNIX_DGRAM), "unix-dgram");
    CHECK_STREQ(mastercf_type_name(MASTERCF_FIFO), "fifo");
    CHECK_STREQ(mastercf_type_name(MASTERCF_PASS), "pass");
}
