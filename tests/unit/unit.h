/*
 * unit.h - a minimal table-friendly unit test harness.
 *
 *     TEST(parses_empty_line) { CHECK(x == 1); CHECK_STREQ(a, "b"); }
 *
 * Each test file is one program; tests register themselves, run in file
 * order, and a failed CHECK marks its test failed but lets it go on. The last
 * line printed is "test_<file>: N passed, N failed"; the exit status is 1 if
 * any test failed. Include this header in exactly one .c file per program.
 */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef void (*unit_fn)(void);

static struct unit_case {
    const char *name;
    unit_fn fn;
} unit_cases[512];
static int unit_ncases;
static int unit_failed_checks;

static void
unit_register(const char *name, unit_fn fn)
{
    if (unit_ncases < (int) (sizeof(unit_cases) / sizeof(unit_cases[0])))
        unit_cases[unit_ncases++] = (struct unit_case) {name, fn};
}

#define TEST(name) \
    static void name(void); \
    __attribute__((constructor)) static void unit_reg_##name(void) { unit_register(#name, name); } \
    static void name(void)

#define CHECK(cond) \
    do { if (!(cond)) { unit_failed_checks++; \
        fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_STREQ(a, b) \
    do { const char *unit_a = (a), *unit_b = (b); \
        if (unit_a == NULL || unit_b == NULL || strcmp(unit_a, unit_b) != 0) { unit_failed_checks++; \
            fprintf(stderr, "  %s:%d: CHECK_STREQ failed: %s == \"%s\", expected \"%s\"\n", \
                    __FILE__, __LINE__, #a, unit_a ? unit_a : "(null)", unit_b ? unit_b : "(null)"); } \
    } while (0)

#define CHECK_INTEQ(a, b) \
    do { long long unit_a = (long long) (a), unit_b = (long long) (b); \
        if (unit_a != unit_b) { unit_failed_checks++; \
            fprintf(stderr, "  %s:%d: CHECK_INTEQ failed: %s == %lld, expected %lld\n", \
                    __FILE__, __LINE__, #a, unit_a, unit_b); } } while (0)

/*
 * Test files: unit_write_file() writes len bytes to a new file "tN" in a
 * private directory made on first use (unit_dir, /tmp/unit_PROGRAM.*) and
 * returns its path (a static buffer, valid until the next call); unit_nfiles
 * counts the files, so a test can remove them and unit_dir at its end. A
 * failure to set up is fatal (exit 2): the test could not say anything.
 */
static char unit_dir[96];
static int unit_nfiles;

__attribute__((unused)) static const char *
unit_write_file(const char *content, size_t len)
{
    static char path[160];
    int     fd;

    if (unit_dir[0] == 0) {
        snprintf(unit_dir, sizeof(unit_dir), "/tmp/unit_%s.XXXXXX", log_program());
        if (mkdtemp(unit_dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
    }
    snprintf(path, sizeof(path), "%s/t%d", unit_dir, unit_nfiles++);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, content, len) != (ssize_t) len || close(fd) != 0) {
        perror(path);
        exit(2);
    }
    return path;
}

int
main(int argc, char **argv)
{
    int     passed = 0, failed = 0;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

    log_init(prog);
    log_set_stderr(argc > 1 && strcmp(argv[1], "-v") == 0, false);
    for (int i = 0; i < unit_ncases; i++) {
        int     before = unit_failed_checks;

        unit_cases[i].fn();
        if (unit_failed_checks == before) {
            passed++;
            printf("ok   %s\n", unit_cases[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", unit_cases[i].name);
        }
    }
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}

#endif
