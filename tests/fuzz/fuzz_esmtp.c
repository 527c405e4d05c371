/*
 * fuzz_esmtp.c - libFuzzer harness for esmtp.c, the MAIL FROM / RCPT TO
 * argument syntax shared by smtpd and sendmail -bs.
 *
 * The input (up to the first NUL, as a command line would be) is taken as
 * the arguments of MAIL or RCPT: the keyword, the path, then every
 * parameter through the value parsers. Invariants checked:
 *   - esmtp_next_param() always moves on and never yields a key with a
 *     blank, so the loop ends;
 *   - a decoded ENVID is printable ASCII of at most ESMTP_ENVID_MAX bytes;
 *   - a NOTIFY mask is NEVER alone or a non-empty set of the other three;
 *   - an ORCPT value keeps its "type;" prefix;
 *   - a SIZE is not negative.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "esmtp.h"
#include "log.h"
#include "mem.h"
#include "rec_type.h"
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
check_value(const char *key, const char *value)
{
    str_t  *dec = str_new(0);
    long    size;
    int     mask;
    char   *orcpt = NULL;

    if (strcmp(key, "SIZE") == 0 && esmtp_parse_size(value, &size) && size < 0)
        abort();
    if (esmtp_decode_xtext(dec, value, ESMTP_ENVID_MAX)) {
        if (str_len(dec) > ESMTP_ENVID_MAX)
            abort();
        for (size_t i = 0; i < str_len(dec); i++)
            if ((unsigned char) dec->data[i] < 0x20 || (unsigned char) dec->data[i] > 0x7e)
                abort();
    }
    if (esmtp_parse_notify(value, &mask)) {
        int     all = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;

        if (mask != DSN_NOTIFY_NEVER && (mask == 0 || (mask & ~all) != 0))
            abort();
    }
    if (esmtp_parse_orcpt(value, &orcpt)) {
        const char *semi = strchr(value, ';');

        if (semi == NULL || strncmp(orcpt, value, (size_t) (semi - value + 1)) != 0)
            abort();
        mem_free(orcpt);
    }
    str_free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *text = mem_alloc(size + 1);
    const char *args, *rest = "";
    str_t  *addr = str_new(0), *err = str_new(0), *key = str_new(0), *value = str_new(0);
    bool    has_value;

    memcpy(text, data, size);
    text[size] = 0;
    args = esmtp_skip_keyword(text, "FROM:");
    if (args == NULL)
        args = esmtp_skip_keyword(text, "TO:");
    if (args == NULL)
        args = text;
    if (!addr_parse_path(args, addr, &rest, ADDR_PATH_ALLOW_EMPTY, err))
        rest = args;            /* the parameter parsers see the text anyway */
    for (int n = 0; esmtp_next_param(&rest, key, value, &has_value); n++) {
        if (memchr(str_cstr(key), ' ', str_len(key)) || n > (int) size)
            abort();
        check_value(str_cstr(key), str_cstr(value));
    }
    str_free(addr);
    str_free(err);
    str_free(key);
    str_free(value);
    mem_free(text);
    return 0;
}
