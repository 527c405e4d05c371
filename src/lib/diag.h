/*
 * diag.h - a list of configuration diagnostics (warnings and errors).
 *
 * Parsers and validators add to a diag_list_t instead of logging, so that
 * "postern check" can print every problem and "start" can refuse on errors.
 * A diagnostic names the file and line when there is one:
 *     /etc/postern/main.cf, line 12: bad time value "banana" for max_idle
 */
#ifndef POSTERN_DIAG_H
#define POSTERN_DIAG_H

#include <stddef.h>

enum diag_severity {
    DIAG_WARNING,
    DIAG_ERROR,
};

struct diag {
    enum diag_severity severity;
    char   *file;       /* may be NULL */
    int     line;       /* 0 when not tied to a line */
    char   *text;
};

typedef struct diag_list {
    struct diag *items;
    size_t  count;
    size_t  cap;
} diag_list_t;

void    diag_init(diag_list_t *dl);
void    diag_free(diag_list_t *dl);
void    diag_add(diag_list_t *dl, enum diag_severity sev, const char *file, int line,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
size_t  diag_errors(const diag_list_t *dl);
size_t  diag_warnings(const diag_list_t *dl);
/* Format one diagnostic as "file, line N: text" (without severity). */
void    diag_format(const struct diag *d, char *buf, size_t size);
/* Log every diagnostic with log_warn()/log_error(). */
void    diag_log(const diag_list_t *dl);

#endif
