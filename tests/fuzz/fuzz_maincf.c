/*
 * fuzz_maincf.c - libFuzzer harness for main.cf: parsing (config.c's
 * logical line reader and setting syntax), validation, and expansion of
 * every entry.
 *
 * The input is treated as a main.cf file. Besides crashes and leaks it
 * checks one invariant: when config_validate() reports no error, every
 * typed getter works for every parameter in the table (they would
 * log_fatal, which exits, otherwise). Everything allocated is freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "diag.h"
#include "params.h"
#include "str.h"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const services[] = {"smtp", "relay", "local", "127.0.0.1:2525", NULL};
    config_t *cfg = config_new();
    diag_list_t diags;
    str_t  *out = str_new(0), *err = str_new(0);
    size_t  errors;

    diag_init(&diags);
    (void) config_read_string(cfg, "fuzz/main.cf", (const char *) data, size, &diags);
    errors = config_validate(cfg, services, &diags);
    for (size_t i = 0; i < config_count(cfg); i++) {
        const struct config_entry *e = config_entry_at(cfg, i);

        (void) config_expand(cfg, e->value, out, err);
        if (config_get_raw(cfg, e->name) == NULL)
            abort();
    }
    if (errors == 0) {
        for (size_t i = 0; i < param_table_size; i++) {
            const struct param_def *def = &param_table[i];

            switch (def->type) {
            case PARAM_STR:
                (void) config_str(cfg, def->name);
                break;
            case PARAM_INT:
            case PARAM_SIZE:
                (void) config_int(cfg, def->name);
                break;
            case PARAM_BOOL:
                (void) config_bool(cfg, def->name);
                break;
            case PARAM_TIME:
                (void) config_time(cfg, def->name);
                break;
            }
        }
    }
    str_free(out);
    str_free(err);
    diag_free(&diags);
    config_free(cfg);
    return 0;
}
