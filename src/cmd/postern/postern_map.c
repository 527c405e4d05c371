/*
 * postern_map.c - "postern map": build and query lookup tables, like
 * Postfix's postmap and postalias.
 *
 *     postern [-c DIR] map [-a] [-f] [-r] [type:]file...         build
 *     postern [-c DIR] map [-f] -q key [type:]file...           query
 *     postern [-c DIR] map [-f] -q - [type:]file...             query keys from stdin
 *
 * Build: each indexed table (hash:, btree:, lmdb:) is made from its source
 * file with dict_build(): atomically, so running daemons keep a consistent
 * table. -a reads aliases(5) syntax, -f keeps the keys' case, -r lets a
 * duplicate key replace the earlier one silently. A name without a type is
 * "hash:". Exit 0 when every table was built, 1 when any failed.
 *
 * Query (any table type): -q key prints the value from the first table, in
 * the order given, that has the key; exit 0 found, 1 not found, 2 when a
 * table cannot be opened or answer. -q - reads one key per line from
 * standard input and prints "key<TAB>value" for each key found; exit 0 when
 * at least one was found, 1 when none, 2 on any error. (postmap exits 1 on
 * errors too; Postern keeps "not found" and "could not tell" apart.)
 *
 * SECURITY: an ordinary command. It writes only the table files it is told
 * to build, next to their source, with the permissions described in
 * dict_build (dict.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "str.h"
#include "stream.h"

#define MAP_EXIT_FOUND      0
#define MAP_EXIT_NOTFOUND   1
#define MAP_EXIT_ERROR      2
#define MAP_DEFAULT_TYPE    "hash"

static int
map_usage(void)
{
    fprintf(stderr,
            "usage: postern map [-a] [-f] [-r] [type:]file...      build tables\n"
            "       postern map [-f] -q key [type:]file...         look up key\n"
            "       postern map [-f] -q - [type:]file...           look up keys read from stdin\n");
    return POSTERN_EXIT_USAGE;
}

/* "type:file", or "hash:file" when arg has no type. Caller frees. */
static char *
map_table_name(const char *arg)
{
    str_t  *s;

    if (strchr(arg, ':') != NULL)
        return mem_strdup(arg);
    s = str_new(strlen(arg) + sizeof(MAP_DEFAULT_TYPE) + 1);
    str_printf(s, "%s:%s", MAP_DEFAULT_TYPE, arg);
    return str_steal(s);
}

static int
map_build(char **tables, int ntables, int build_flags)
{
    str_t  *err = str_new(0);
    int     status = POSTERN_EXIT_OK;

    for (int i = 0; i < ntables; i++) {
        char   *name = map_table_name(tables[i]);

        if (dict_build(name, build_flags, err) != 0) {
            log_error("%s", str_cstr(err));
            status = POSTERN_EXIT_FAIL;
        }
        mem_free(name);
    }
    str_free(err);
    return status;
}

/* Look key up in the tables in order: MAP_EXIT_* and, when found, value. */
static int
map_lookup(dict_t **dicts, int n, const char *key, str_t *value)
{
    for (int i = 0; i < n; i++) {
        int     rc = dict_lookup(dicts[i], key, value);

        if (rc == DICT_FOUND)
            return MAP_EXIT_FOUND;
        if (rc == DICT_ERROR) {
            log_error("%s:%s: %s", dicts[i]->type, dicts[i]->name, dict_error(dicts[i]));
            return MAP_EXIT_ERROR;
        }
    }
    return MAP_EXIT_NOTFOUND;
}

/* Keys from standard input, one per line. */
static int
map_query_stdin(dict_t **dicts, int n, str_t *value)
{
    stream_t *in = stream_open(STDIN_FILENO);
    str_t  *line = str_new(0);
    bool    found = false, error = false;
    int     rc;

    for (;;) {
        rc = stream_read_line(in, line, DICT_KEY_MAX + 2);
        if (rc == STREAM_TOOLONG) {
            /* Longer than any key: not found. Skip the rest of the line. */
            while (rc == STREAM_TOOLONG || (rc == STREAM_OK && str_len(line) > 0
                                            && str_cstr(line)[str_len(line) - 1] != '\n'))
                rc = stream_read_line(in, line, DICT_KEY_MAX + 2);
            continue;
        }
        if (rc != STREAM_OK)
            break;
        str_chomp(line);
        if (memchr(str_cstr(line), 0, str_len(line)) != NULL)
            continue;
        rc = map_lookup(dicts, n, str_cstr(line), value);
        if (rc == MAP_EXIT_FOUND) {
            found = true;
            printf("%s\t%s\n", str_cstr(line), str_cstr(value));
        } else if (rc == MAP_EXIT_ERROR) {
            error = true;
        }
    }
    if (rc != STREAM_EOF) {
        log_error("read standard input: %s",
                  rc == STREAM_ERR ? strerror(stream_errno(in)) : stream_strstatus(rc));
        error = true;
    }
    stream_abandon(in);                 /* stdin stays open; nothing was written to it */
    str_free(line);
    return error ? MAP_EXIT_ERROR : found ? MAP_EXIT_FOUND : MAP_EXIT_NOTFOUND;
}

static int
map_query(const char *key, char **tables, int ntables, int dict_flags)
{
    dict_t **dicts = mem_array((size_t) ntables, sizeof(*dicts));
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    int     status = MAP_EXIT_NOTFOUND;
    int     opened = 0;

    for (; opened < ntables; opened++) {
        char   *name = map_table_name(tables[opened]);

        dicts[opened] = dict_open(name, dict_flags, err);
        mem_free(name);
        if (dicts[opened] == NULL) {
            log_error("%s", str_cstr(err));
            status = MAP_EXIT_ERROR;
            break;
        }
    }
    if (status != MAP_EXIT_ERROR) {
        if (strcmp(key, "-") == 0) {
            status = map_query_stdin(dicts, ntables, value);
        } else {
            status = map_lookup(dicts, ntables, key, value);
            if (status == MAP_EXIT_FOUND)
                printf("%s\n", str_cstr(value));
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_error("write standard output: %s", strerror(errno));
        status = MAP_EXIT_ERROR;
    }
    for (int i = 0; i < opened; i++)
        dict_close(dicts[i]);
    mem_free(dicts);
    str_free(err);
    str_free(value);
    return status;
}

int
postern_map(const char *dir, int argc, char **argv)
{
    int     build_flags = 0;
    int     dict_flags = 0;
    const char *query = NULL;
    int     i;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != 0; i++) {
        const char *opt = argv[i];

        if (strcmp(opt, "--") == 0) {
            i++;
            break;
        }
        for (const char *o = opt + 1; *o; o++) {
            switch (*o) {
            case 'a':
                build_flags |= DICT_BUILD_ALIASES;
                break;
            case 'f':
                build_flags |= DICT_BUILD_NO_FOLD;
                dict_flags |= DICT_FLAG_NO_FOLD;
                break;
            case 'r':
                build_flags |= DICT_BUILD_REPLACE;
                break;
            case 'q':
                if (o[1] != 0 || i + 1 >= argc)
                    return map_usage();
                query = argv[++i];
                break;
            default:
                return map_usage();
            }
            if (*o == 'q')
                break;
        }
    }
    if (i >= argc)
        return map_usage();
    if (query != NULL)
        return map_query(query, argv + i, argc - i, dict_flags);
    return map_build(argv + i, argc - i, build_flags);
}
