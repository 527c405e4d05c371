/*
 * fuzz_local_items.c - libFuzzer harness for the parsers of the local
 * delivery agent that read user-controlled text: the item list of an
 * aliases(5) value or a ~/.forward file (local_split_items), the class list
 * of allow_mail_to_* (local_class_mask), address extensions
 * (local_split_ext), the forward_path macro expander (local_expand_macros)
 * and the cleaning of command output for bounce reasons (local_clean_text).
 *
 * The input is split at its first NUL: the part before is the text, the
 * part after (if any) the recipient_delimiter set. Invariants checked:
 * every item is non-empty and NUL-free, no more items than asked for, the
 * extension split loses no byte, the cleaned text is printable ASCII
 * within its bound. Everything is freed (LeakSanitizer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/local/local_util.c"

int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct items {
    size_t  n;
};

static void
item(const char *text, void *ctx)
{
    struct items *it = ctx;

    if (text[0] == 0)
        abort();
    it->n++;
}

static const char *
lookup(const char *name, void *ctx)
{
    (void) ctx;
    if (strcmp(name, "home") == 0)
        return "/home/user";
    if (strcmp(name, "extension") == 0)
        return "ext";
    if (strcmp(name, "recipient_delimiter") == 0)
        return "+";
    return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *text = malloc(size + 1);
    const char *delim;
    struct items it = {0};
    str_t  *user = str_new(0), *ext = str_new(0), *out = str_new(0);
    size_t  n;

    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = 0;
    delim = strlen(text) < size ? text + strlen(text) + 1 : "";

    n = local_split_items(text, 50, item, &it);
    if (n != it.n || n > 50)
        abort();
    (void) local_class_mask(text);

    local_split_ext(text, delim, user, ext);
    if (str_len(user) + str_len(ext) > strlen(text))
        abort();
    if (str_len(ext) > 0 && str_len(user) + str_len(ext) + 1 != strlen(text))
        abort();

    (void) local_expand_macros(text, lookup, NULL, out);

    str_reset(out);                     /* local_clean_text appends */
    local_clean_text(out, (const char *) data, size, 200);
    if (str_len(out) > 200 + 3)         /* room for a "..." marker */
        abort();
    for (size_t i = 0; i < str_len(out); i++)
        if ((unsigned char) out->data[i] < 0x20 || (unsigned char) out->data[i] > 0x7e)
            abort();

    str_free(user);
    str_free(ext);
    str_free(out);
    free(text);
    return 0;
}
