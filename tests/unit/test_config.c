/*
 * test_config.c - unit tests for config.c: main.cf syntax, the logical line
 * reader, expansion (every form, loops, depth and size limits), typed
 * access (including the fatal paths, in a child process), precedence,
 * validation and config_edit_file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "mem.h"
#include "params.h"
#include "str.h"
#include "unit.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_NAME "/x/main.cf"

/* A config read from text; diags are returned through *diags. */
static config_t *
load(const char *text, diag_list_t *diags)
{
    config_t *cfg = config_new();

    diag_init(diags);
    CHECK_INTEQ(config_read_string(cfg, FILE_NAME, text, strlen(text), diags), 0);
    return cfg;
}

/* True when some diagnostic of severity sev is on line "line" and contains "text". */
static bool
has_diag(const diag_list_t *dl, enum diag_severity sev, int line, const char *text)
{
    for (size_t i = 0; i < dl->count; i++) {
        const struct diag *d = &dl->items[i];

        if (d->severity == sev && d->line == line && strstr(d->text, text) != NULL)
            return true;
    }
    return false;
}

static void
dump_diags(const diag_list_t *dl)
{
    char    buf[512];

    for (size_t i = 0; i < dl->count; i++) {
        diag_format(&dl->items[i], buf, sizeof(buf));
        fprintf(stderr, "    diag: %s: %s\n", dl->items[i].severity == DIAG_ERROR ? "error" : "warning", buf);
    }
}

TEST(parse_syntax_table)
{
    static const struct {
        const char *text;
        const char *name;           /* checked parameter, or NULL */
        const char *value;          /* its raw value (NULL: unset) */
        int     err_line;           /* line of the one expected error, 0 = none */
        const char *err_text;
    } cases[] = {
        {"a = b\n", "a", "b", 0, NULL},
        {"a=b", "a", "b", 0, NULL},
        {"a =   b c   \n", "a", "b c", 0, NULL},
        {"a\t=\tb\t\n", "a", "b", 0, NULL},
        {"a =\n", "a", "", 0, NULL},
        {"a = b=c == d\n", "a", "b=c == d", 0, NULL},
        {"a = b\r\n", "a", "b", 0, NULL},
        {"a = one,\n  two,\n\tthree\n", "a", "one, two, three", 0, NULL},
        {"a =\n    one\n    two   \n", "a", "one two", 0, NULL},
        {"# comment\n   # indented comment\n\na = 1\n", "a", "1", 0, NULL},
        {"a = x # not a comment\n", "a", "x # not a comment", 0, NULL},
        {"a = x\n  # note\n  y\n", "a", "x y", 0, NULL},
        {"a = x\n  y\n  # trailing note\nb = 2\n", "a", "x y", 0, NULL},
        {"a = 1\na = 2\n", "a", "2", 0, NULL},
        {"a = 1\nb = 2\na = 3\n", "a", "3", 0, NULL},
        {"Name_2 = v\n", "Name_2", "v", 0, NULL},
        /* Errors: file and line named; the rest of the file still counts. */
        {"  a = b\n", "a", NULL, 1,
         "line starts with white space but does not continue a logical line"},
        {"# c\n\ta = b\nc = d\n", "c", "d", 2, "does not continue"},
        {"a = x\n\n  y\n", "a", "x", 3, "does not continue"},
        {"a = x\n# comment in column 1\n  y\n", "a", "x", 3, "does not continue"},
        {"foo bar\n", "foo", NULL, 1, "missing \"=\" after parameter name \"foo\""},
        {"x = 1\nfoo\n", "x", "1", 2, "missing \"=\""},
        {"fo-o = x\n", NULL, NULL, 1, "bad parameter name \"fo-o\""},
        {"$a = x\n", NULL, NULL, 1, "bad parameter name \"$a\""},
        {"= x\n", NULL, NULL, 1, "missing parameter name"},
        {"a = 1\nb = 2\nbad line\n  continued\nc = 3\n", "c", "3", 3, "missing \"=\""},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        diag_list_t diags;
        config_t *cfg = load(cases[i].text, &diags);
        size_t  want_errors = cases[i].err_line ? 1 : 0;

        if (cases[i].name) {
            const char *raw = config_get_raw(cfg, cases[i].name);

            if (cases[i].value == NULL)
                CHECK(raw == NULL);
            else
                CHECK_STREQ(raw, cases[i].value);
        }
        if (diag_errors(&diags) != want_errors
            || (want_errors && !has_diag(&diags, DIAG_ERROR, cases[i].err_line, cases[i].err_text))) {
            fprintf(stderr, "  case %zu:\n", i);
            dump_diags(&diags);
            CHECK(!"expected diagnostics");
        }
        for (size_t j = 0; j < diags.count; j++)
            CHECK_STREQ(diags.items[j].file, FILE_NAME);
        diag_free(&diags);
        config_free(cfg);
    }
}

