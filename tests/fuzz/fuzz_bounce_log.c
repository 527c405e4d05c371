/*
 * fuzz_bounce_log.c - libFuzzer harness for the bounce/defer/trace log reader.
 *
 * The input is parsed as a log. Checks: every entry has a non-empty
 * recipient; every string field is free of newlines; numbers are in range;
 * a block is either kept or counted as skipped, and a skipped block leaves
 * a problem text. Each kept entry, formatted again by the writer and
 * parsed, gives the same entry back (the writer and the reader agree). The
 * newest-per-recipient view keeps no more entries than it got, and finds
 * every recipient again. Everything is freed: the harness runs under
 * LeakSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_log.h"
#include "log.h"
#include "str.h"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, bool required)
{
    if (s == NULL) {
        if (required)
            abort();
        return;
    }
    if (required && *s == 0)
        abort();
    if (strchr(s, '\n') != NULL)
        abort();
}

static bool
same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bounce_log log = {0}, again;
    str_t  *text = str_new(256);
    size_t  before;

    bounce_log_parse(&log, (const char *) data, size);
    if (log.skipped > 0 && (log.problem == NULL || str_len(log.problem) == 0))
        abort();
    for (size_t i = 0; i < log.count; i++) {
        const struct bounce_log_entry *e = &log.entries[i];

        check_str(e->recipient, true);
        check_str(e->orig_rcpt, false);
        check_str(e->dsn_orcpt, false);
        check_str(e->status, false);
        check_str(e->action, false);
        check_str(e->reason, false);
        check_str(e->relay, false);
        if (e->dsn_notify < 0 || e->dsn_notify > 15 || e->offset < -1 || e->time < -1)
            abort();
        str_reset(text);
        bounce_log_format(text, e);
        memset(&again, 0, sizeof(again));
        bounce_log_parse(&again, str_cstr(text), str_len(text));
        if (again.count != 1 || again.skipped != 0)
            abort();
        if (!same(again.entries[0].recipient, e->recipient)
            || !same(again.entries[0].orig_rcpt, e->orig_rcpt)
            || !same(again.entries[0].dsn_orcpt, e->dsn_orcpt)
            || !same(again.entries[0].status, e->status)
            || !same(again.entries[0].action, e->action)
            || !same(again.entries[0].reason, e->reason)
            || !same(again.entries[0].relay, e->relay)
            || again.entries[0].dsn_notify != e->dsn_notify
            || again.entries[0].offset != e->offset || again.entries[0].time != e->time)
            abort();
        bounce_log_free(&again);
    }
    before = log.count;
    bounce_log_newest(&log);
    if (log.count > before)
        abort();
    for (size_t i = 0; i < log.count; i++)
        if (bounce_log_find(&log, log.entries[i].recipient) == NULL)
            abort();
    bounce_log_free(&log);
    str_free(text);
    return 0;
}
