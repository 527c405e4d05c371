/*
 * diag.c - configuration diagnostics; see diag.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "diag.h"
#include "log.h"
#include "mem.h"
#include "str.h"

void
diag_init(diag_list_t *dl)
{
    dl->items = NULL;
    dl->count = dl->cap = 0;
}

void
diag_free(diag_list_t *dl)
{
    for (size_t i = 0; i < dl->count; i++) {
        mem_free(dl->items[i].file);
        mem_free(dl->items[i].text);
    }
    mem_free(dl->items);
    diag_init(dl);
}

void
diag_add(diag_list_t *dl, enum diag_severity sev, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    str_t  *text = str_new(80);

    va_start(ap, fmt);
    str_append_vprintf(text, fmt, ap);
    va_end(ap);
    dl->items = mem_grow_array(dl->items, &dl->cap, dl->count + 1, sizeof(*dl->items));
    dl->items[dl->count++] = (struct diag) {
        .severity = sev,
        .file = file ? mem_strdup(file) : NULL,
        .line = line,
        .text = str_steal(text),
    };
}

static size_t
count_sev(const diag_list_t *dl, enum diag_severity sev)
{
    size_t  n = 0;

    for (size_t i = 0; i < dl->count; i++)
        n += dl->items[i].severity == sev;
    return n;
}

size_t
diag_errors(const diag_list_t *dl)
{
    return count_sev(dl, DIAG_ERROR);
}

size_t
diag_warnings(const diag_list_t *dl)
{
    return count_sev(dl, DIAG_WARNING);
}

void
diag_format(const struct diag *d, char *buf, size_t size)
{
    if (d->file && d->line > 0)
        snprintf(buf, size, "%s, line %d: %s", d->file, d->line, d->text);
    else if (d->file)
        snprintf(buf, size, "%s: %s", d->file, d->text);
    else
        snprintf(buf, size, "%s", d->text);
}

void
diag_log(const diag_list_t *dl)
{
    char    buf[2048];

    for (size_t i = 0; i < dl->count; i++) {
        diag_format(&dl->items[i], buf, sizeof(buf));
        if (dl->items[i].severity == DIAG_ERROR)
            log_error("%s", buf);
        else
            log_warn("%s", buf);
    }
}