TEST(nul_byte_and_entries)
{
    static const char text[] = "a = b\0c\nd = e\n";
    config_t *cfg = config_new();
    diag_list_t diags;
    const struct config_entry *e;

    diag_init(&diags);
    config_read_string(cfg, FILE_NAME, text, sizeof(text) - 1, &diags);
    CHECK(has_diag(&diags, DIAG_ERROR, 1, "NUL"));
    CHECK(config_get_raw(cfg, "a") == NULL);
    CHECK_STREQ(config_get_raw(cfg, "d"), "e");
    diag_free(&diags);

    /* Entries: main.cf in file order (a later assignment keeps the slot), then overrides. */
    config_free(cfg);
    cfg = load("x = 1\ny = 2\nx = 3\n", &diags);
    config_set(cfg, "z", "9");
    config_set(cfg, "x", "override");
    CHECK_INTEQ(config_count(cfg), 4);
    e = config_entry_at(cfg, 0);
    CHECK_STREQ(e->name, "x");
    CHECK_STREQ(e->value, "3");
    CHECK_INTEQ(e->line, 3);
    CHECK_STREQ(e->file, FILE_NAME);
    CHECK_STREQ(config_entry_at(cfg, 1)->name, "y");
    e = config_entry_at(cfg, 2);
    CHECK_STREQ(e->name, "z");
    CHECK(e->file == NULL);
    CHECK_STREQ(config_entry_at(cfg, 3)->value, "override");
    CHECK(config_entry_at(cfg, 4) == NULL);
    CHECK_STREQ(config_get_raw(cfg, "x"), "override");
    CHECK(config_get_raw(cfg, "nothing") == NULL);
    diag_free(&diags);
    config_free(cfg);
}

TEST(logical_line_reader)
{
    static const char text[] = "# head\n\na = 1\n  2\n\t# mid\n  3\n  # tail\nb = x\n";
    struct config_lines lr;
    str_t  *out = str_new(0);

    config_lines_init(&lr, text, sizeof(text) - 1, 0);
    CHECK_INTEQ(config_lines_next(&lr, out), CONFIG_LINES_OK);
    CHECK_STREQ(str_cstr(out), "a = 1 2 3");
    CHECK_INTEQ(lr.first, 3);
    CHECK_INTEQ(lr.start, strlen("# head\n\n"));
    CHECK_INTEQ(lr.end, strlen("# head\n\na = 1\n  2\n\t# mid\n  3\n"));
    CHECK_INTEQ(config_lines_next(&lr, out), CONFIG_LINES_OK);
    CHECK_STREQ(str_cstr(out), "b = x");
    CHECK_INTEQ(lr.first, 8);
    CHECK_INTEQ(config_lines_next(&lr, out), CONFIG_LINES_END);

    /* A logical line longer than max is refused, and the reader goes on. */
    config_lines_init(&lr, "a = 12345\n  678\nb = 1", strlen("a = 12345\n  678\nb = 1"), 10);
    CHECK_INTEQ(config_lines_next(&lr, out), CONFIG_LINES_BAD);
    CHECK(strstr(str_cstr(out), "longer than 10") != NULL);
    CHECK_INTEQ(config_lines_next(&lr, out), CONFIG_LINES_OK);
    CHECK_STREQ(str_cstr(out), "b = 1");
    CHECK_INTEQ(lr.first, 3);
    str_free(out);
}

static const char expand_conf[] =
    "a = A\n"
    "b = $a-x\n"
    "empty =\n"
    "c = ${a}${b}$(a)\n"
    "d = ${a?yes}\n"
    "e = ${empty?yes}\n"
    "f = ${empty:no}\n"
    "g = ${a:no}\n"
    "h = ${a?{with space}}\n"
    "i = ${empty:{x $a y}}\n"
    "j = $${a}\n"
    "k = ${a?{t}:{f}}\n"
    "l = ${empty?{t}:{f}}\n"
    "m = [$undefined_thing]\n"
    "n = ${a?x{y}z}\n"
    "o = $(a?par)$(empty:en)\n"
    "p = ${a?$b}\n"
    "q = ${a? {spaced} }\n"
    "r = ${a?{${b?{$c}}}}\n"
    "bad = ${a\n"
    "myhostname = mail.example.org\n";

