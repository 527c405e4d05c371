/*
 * mastercf.h - master.cf: the service table.
 *
 * Postfix syntax: one service per logical line, 8 fields separated by white
 * space:
 *     service type private unpriv chroot wakeup maxproc command [args...]
 * A line starting with white space continues the previous one; "#" lines and
 * blank lines are ignored. "-" in fields 3..7 means the default.
 *
 *   type     inet | unix | unix-dgram | fifo | pass
 *   private  y|n   default y; must be n for inet
 *   unpriv   y|n   default y
 *   chroot   y|n   default n
 *   wakeup   N, N? (only if used), or 0 / -   seconds between wake-up triggers
 *   maxproc  N     0 = no limit; "-" = $default_process_limit (stored as -1)
 *
 * Arguments "-o name=value" (or "-o { name = value with spaces }") are
 * parameter overrides; they are removed from argv and stored in opts.
 *
 * Every problem (wrong number of fields, bad y/n, bad number, unknown type,
 * duplicate service+type, bad -o) is a diagnostic with file and line.
 */
#ifndef POSTERN_MASTERCF_H
#define POSTERN_MASTERCF_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

enum mastercf_type {
    MASTERCF_INET,
    MASTERCF_UNIX,
    MASTERCF_UNIX_DGRAM,
    MASTERCF_FIFO,
    MASTERCF_PASS,
};

struct mastercf_opt {
    char   *name;
    char   *value;
};

struct mastercf_entry {
    char   *service;            /* "smtp", "127.0.0.1:2525", "pickup" */
    enum mastercf_type type;
    bool    private_;
    bool    unpriv;
    bool    chroot;
    int     wakeup;             /* seconds, 0 = none */
    bool    wakeup_if_used;     /* "N?" form */
    int     maxproc;            /* -1 = default_process_limit, 0 = unlimited */
    char  **argv;               /* command and its arguments, -o removed; NULL-terminated */
    int     argc;
    struct mastercf_opt *opts;  /* -o overrides, in order */
    size_t  nopts;
    char   *file;
    int     line;
};

struct mastercf {
    struct mastercf_entry *entries;
    size_t  count;
};

/* Parse; returns -1 only if the file cannot be read (also added to diags). */
int     mastercf_read_file(const char *path, struct mastercf *mc, diag_list_t *diags);
int     mastercf_read_string(const char *file, const char *text, size_t len,
                             struct mastercf *mc, diag_list_t *diags);
void    mastercf_free(struct mastercf *mc);
const char *mastercf_type_name(enum mastercf_type type);

#endif
