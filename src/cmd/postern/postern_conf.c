/*
 * postern_conf.c - "postern conf": print and edit main.cf, like postconf.
 *
 *   conf                 every parameter with its current value
 *   conf NAME...         the named parameters
 *   conf -n              only the parameters set in main.cf
 *   conf -d [NAME...]    default values
 *   conf -h              values only, without "name = "
 *   conf -x              expand $name references in values
 *   conf -e 'NAME = VALUE'...   edit main.cf in place, keeping comments
 *   conf --markdown      the parameter table as Markdown (docs/parameters.md)
 *
 * Values are printed as written (unexpanded) unless -x is given, as
 * postconf does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "postern.h"
#include "str.h"

struct conf_opts {
    bool    non_default;
    bool    defaults;
    bool    value_only;
    bool    expand;
};

static void
print_one(config_t *cfg, const struct conf_opts *o, const char *name, const char *value)
{
    str_t  *out = str_new(0), *err = str_new(0);

    if (o->expand && !config_expand(cfg, value, out, err)) {
        log_warn("%s: %s", name, str_cstr(err));
        str_set_cstr(out, value);
    } else if (!o->expand) {
        str_set_cstr(out, value);
    }
    if (o->value_only)
        printf("%s\n", str_cstr(out));
    else
        printf("%s =%s%s\n", name, str_len(out) ? " " : "", str_cstr(out));
    str_free(out);
    str_free(err);
}

/* The value to show for name: explicit, else the default. NULL when unknown. */
static const char *
value_of(config_t *cfg, const struct conf_opts *o, const char *name)
{
    const struct param_def *def = param_lookup(name);
    const char *raw;

    if (o->defaults)
        return def ? param_default(def, cfg) : NULL;
    if ((raw = config_get_raw(cfg, name)) != NULL)
        return raw;
    return def ? param_default(def, cfg) : NULL;
}

static int
compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* -n: the explicit settings of main.cf, sorted by name, each once. */
static void
print_non_default(config_t *cfg, const struct conf_opts *o)
{
    size_t  n = config_count(cfg), k = 0;
    const char **names = mem_array(n + 1, sizeof(*names));

    for (size_t i = 0; i < n; i++) {
        const struct config_entry *e = config_entry_at(cfg, i);
        bool    seen = false;

        if (e->file == NULL)
            continue;               /* an override, not a main.cf setting */
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(names[j], e->name) == 0;
        if (!seen)
            names[k++] = e->name;
    }
    qsort(names, k, sizeof(*names), compare_names);
    for (size_t i = 0; i < k; i++)
        print_one(cfg, o, names[i], config_get_raw(cfg, names[i]));
    mem_free(names);
}

static int
edit(const char *dir, int argc, char **argv)
{
    str_t  *path = str_new(0), *err = str_new(0);
    const char **assign = mem_array((size_t) argc + 1, sizeof(*assign));
    int     rc = POSTERN_EXIT_OK;

    for (int i = 0; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL) {
            log_error("bad assignment \"%s\": need name = value", argv[i]);
            rc = POSTERN_EXIT_USAGE;
            goto out;
        }
        assign[i] = argv[i];
    }
    str_printf(path, "%s/main.cf", dir);
    if (!config_edit_file(str_cstr(path), assign, (size_t) argc, err)) {
        log_error("%s", str_cstr(err));
        rc = POSTERN_EXIT_FAIL;
    }
  out:
    mem_free(assign);
    str_free(path);
    str_free(err);
    return rc;
}

static const char *
type_name(const struct param_def *def)
{
    static char buf[64];

    switch (def->type) {
    case PARAM_STR:
        return "text";
    case PARAM_INT:
        return "integer";
    case PARAM_BOOL:
        return "yes/no";
    case PARAM_SIZE:
        return "bytes";
    case PARAM_TIME:
        snprintf(buf, sizeof(buf), "time (unit %c)", def->unit ? def->unit : 's');
        return buf;
    }
    return "?";
}

/* The reference table of every parameter, for docs/parameters.md. */
static int
print_markdown(void)
{
    printf("# Parameters\n\n"
           "Every `main.cf` parameter Postern knows, with its type and default. This page is generated\n"
           "from the parameter table in `src/lib/params.c` by `postern conf --markdown`; a test keeps\n"
           "them equal. Defaults shown as *computed* are found at run time (host name, install paths).\n"
           "Names and meanings follow Postfix.\n\n"
           "| parameter | type | default | meaning |\n"
           "| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < param_table_size; i++) {
        const struct param_def *d = &param_table[i];
        const char *def = d->def ? d->def : NULL;
        str_t  *shown = str_new(0);

        if (def == NULL)
            str_set_cstr(shown, "*computed*");
        else if (*def == 0)
            str_set_cstr(shown, "(empty)");
        else
            str_printf(shown, "`%s`", def);
        if (d->min != 0 || d->max != 0) {
            if (d->max != 0)
                str_append_printf(shown, " (%ld..%ld)", d->min, d->max);
            else
                str_append_printf(shown, " (at least %ld)", d->min);
        }
        printf("| `%s` | %s | %s | %s |\n", d->name, type_name(d), str_cstr(shown),
               d->summary ? d->summary : "");
        str_free(shown);
    }
    return POSTERN_EXIT_OK;
}

int
postern_conf(const char *dir, int argc, char **argv)
{
    struct conf_opts o = {0};
    bool    do_edit = false;
    int     ch, rc = POSTERN_EXIT_OK;
    config_t *cfg;
    diag_list_t diags;
    str_t  *path;

    if (argc == 2 && strcmp(argv[1], "--markdown") == 0)
        return print_markdown();
    optind = 1;
    while ((ch = getopt(argc, argv, "ndhxe")) != -1) {
        switch (ch) {
        case 'n':
            o.non_default = true;
            break;
        case 'd':
            o.defaults = true;
            break;
        case 'h':
            o.value_only = true;
            break;
        case 'x':
            o.expand = true;
            break;
        case 'e':
            do_edit = true;
            break;
        default:
            fprintf(stderr, "usage: postern conf [-n|-d] [-h] [-x] [name...] | -e 'name = value'...\n");
            return POSTERN_EXIT_USAGE;
        }
    }
    if (do_edit) {
        if (optind >= argc) {
            fprintf(stderr, "usage: postern conf -e 'name = value'...\n");
            return POSTERN_EXIT_USAGE;
        }
        return edit(dir, argc - optind, argv + optind);
    }

    cfg = config_new();
    path = str_new(0);
    diag_init(&diags);
    config_set(cfg, "config_directory", dir);
    str_printf(path, "%s/main.cf", dir);
    if (config_read_file(cfg, str_cstr(path), &diags) != 0 && !o.defaults) {
        diag_log(&diags);
        config_free(cfg);
        str_free(path);
        diag_free(&diags);
        return POSTERN_EXIT_FAIL;
    }
    diag_log(&diags);
    diag_free(&diags);

    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            const char *v = value_of(cfg, &o, argv[i]);

            if (v == NULL) {
                log_warn("%s: unknown parameter", argv[i]);
                continue;
            }
            print_one(cfg, &o, argv[i], v);
        }
    } else if (o.non_default) {
        print_non_default(cfg, &o);
    } else {
        for (size_t i = 0; i < param_table_size; i++) {
            const char *name = param_table[i].name;

            print_one(cfg, &o, name, value_of(cfg, &o, name));
        }
    }
    str_free(path);
    config_free(cfg);
    return rc;
}
