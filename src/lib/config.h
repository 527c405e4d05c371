/*
 * config.h - main.cf: reading, expansion, typed access, validation, editing.
 *
 * Syntax (as Postfix main.cf): "name = value" lines; a line that starts with
 * white space continues the previous one; "#" at the start of a line (after
 * optional white space) makes a comment; blank lines are ignored. A later
 * assignment to the same name wins. Values are kept raw and expanded on use:
 * $name, ${name}, $(name), ${name?text} (text when name is non-empty),
 * ${name:text} (text when name is empty), and $$ for a literal dollar.
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

/* Parse main.cf. Syntax problems are added to diags; returns -1 only if the file cannot be read. */
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

/* Expand $name references in text (using this config). Returns false with err set on a loop etc. */
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
 */
bool    config_edit_file(const char *path, const char *const *assignments, size_t n, str_t *err);

#endif