TEST(expansion_forms)
{
    static const struct {
        const char *text;
        const char *want;           /* NULL: must fail */
        const char *err;            /* substring of the error */
    } cases[] = {
        {"$a", "A", NULL}, {"${a}", "A", NULL}, {"$(a)", "A", NULL}, {"$b", "A-x", NULL},
        {"$c", "AA-xA", NULL}, {"$d", "yes", NULL}, {"$e", "", NULL}, {"$f", "no", NULL},
        {"$g", "", NULL}, {"$h", "with space", NULL}, {"$i", "x A y", NULL}, {"$j", "${a}", NULL},
        {"$k", "t", NULL}, {"$l", "f", NULL}, {"$m", "[]", NULL}, {"$n", "x{y}z", NULL},
        {"$o", "paren", NULL}, {"$p", "A-x", NULL}, {"$q", "spaced", NULL}, {"$r", "AA-xA", NULL},
        {"$$", "$", NULL}, {"a$$b", "a$b", NULL}, {"plain text", "plain text", NULL}, {"", "", NULL},
        {"$a.$a", "A.A", NULL}, {"$a_b", "", NULL}, {"${a}_b", "A_b", NULL},
        /* Defaults from the table are expanded too. */
        {"$smtpd_banner", "mail.example.org ESMTP Postern", NULL},
        {"$mydomain", "example.org", NULL},
        {"$local_transport", "local:mail.example.org", NULL},
        /* Syntax errors. */
        {"$", NULL, "\"$\" at the end"},
        {"x$", NULL, "\"$\" at the end"},
        {"${", NULL, "missing or bad parameter name after \"${\""},
        {"${}", NULL, "missing or bad parameter name"},
        {"$(-)", NULL, "missing or bad parameter name after \"$(\""},
        {"${a", NULL, "missing \"}\" after \"${a\""},
        {"$(a", NULL, "missing \")\""},
        {"${a!}", NULL, "need \"}\", \"?\" or \":\" after \"${a\""},
        {"$-", NULL, "must be followed by a parameter name"},
        {"${a?x", NULL, "missing \"}\""},
        {"${a?{x} junk}", NULL, "need \"}\" after \"{...}\""},
        {"${a?{x}:y}", NULL, "need \"{text}\" after \":\""},
        {"${a?{x}", NULL, "need \"}\" after"},
        {"${a?{x", NULL, "missing \"}\""},
        {"$bad", NULL, "parameter bad: missing \"}\""},
        /* An error in a text that is not chosen is still a syntax error. */
        {"${empty?${}", NULL, "missing or bad parameter name"},
    };
    diag_list_t diags;
    config_t *cfg = load(expand_conf, &diags);
    str_t  *out = str_new(0), *err = str_new(0);

    CHECK_INTEQ(diags.count, 0);
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        bool    ok = config_expand(cfg, cases[i].text, out, err);

        if (ok != (cases[i].want != NULL))
            fprintf(stderr, "  case \"%s\": %s\n", cases[i].text, ok ? str_cstr(out) : str_cstr(err));
        CHECK(ok == (cases[i].want != NULL));
        if (ok && cases[i].want)
            CHECK_STREQ(str_cstr(out), cases[i].want);
        if (!ok && cases[i].err && strstr(str_cstr(err), cases[i].err) == NULL) {
            fprintf(stderr, "  case \"%s\": error \"%s\", expected \"%s\"\n", cases[i].text,
                    str_cstr(err), cases[i].err);
            CHECK(!"error text");
        }
    }
    /* A text that is not chosen is not evaluated (no loop reported). */
    config_set(cfg, "self", "$self");
    CHECK(config_expand(cfg, "${empty?$self}ok", out, err));
    CHECK_STREQ(str_cstr(out), "ok");
    CHECK(!config_expand(cfg, "${a?$self}", out, err));
    /* A NULL err is allowed. */
    CHECK(!config_expand(cfg, "$", out, NULL));
    str_free(out);
    str_free(err);
    diag_free(&diags);
    config_free(cfg);
}

