/*
 * fuzz_mastercf.c - libFuzzer harness for master.cf parsing
 * (mastercf_read_string), with a check of the invariants every entry must
 * hold (non-empty service and command, NULL-terminated argv, known type,
 * options with valid names). Everything allocated is freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "mastercf.h"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mastercf mc;
    diag_list_t diags;

    diag_init(&diags);
    (void) mastercf_read_string("fuzz/master.cf", (const char *) data, size, &mc, &diags);
    for (size_t i = 0; i < mc.count; i++) {
        const struct mastercf_entry *e = &mc.entries[i];

        if (e->service == NULL || *e->service == 0 || e->argc < 1 || e->argv[e->argc] != NULL
            || *e->argv[0] == 0 || e->line < 1 || e->maxproc < -1 || e->wakeup < 0)
            abort();
        (void) mastercf_type_name(e->type);
        if (e->type == MASTERCF_INET && e->private_)
            abort();
        for (size_t j = 0; j < e->nopts; j++)
            if (*e->opts[j].name == 0 || strpbrk(e->opts[j].name, " \t=") != NULL)
                abort();
    }
    for (size_t i = 0; i < diags.count; i++)
        if (diags.items[i].severity != DIAG_ERROR || diags.items[i].line < 1)
            abort();
    mastercf_free(&mc);
    diag_free(&diags);
    return 0;
}
