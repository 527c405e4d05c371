/*
 * config.h - main.cf: reading, expansion, typed access, validation, editing.
 *
 * Syntax (as Postfix main.cf): "name = value" lines; a line that starts with
 * white space continues the previous one; "#" at the start of a line (after
 * optional white space) makes a comment; blank lines are ignored. A later
 * assignment to the same name wins. Values are kept raw and expanded on use:
 * $name, ${name}, $(name), ${name?text} (text when name is non-empty),
 * ${name:text} (text when name is empty), and $$ for a literal dollar.
 * Postfix 3 forms ${name?{text}}, ${name:{text}} and ${name?{text1}:{text2}}
 * are accepted too; the chosen text is itself expanded. A name that is
 * neither set nor in the parameter table expands to the empty string.
 * Expansion detects loops and too deep nesting and reports them as errors.
 *
 * Precedence on lookup: config_set() overrides (master.cf -o, command line)
 * > main.cf > the default in params.c.
 *
 * Ownership: strings returned by the config are owned by it and stay valid
 * until the config is freed or changed.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "str.h"

typedef struct config config_t;

struct config_entry {
    const char *name;
    const char *value;      /* raw, unexpanded */
    const char *file;       /* NULL for overrides */
    int     line;
};

config_t *config_new(void);
void    config_free(config_t *cfg);

/*
 * Parse main.cf. Syntax problems are added to diags (errors naming file and
 * line); returns -1 only if the file cannot be read (also added to diags).
 */
int     config_read_file(config_t *cfg, const char *path, diag_list_t *diags);
/* The same on text in memory ("file" names it in diagnostics). */
int     config_read_string(config_t *cfg, const char *file, const char *text, size_t len,
                           diag_list_t *diags);
/* Override a parameter (master.cf "-o", "postern -o"). */
void    config_set(config_t *cfg, const char *name, const char *value);

/* Explicit (main.cf or override) raw value, or NULL when unset. */
const char *config_get_raw(const config_t *cfg, const char *name);
/* Explicit entries in file order, then overrides. */
size_t  config_count(const config_t *cfg);
const struct config_entry *config_entry_at(const config_t *cfg, size_t i);

/*
 * Expand $name references in text (using this config) into out, which is
 * reset first. Returns false with err set ("parameter X: ...") on a loop,
 * nesting deeper than 100 levels, a syntax error or a value over 1 MiB.
 */
bool    config_expand(config_t *cfg, const char *text, str_t *out, str_t *err);

/*
 * Typed access by parameter name. The name must be in the parameter table
 * (log_panic otherwise: a programming error). A value that fails to expand or
 * to parse is a log_fatal naming the parameter: programs call
 * config_validate() at start, so this only happens on a broken config.
 */
const char *config_str(config_t *cfg, const char *name);
long    config_int(config_t *cfg, const char *name);    /* INT and SIZE */
bool    config_bool(config_t *cfg, const char *name);
long    config_time(config_t *cfg, const char *name);   /* seconds */

/*
 * Check every explicit parameter: unknown names are warnings (unless the
 * name is referenced as $name by some value, or is a per-service parameter
 * for one of "services", a NULL-terminated list of master.cf service names,
 * which may be NULL); bad values and expansion loops are errors naming the
 * file and line. Returns the number of errors added.
 */
size_t  config_validate(config_t *cfg, const char *const *services, diag_list_t *diags);

/*
 * Edit a main.cf file in place, like "postconf -e": each assignment is
 * "name = value" (spaces optional). An existing setting (including its
 * continuation lines) is replaced where it stands; a new one is appended.
 * Comments and layout are kept. The file is replaced atomically (write to a
 * temporary file, fsync, rename). Returns false with err set on failure.
 * A name set more than once is replaced at its first place and its later
 * settings removed. A symbolic link is followed. An existing file keeps its
 * mode (and owner); a file that does not exist is created with mode 0644.
 */
bool    config_edit_file(const char *path, const char *const *assignments, size_t n, str_t *err);

/*
 * Store a copy of text that lives as long as the config (equal texts share
 * one copy). For parameter def_fn results, which must be owned by the config.
 */
const char *config_intern(config_t *cfg, const char *text);

/*
 * Logical lines of a Postfix-style file (main.cf, master.cf), shared by the
 * parsers here and in mastercf.c. A logical line starts with a line whose
 * first character is not white space; following lines that start with white
 * space continue it (joined with one space, leading and trailing white space
 * of each line dropped). Empty or blank lines and lines whose first
 * non-blank character is '#' are skipped; an empty line or a comment in
 * column 1 also ends a logical line, an indented comment does not.
 */
struct config_lines {
    const char *text;           /* not owned; need not be NUL-terminated */
    size_t  len;
    size_t  max;                /* longest logical line accepted; 0 = no limit */
    size_t  pos;                /* private: next unread byte */
    int     lineno;             /* private: physical lines consumed */
    /* Set by config_lines_next() for the line it returns: */
    int     first;              /* line number (from 1) where it starts */
    size_t  start, end;         /* its bytes in text, through its last newline */
};

enum {
    CONFIG_LINES_END = 0,       /* no more lines */
    CONFIG_LINES_OK = 1,        /* "out" holds a logical line */
    CONFIG_LINES_BAD = -1,      /* "out" holds why this line is unusable */
};

void    config_lines_init(struct config_lines *lr, const char *text, size_t len, size_t max);
/*
 * Next logical line into out. CONFIG_LINES_BAD is a line with a NUL byte,
 * longer than max, or a continuation line with nothing to continue; the
 * caller reports it (at lr->first) and calls again for the next line.
 */
int     config_lines_next(struct config_lines *lr, str_t *out);

/*
 * Read a whole file into out (reset first), refusing files larger than max
 * bytes. Returns false with err set ("open /x/main.cf: No such file ...").
 */
bool    config_read_text(const char *path, size_t max, str_t *out, str_t *err);

#endif