TEST(expansion_loops)
{
    static const struct {
        const char *conf;
        const char *expand;
        const char *err;
    } cases[] = {
        {"a = $b\nb = $a\n", "$a", "parameter b: recursive expansion via $a (a -> b -> a)"},
        {"a = $b\nb = $a\n", "$b", "parameter a: recursive expansion via $b (b -> a -> b)"},
        {"x = $x\n", "$x", "parameter x: recursive expansion via $x (x -> x)"},
        {"x = ${x?y}\n", "$x", "recursive expansion via $x"},
        {"a = ${b:{$c}}\nb =\nc = pre $a\n", "$a", "recursive expansion via $a"},
        {"a = $b\nb = $c\nc = $b\n", "$a", "parameter c: recursive expansion via $b (b -> c -> b)"},
        /* Through a default: mydomain is computed from $myhostname. */
        {"myhostname = host.$mydomain\n", "$myhostname",
         "parameter mydomain: recursive expansion via $myhostname"},
        {"myorigin = $mydestination\nmyhostname = $myorigin\n", "$myhostname",
         "recursive expansion via $myhostname"},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        diag_list_t diags;
        config_t *cfg = load(cases[i].conf, &diags);
        str_t  *out = str_new(0), *err = str_new(0);

        CHECK(!config_expand(cfg, cases[i].expand, out, err));
        if (strstr(str_cstr(err), cases[i].err) == NULL) {
            fprintf(stderr, "  case %zu: \"%s\", expected \"%s\"\n", i, str_cstr(err), cases[i].err);
            CHECK(!"loop error text");
        }
        /* The config stays usable after a failure. */
        CHECK(config_expand(cfg, "$$ok", out, err));
        CHECK_STREQ(str_cstr(out), "$ok");
        str_free(out);
        str_free(err);
        diag_free(&diags);
        config_free(cfg);
    }
}

/* p0 = $p1, p1 = $p2, ..., p<n-1> = end */
static config_t *
chain_config(int n)
{
    config_t *cfg = config_new();
    str_t  *name = str_new(0), *value = str_new(0);

    for (int i = 0; i < n; i++) {
        str_printf(name, "p%d", i);
        if (i + 1 < n)
            str_printf(value, "$p%d", i + 1);
        else
            str_set_cstr(value, "end");
        config_set(cfg, str_cstr(name), str_cstr(value));
    }
    str_free(name);
    str_free(value);
    return cfg;
}

TEST(expansion_depth_and_size_limits)
{
    str_t  *out = str_new(0), *err = str_new(0), *text = str_new(0);
    config_t *cfg = chain_config(100);

    CHECK(config_expand(cfg, "$p0", out, err));
    CHECK_STREQ(str_cstr(out), "end");
    config_free(cfg);

    cfg = chain_config(150);
    CHECK(!config_expand(cfg, "$p0", out, err));
    CHECK(strstr(str_cstr(err), "nested deeper than 100 levels") != NULL);
    /* Once the deep end is known (memoised), the same value is fine from the top. */
    config_free(cfg);

    /* Nested conditional text counts as nesting too. */
    cfg = config_new();
    config_set(cfg, "a", "x");
    for (int i = 0; i < 150; i++)
        str_append_cstr(text, "${a?");
    str_putc(text, 'y');
    for (int i = 0; i < 150; i++)
        str_putc(text, '}');
    CHECK(!config_expand(cfg, str_cstr(text), out, err));
    CHECK(strstr(str_cstr(err), "nested deeper") != NULL);
    str_reset(text);
    for (int i = 0; i < 50; i++)
        str_append_cstr(text, "${a?{");
    str_putc(text, 'y');
    for (int i = 0; i < 50; i++)
        str_append_cstr(text, "}}");
    CHECK(config_expand(cfg, str_cstr(text), out, err));
    CHECK_STREQ(str_cstr(out), "y");
    config_free(cfg);

    /* Values that double at each step: refused at 1 MiB, quickly. */
    cfg = config_new();
    config_set(cfg, "d0", "0123456789abcdef");
    for (int i = 1; i < 64; i++) {
        str_t  *n = str_new(0), *v = str_new(0);

        str_printf(n, "d%d", i);
        str_printf(v, "$d%d$d%d", i - 1, i - 1);
        config_set(cfg, str_cstr(n), str_cstr(v));
        str_free(n);
        str_free(v);
    }
    CHECK(config_expand(cfg, "$d10", out, err));
    CHECK_INTEQ(str_len(out), 16 << 10);
    CHECK(!config_expand(cfg, "$d63", out, err));
    CHECK(strstr(str_cstr(err), "longer than 1048576 bytes") != NULL);
    config_free(cfg);

    /* Doubling references that expand to nothing: linear thanks to memoisation. */
    cfg = config_new();
    config_set(cfg, "e0", "");
    for (int i = 1; i < 90; i++) {
        str_t  *n = str_new(0), *v = str_new(0);

        str_printf(n, "e%d", i);
        str_printf(v, "$e%d${e%d}${e%d?x}", i - 1, i - 1, i - 1);
        config_set(cfg, str_cstr(n), str_cstr(v));
        str_free(n);
        str_free(v);
    }
    CHECK(config_expand(cfg, "$e89", out, err));
    CHECK_STREQ(str_cstr(out), "");
    config_free(cfg);
    str_free(out);
    str_free(err);
    str_free(text);
}

