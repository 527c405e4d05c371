/*
 * params.h - the one table of main.cf parameters.
 *
 * Every parameter that any Postern program reads is declared exactly once, in
 * params.c, with its name, type, default and bounds. "postern conf" prints
 * this table, the docs are generated from it, and config_validate() checks
 * main.cf against it. Names and meanings follow Postfix where Postfix has the
 * same parameter.
 *
 * Defaults are text, expanded like main.cf values ("$myhostname"). A default
 * that must be computed at run time (the host name, the daemon directory) has
 * def == NULL and a def_fn; its result is used as is (not expanded again).
 */
#ifndef POSTERN_PARAMS_H
#define POSTERN_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

struct config;

enum param_type {
    PARAM_STR,      /* free text (lists, paths, table names...) */
    PARAM_INT,      /* decimal integer within [min, max] */
    PARAM_BOOL,     /* yes/no */
    PARAM_TIME,     /* integer with optional unit s/m/h/d/w; stored in seconds */
    PARAM_SIZE,     /* byte count, decimal integer within [min, max] */
};

struct param_def {
    const char *name;
    enum param_type type;
    const char *def;            /* default text, or NULL when def_fn computes it */
    /* Run-time default, computed from the config (e.g. mydomain from
     * myhostname) or the machine; the result is owned by the config. */
    const char *(*def_fn)(struct config *cfg);
    long    min;                /* INT/TIME/SIZE lower bound (TIME in seconds) */
    long    max;                /* upper bound; 0 means no upper bound */
    char    unit;               /* TIME: default unit when the value has none */
    const char *summary;        /* one line for "postern conf -d -v" and the docs */
};

/* The table, sorted by name. */
extern const struct param_def param_table[];
extern const size_t param_table_size;

const struct param_def *param_lookup(const char *name);

/*
 * Per-transport parameters exist for every service named in master.cf, as in
 * Postfix: "<service>_destination_concurrency_limit" and friends. Returns the
 * generic definition ("default_destination_concurrency_limit") when "name" is
 * "<svc>" + one of the known suffixes and <svc> is in "services" (NULL-ended).
 */
const struct param_def *param_lookup_service(const char *name, const char *const *services);

/*
 * Check an expanded value against the definition. On success stores the
 * numeric value (seconds for TIME, 0/1 for BOOL) in *num when num is not NULL
 * and returns true; else explains in "why" ("bad time value ...").
 */
bool    param_check_value(const struct param_def *def, const char *value, long *num, str_t *why);
/* Parse a Postfix time value ("100s", "5m", "1d", "30" with default unit). */
bool    param_parse_time(const char *value, char default_unit, long *seconds);
/* The default as text (def, or def_fn(cfg)). */
const char *param_default(const struct param_def *def, struct config *cfg);

#endif
