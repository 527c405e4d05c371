/*
 * fuzz_addr.c - libFuzzer harness for addr.c.
 *
 * The first input byte selects the addr_parse_path() flags (low three
 * bits); the rest is the text, given to the path parser (as a C string, so
 * up to the first NUL), to the header parser (all bytes), and to the
 * quoting and xtext functions. Invariants checked:
 *   - a parsed path has no NUL, fits ADDR_MAX_LEN, and when its domain is
 *     valid, "<" + externalized form + ">" parses back to the same address;
 *   - internalize(externalize(x)) == x for any x;
 *   - every header address fits ADDR_MAX_LEN and holds no NUL;
 *   - xtext decode(encode(x)) == x.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "mem.h"
#include "str.h"

int     LLVMFuzzerInitialize(int *argc, char ***argv);
int     LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    log_set_stderr(false, false);
    return 0;
}

static void
check_header_addr(const char *addr, void *ctx)
{
    size_t *n = ctx;

    if (strlen(addr) > ADDR_MAX_LEN)
        abort();
    (*n)++;
}

static void
check_round_trip(const char *x)
{
    str_t  *ext = str_new(0), *back = str_new(0);

    addr_externalize(ext, x);
    addr_internalize(back, str_cstr(ext));
    if (strcmp(str_cstr(back), x) != 0)
        abort();
    str_free(ext);
    str_free(back);
}

static void
check_path(const char *text, int flags)
{
    str_t  *addr = str_new(0), *err = str_new(0), *ext = str_new(0), *again = str_new(0);
    const char *rest = NULL;

    if (addr_parse_path(text, addr, &rest, flags, err)) {
        const char *dom = addr_domain(str_cstr(addr));

        if (rest == NULL || rest < text || rest > text + strlen(text))
            abort();
        if (str_len(addr) > ADDR_MAX_LEN || strlen(str_cstr(addr)) != str_len(addr))
            abort();
        check_round_trip(str_cstr(addr));
        if (str_len(addr) > 0) {
            bool    dom_ok = true;

            if (dom) {
                size_t  dlen = strlen(dom);
                char   *d = mem_strndup(dom, dlen > 1 && dom[dlen - 1] == '.' ? dlen - 1 : dlen);

                dom_ok = addr_domain_ok(d, true);
                mem_free(d);
            }
            if (dom_ok) {
                str_t  *path = str_new(0);

                addr_externalize(ext, str_cstr(addr));
                str_printf(path, "<%s>", str_cstr(ext));
                if (str_len(ext) + 2 <= ADDR_MAX_LEN
                    && (!addr_parse_path(str_cstr(path), again, &rest, flags | ADDR_PATH_UTF8, err)
                        || !str_eq_cstr(again, str_cstr(addr))))
                    abort();
                str_free(path);
            }
        }
    } else if (str_len(err) == 0 || str_len(addr) != 0) {
        abort();
    }
    str_free(addr);
    str_free(err);
    str_free(ext);
    str_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *text;
    size_t  n = 0;
    int     count;
    str_t  *x, *y;

    if (size == 0)
        return 0;
    text = mem_strndup((const char *) data + 1, size - 1);
    check_path(text, data[0] & 7);
    count = addr_parse_header((const char *) data + 1, size - 1, check_header_addr, &n);
    if (count >= 0 && (size_t) count != n)
        abort();
    check_round_trip(text);
    x = str_new(0);
    y = str_new(0);
    addr_xtext_encode(x, text);
    if (!addr_xtext_decode(y, str_cstr(x)) || strcmp(str_cstr(y), text) != 0)
        abort();
    (void) addr_xtext_decode(y, text);
    str_free(x);
    str_free(y);
    mem_free(text);
    return 0;
}
