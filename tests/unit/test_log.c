/*
 * test_log.c - unit tests for log.c and diag.c: line format, severities,
 * control characters, diagnostics.
 */
#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <unistd.h>

#include "diag.h"
#include "log.h"
#include "str.h"
#include "unit.h"

static void
read_file(const char *path, str_t *out)
{
    char    buf[4096];
    int     fd = open(path, O_RDONLY);
    ssize_t n;

    str_reset(out);
    if (fd < 0)
        return;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        str_append(out, buf, (size_t) n);
    close(fd);
}

TEST(postfix_style_lines_to_file)
{
    char    dir[] = "/tmp/test_log.XXXXXX";
    str_t  *path = str_new(0), *text = str_new(0);
    regex_t rx;

    CHECK(mkdtemp(dir) != NULL);
    str_printf(path, "%s/maillog", dir);
    log_init("/usr/libexec/postern/smtpd");
    log_configure("postern", str_cstr(path), "mx.example.com");
    log_info("connect from %s", "localhost[127.0.0.1]");
    log_warn("disk %s", "full");
    log_error("bad\ttab\nnewline");
    read_file(str_cstr(path), text);
    CHECK(regcomp(&rx, "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} mx postern/smtpd\\[[0-9]+\\]: "
                  "connect from localhost\\[127\\.0\\.0\\.1\\]\n", REG_EXTENDED | REG_NEWLINE) == 0);
    CHECK(regexec(&rx, str_cstr(text), 0, NULL, 0) == 0);
    regfree(&rx);
    CHECK(strstr(str_cstr(text), "]: warning: disk full\n") != NULL);
    /* Control characters never reach the log verbatim. */
    CHECK(strstr(str_cstr(text), "]: error: bad?tab?newline\n") != NULL);
    CHECK(log_problem_count() >= 2);
    unlink(str_cstr(path));
    rmdir(dir);
    log_configure("postern", "/dev/null", "localhost");
    str_free(path);
    str_free(text);
}

TEST(diagnostics_count_and_format)
{
    diag_list_t dl;
    char    buf[256];

    diag_init(&dl);
    diag_add(&dl, DIAG_WARNING, "/etc/postern/main.cf", 3, "unknown parameter %s", "foo");
    diag_add(&dl, DIAG_ERROR, "/etc/postern/main.cf", 0, "cannot read");
    diag_add(&dl, DIAG_ERROR, NULL, 0, "plain");
    CHECK_INTEQ(diag_errors(&dl), 2);
    CHECK_INTEQ(diag_warnings(&dl), 1);
    diag_format(&dl.items[0], buf, sizeof(buf));
    CHECK_STREQ(buf, "/etc/postern/main.cf, line 3: unknown parameter foo");
    diag_format(&dl.items[1], buf, sizeof(buf));
    CHECK_STREQ(buf, "/etc/postern/main.cf: cannot read");
    diag_format(&dl.items[2], buf, sizeof(buf));
    CHECK_STREQ(buf, "plain");
    diag_free(&dl);
    CHECK_INTEQ(dl.count, 0);
}