TEST(typed_access_and_precedence)
{
    diag_list_t diags;
    config_t *cfg = load("max_idle = 5m\n"
                         "max_use = 7\n"
                         "disable_vrfy_command = yes\n"
                         "maximal_queue_lifetime = 2\n"
                         "message_size_limit = 0\n"
                         "mail_name = Example\n"
                         "myhostname = mx.example.net\n"
                         "mydestination = $myhostname, ${mail_name?{named}}\n", &diags);
    const char *banner;

    CHECK_INTEQ(diags.count, 0);
    CHECK_INTEQ(config_time(cfg, "max_idle"), 300);
    CHECK_INTEQ(config_int(cfg, "max_use"), 7);
    CHECK(config_bool(cfg, "disable_vrfy_command"));
    CHECK_INTEQ(config_time(cfg, "maximal_queue_lifetime"), 2 * 86400);
    CHECK_INTEQ(config_int(cfg, "message_size_limit"), 0);
    /* The memoised number follows a change, of the value or of what it expands. */
    CHECK_INTEQ(config_int(cfg, "max_use"), 7);
    config_set(cfg, "max_use", "9");
    CHECK_INTEQ(config_int(cfg, "max_use"), 9);
    config_set(cfg, "max_use", "$default_process_limit");
    CHECK_INTEQ(config_int(cfg, "max_use"), 100);
    config_set(cfg, "default_process_limit", "3");
    CHECK_INTEQ(config_int(cfg, "max_use"), 3);
    config_set(cfg, "default_process_limit", "100");
    config_set(cfg, "max_use", "7");
    CHECK_INTEQ(config_int(cfg, "max_use"), 7);
    /* Defaults. */
    CHECK_INTEQ(config_int(cfg, "default_process_limit"), 100);
    CHECK_INTEQ(config_time(cfg, "ipc_timeout"), 3600);
    CHECK_INTEQ(config_time(cfg, "delay_warning_time"), 0);
    CHECK(config_bool(cfg, "smtpd_forbid_bare_newline"));
    CHECK(!config_bool(cfg, "swap_bangpath"));
    CHECK_STREQ(config_str(cfg, "queue_directory"), "/var/spool/postern");
    CHECK_STREQ(config_str(cfg, "mydestination"), "mx.example.net, named");
    CHECK_STREQ(config_str(cfg, "mydomain"), "example.net");
    CHECK_STREQ(config_str(cfg, "myorigin"), "mx.example.net");
    banner = config_str(cfg, "smtpd_banner");
    CHECK_STREQ(banner, "mx.example.net ESMTP Example");
    /* Cached: the same pointer until something changes. */
    CHECK(config_str(cfg, "smtpd_banner") == banner);
    /* Override > main.cf > default; a change invalidates the cache. */
    config_set(cfg, "mail_name", "Override");
    CHECK_STREQ(config_str(cfg, "smtpd_banner"), "mx.example.net ESMTP Override");
    config_set(cfg, "max_use", "9");
    CHECK_INTEQ(config_int(cfg, "max_use"), 9);
    config_set(cfg, "max_use", "11");
    CHECK_INTEQ(config_int(cfg, "max_use"), 11);
    CHECK_STREQ(config_get_raw(cfg, "max_use"), "11");
    /* Reading more main.cf text also invalidates; overrides still win. */
    {
        static const char more[] = "mail_name = Second\nmyhostname = other.example\n";

        config_read_string(cfg, "second.cf", more, strlen(more), &diags);
    }
    CHECK_STREQ(config_str(cfg, "myorigin"), "other.example");
    CHECK_STREQ(config_str(cfg, "mail_name"), "Override");
    /* A name outside the table can still be read raw and expanded. */
    config_set(cfg, "helper_list", "a, $myorigin");
    CHECK_STREQ(config_get_raw(cfg, "helper_list"), "a, $myorigin");
    diag_free(&diags);
    config_free(cfg);
}

/*
 * Run fn in a child with stderr captured; return its wait status and put
 * what it wrote in out.
 */
static int
run_child(void (*fn)(void), str_t *out)
{
    int     fds[2], status = 0;
    pid_t   pid;
    char    buf[512];
    ssize_t n;

    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0 || (pid = fork()) < 0)
        abort();
    if (pid == 0) {
        struct rlimit rl = {0, 0};

        (void) setrlimit(RLIMIT_CORE, &rl);
        dup2(fds[1], 2);
        close(fds[0]);
        log_set_stderr(true, false);
        fn();
        _exit(0);
    }
    close(fds[1]);
    str_reset(out);
    while ((n = read(fds[0], buf, sizeof(buf))) > 0)
        str_append(out, buf, (size_t) n);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* Children keep their config reachable from here: log_fatal exits without freeing. */
static config_t *child_cfg;

static void
child_bad_time(void)
{
    config_t *cfg = child_cfg = config_new();

    config_set(cfg, "max_idle", "banana");
    (void) config_time(cfg, "max_idle");
}

static void
child_loop(void)
{
    config_t *cfg = child_cfg = config_new();

    config_set(cfg, "myhostname", "$myorigin");
    config_set(cfg, "myorigin", "$myhostname");
    (void) config_str(cfg, "smtpd_banner");
}

static void
child_unknown_name(void)
{
    config_t *cfg = child_cfg = config_new();

    (void) config_str(cfg, "no_such_parameter_xyz");
}

static void
child_wrong_type(void)
{
    config_t *cfg = child_cfg = config_new();

    (void) config_int(cfg, "max_idle");
}

TEST(getters_fail_loudly)
{
    str_t  *out = str_new(0);
    int     status;

    status = run_child(child_bad_time, out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK(strstr(str_cstr(out), "bad time value \"banana\" for parameter max_idle") != NULL);

    status = run_child(child_loop, out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK(strstr(str_cstr(out), "recursive expansion") != NULL);

    status = run_child(child_unknown_name, out);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(str_cstr(out), "no_such_parameter_xyz") != NULL);

    status = run_child(child_wrong_type, out);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    str_free(out);
}

TEST(validate_table)
{
    static const char *const services[] = {"smtp", "relay", NULL};
    static const struct {
        const char *conf;
        bool    with_services;
        size_t  errors;
        size_t  warnings;
        int     line;               /* line of the first checked diagnostic */
        enum diag_severity sev;
        const char *text;
    } cases[] = {
        {"max_idle = 100s\nmyhostname = a.example\n", true, 0, 0, 0, 0, NULL},
        {"# c\nmax_idle = banana\n", true, 1, 0, 2, DIAG_ERROR,
         "bad time value \"banana\" for parameter max_idle"},
        {"max_use = 0\n", true, 1, 0, 1, DIAG_ERROR, "value 0 for parameter max_use is below the minimum 1"},
        {"x = 1\nno_such_parameter_xyz = 1\n", true, 0, 2, 2, DIAG_WARNING,
         "unknown parameter no_such_parameter_xyz"},
        /* Referenced helpers are not unknown. */
        {"my_list = a b\nmynetworks = $my_list\n", true, 0, 0, 0, 0, NULL},
        {"my_list = a b\nrelayhost = ${my_list?{x}}\n", true, 0, 0, 0, 0, NULL},
        {"my_list = a b\nrelayhost = $(my_list)\n", true, 0, 0, 0, 0, NULL},
        /* Per-service names: known with the services, checked, named as written. */
        {"smtp_destination_concurrency_limit = 5\n", true, 0, 0, 0, 0, NULL},
        {"smtp_destination_concurrency_limit = 5\n", false, 0, 1, 1, DIAG_WARNING,
         "unknown parameter smtp_destination_concurrency_limit"},
        {"relay_time_limit = forever\n", true, 1, 0, 1, DIAG_ERROR,
         "bad time value \"forever\" for parameter relay_time_limit"},
        /* Checked after expansion. */
        {"max_use = $my_number\nmy_number = 12\n", true, 0, 0, 0, 0, NULL},
        {"max_use = $my_number\nmy_number = twelve\n", true, 1, 0, 1, DIAG_ERROR,
         "bad numerical value \"twelve\" for parameter max_use"},
        /* Loops: every parameter in the loop is an error at its own line. */
        {"a = $b\nb = $a\n", true, 2, 0, 2, DIAG_ERROR, "recursive expansion via $b"},
        {"myhostname = $mydomain\n", true, 1, 0, 1, DIAG_ERROR, "recursive expansion"},
        {"relayhost = ${oops\n", true, 1, 0, 1, DIAG_ERROR, "parameter relayhost: missing \"}\""},
        /* An error in a helper: reported where it is used and where it is set. */
        {"mail_name = $mail_name_helper\nmail_name_helper = ${\n", true, 2, 0, 2, DIAG_ERROR,
         "missing or bad parameter name"},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        diag_list_t diags;
        config_t *cfg = load(cases[i].conf, &diags);
        size_t  errors = config_validate(cfg, cases[i].with_services ? services : NULL, &diags);
        bool    ok = errors == cases[i].errors && diag_errors(&diags) == cases[i].errors
            && diag_warnings(&diags) == cases[i].warnings
            && (cases[i].text == NULL || has_diag(&diags, cases[i].sev, cases[i].line, cases[i].text));

        if (!ok) {
            fprintf(stderr, "  case %zu: %zu errors\n", i, errors);
            dump_diags(&diags);
        }
        CHECK(ok);
        for (size_t j = 0; j < diags.count; j++)
            CHECK(diags.items[j].file && strcmp(diags.items[j].file, FILE_NAME) == 0);
        diag_free(&diags);
        config_free(cfg);
    }
}

TEST(validate_overrides_and_defaults)
{
    diag_list_t diags;
    config_t *cfg = load("max_use = banana\n", &diags);

    /* An override hides the bad main.cf value; a bad override has no file. */
    config_set(cfg, "max_use", "3");
    CHECK_INTEQ(config_validate(cfg, NULL, &diags), 0);
    config_set(cfg, "max_idle", "0");
    CHECK_INTEQ(config_validate(cfg, NULL, &diags), 1);
    CHECK(has_diag(&diags, DIAG_ERROR, 0, "value 0s for parameter max_idle is below the minimum 1s"));
    diag_free(&diags);
    config_free(cfg);

    /* A loop through a default (myorigin's default is $myhostname), in an override. */
    cfg = config_new();
    diag_init(&diags);
    config_set(cfg, "myhostname", "$myorigin");
    CHECK(config_validate(cfg, NULL, &diags) >= 1);
    CHECK(has_diag(&diags, DIAG_ERROR, 0, "recursive expansion"));
    diag_free(&diags);
    config_free(cfg);
}

TEST(read_file_errors)
{
    config_t *cfg = config_new();
    diag_list_t diags;

    diag_init(&diags);
    CHECK_INTEQ(config_read_file(cfg, "/nonexistent/postern/main.cf", &diags), -1);
    CHECK_INTEQ(diag_errors(&diags), 1);
    CHECK(strstr(diags.items[0].text, "/nonexistent/postern/main.cf") != NULL);
    diag_free(&diags);
    config_free(cfg);
}

/* Write text to path. */
static void
write_file(const char *path, const char *text, mode_t mode)
{
    int     fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

static void
read_back(const char *path, str_t *out)
{
    str_t  *err = str_new(0);

    CHECK(config_read_text(path, 1 << 20, out, err));
    str_free(err);
}

TEST(edit_file)
{
    char    dir[] = "/tmp/test_config.XXXXXX";
    str_t  *path = str_new(0), *text = str_new(0), *err = str_new(0);
    struct stat sb;

    CHECK(mkdtemp(dir) != NULL);
    str_printf(path, "%s/main.cf", dir);
    write_file(str_cstr(path),
               "# Postern main.cf\n"
               "\n"
               "myhostname = old.example\n"
               "mynetworks = 127.0.0.0/8\n"
               "    10.0.0.0/8\n"
               "  # note inside\n"
               "    192.168.0.0/16\n"
               "  # note after\n"
               "relayhost =   [gw]:25  \n"
               "\n"
               "# trailing comment without newline", 0640);
    {
        const char *const assign[] = {
            "mynetworks = 127.0.0.0/8 [::1]/128",
            "  max_idle=200s  ",
            "relayhost =",
            "myhostname = mid.example",
            "myhostname = new.example",
        };

        CHECK(config_edit_file(str_cstr(path), assign, N_ELEMENTS(assign), err));
    }
    read_back(str_cstr(path), text);
    CHECK_STREQ(str_cstr(text),
                "# Postern main.cf\n"
                "\n"
                "myhostname = new.example\n"
                "mynetworks = 127.0.0.0/8 [::1]/128\n"
                "  # note after\n"
                "relayhost =\n"
                "\n"
                "# trailing comment without newline\n"
                "max_idle = 200s\n");
    CHECK(stat(str_cstr(path), &sb) == 0 && (sb.st_mode & 07777) == 0640);

    /* The result parses back to the new values. */
    {
        diag_list_t diags;
        config_t *cfg = load(str_cstr(text), &diags);

        CHECK_INTEQ(diags.count, 0);
        CHECK_STREQ(config_get_raw(cfg, "mynetworks"), "127.0.0.0/8 [::1]/128");
        CHECK_INTEQ(config_time(cfg, "max_idle"), 200);
        diag_free(&diags);
        config_free(cfg);
    }

    /* A duplicate setting: the first is replaced, the later one removed. */
    write_file(str_cstr(path), "a = 1\nb = 2\na = 3\n  continued\nc = 4\n", 0600);
    {
        const char *const assign[] = {"a = 9"};

        CHECK(config_edit_file(str_cstr(path), assign, 1, err));
    }
    read_back(str_cstr(path), text);
    CHECK_STREQ(str_cstr(text), "a = 9\nb = 2\nc = 4\n");
    CHECK(stat(str_cstr(path), &sb) == 0 && (sb.st_mode & 07777) == 0600);

    /* Bad assignments change nothing. */
    {
        const char *const bad1[] = {"a = 1", "no equals sign"};
        const char *const bad2[] = {"bad-name = 1"};
        const char *const bad3[] = {"a = x\ny = z"};

        CHECK(!config_edit_file(str_cstr(path), bad1, 2, err));
        CHECK(strstr(str_cstr(err), "no equals sign") != NULL);
        CHECK(!config_edit_file(str_cstr(path), bad2, 1, err));
        CHECK(!config_edit_file(str_cstr(path), bad3, 1, err));
        read_back(str_cstr(path), text);
        CHECK_STREQ(str_cstr(text), "a = 9\nb = 2\nc = 4\n");
    }

    /* A file that does not exist is created. */
    str_printf(path, "%s/new.cf", dir);
    {
        const char *const assign[] = {"x = 1", "y = two words"};

        CHECK(config_edit_file(str_cstr(path), assign, 2, err));
    }
    read_back(str_cstr(path), text);
    CHECK_STREQ(str_cstr(text), "x = 1\ny = two words\n");
    CHECK(stat(str_cstr(path), &sb) == 0 && (sb.st_mode & 07777) == 0644);

    /* A symbolic link is followed, not replaced. */
    {
        str_t  *link = str_new(0);
        const char *const assign[] = {"x = 2"};

        str_printf(link, "%s/link.cf", dir);
        CHECK(symlink(str_cstr(path), str_cstr(link)) == 0);
        CHECK(config_edit_file(str_cstr(link), assign, 1, err));
        CHECK(lstat(str_cstr(link), &sb) == 0 && S_ISLNK(sb.st_mode));
        read_back(str_cstr(path), text);
        CHECK_STREQ(str_cstr(text), "x = 2\ny = two words\n");
        CHECK(unlink(str_cstr(link)) == 0);
        str_free(link);
    }

    /* A directory that does not exist: an error naming the path. */
    {
        const char *const assign[] = {"x = 1"};

        CHECK(!config_edit_file("/nonexistent/postern/main.cf", assign, 1, err));
        CHECK(strstr(str_cstr(err), "/nonexistent/postern/main.cf") != NULL);
    }

    /* Clean up: only our files, no temporary file left behind. */
    CHECK(unlink(str_cstr(path)) == 0);
    str_printf(path, "%s/main.cf", dir);
    CHECK(unlink(str_cstr(path)) == 0);
    CHECK(rmdir(dir) == 0);
    str_free(path);
    str_free(text);
    str_free(err);
}
