/*
 * dict_pcre.c - "pcre:/path/file": tables of Perl-compatible regular
 * expressions (PCRE2, 8-bit), in the syntax of dict_pattern.c.
 *
 * Flags after the closing delimiter:
 *     i   toggle case-insensitive matching (on by default)
 *     m   toggle multi-line mode ("^"/"$" also at embedded newlines)
 *     s   toggle "." matching a newline too
 *     x   toggle extended syntax (white space and # comments in the pattern)
 *     A   anchor the match at the start of the key
 *     E   "$" matches only at the very end, not before a final newline
 *     U   toggle greediness of quantifiers
 * Any other flag makes the line a warning and skips it.
 *
 * Every match runs with a match limit and a depth limit, so a pattern that
 * backtracks badly cannot spin forever on a key chosen by a client: when a
 * limit is hit the lookup is a DICT_ERROR (the caller defers), not a guess.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "dict_pattern.h"
#include "mem.h"

#define PCRE_MATCH_LIMIT    1000000     /* calls of the internal match function */
#define PCRE_DEPTH_LIMIT    10000       /* backtracking depth */
#define PCRE_ERRBUF         256

struct pcre_handle {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

static void
pcre_free_handle(void *handle)
{
    struct pcre_handle *h = handle;

    pcre2_match_context_free(h->mctx);
    pcre2_match_data_free(h->md);
    pcre2_code_free(h->code);
    mem_free(h);
}

static void *
pcre_compile_pattern(const char *pattern, const char *flags, int *ngroups, str_t *err)
{
    uint32_t options = PCRE2_CASELESS;
    struct pcre_handle *h;
    int     errcode;
    PCRE2_SIZE erroff;
    uint32_t count = 0;

    for (const char *f = flags; *f; f++) {
        switch (*f) {
        case 'i':
            options ^= PCRE2_CASELESS;
            break;
        case 'm':
            options ^= PCRE2_MULTILINE;
            break;
        case 's':
            options ^= PCRE2_DOTALL;
            break;
        case 'x':
            options ^= PCRE2_EXTENDED;
            break;
        case 'A':
            options ^= PCRE2_ANCHORED;
            break;
        case 'E':
            options ^= PCRE2_DOLLAR_ENDONLY;
            break;
        case 'U':
            options ^= PCRE2_UNGREEDY;
            break;
        default:
            str_printf(err, "unknown flag \"%c\" (pcre tables know i, m, s, x, A, E and U)", *f);
            return NULL;
        }
    }
    h = mem_zalloc(sizeof(*h));
    h->code = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, options, &errcode, &erroff, NULL);
    if (h->code == NULL) {
        PCRE2_UCHAR buf[PCRE_ERRBUF];

        if (pcre2_get_error_message(errcode, buf, sizeof(buf)) < 0)
            str_printf(err, "error %d", errcode);
        else
            str_printf(err, "%s at offset %zu", (const char *) buf, (size_t) erroff);
        mem_free(h);
        return NULL;
    }
    if (pcre2_pattern_info(h->code, PCRE2_INFO_CAPTURECOUNT, &count) != 0)
        count = 0;
    h->md = pcre2_match_data_create_from_pattern(h->code, NULL);
    h->mctx = pcre2_match_context_create(NULL);
    if (h->md == NULL || h->mctx == NULL) {
        str_set_cstr(err, "out of memory");
        pcre_free_handle(h);
        return NULL;
    }
    pcre2_set_match_limit(h->mctx, PCRE_MATCH_LIMIT);
    pcre2_set_depth_limit(h->mctx, PCRE_DEPTH_LIMIT);
    *ngroups = count > DICT_PATTERN_GROUPS - 1 ? DICT_PATTERN_GROUPS - 1 : (int) count;
    return h;
}

static int
pcre_match(void *handle, const char *key, size_t len, struct dict_pattern_span *spans, int nspans,
           str_t *err)
{
    struct pcre_handle *h = handle;
    int     rc = pcre2_match(h->code, (PCRE2_SPTR) key, len, 0, 0, h->md, h->mctx);
    PCRE2_SIZE *ov;
    uint32_t npairs;

    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        PCRE2_UCHAR buf[PCRE_ERRBUF];

        if (pcre2_get_error_message(rc, buf, sizeof(buf)) < 0)
            str_printf(err, "pcre2_match: error %d", rc);
        else
            str_printf(err, "pcre2_match: %s", (const char *) buf);
        return -1;
    }
    ov = pcre2_get_ovector_pointer(h->md);
    npairs = pcre2_get_ovector_count(h->md);
    for (int i = 0; i < nspans; i++) {
        if ((uint32_t) i >= npairs || ov[2 * i] == PCRE2_UNSET || ov[2 * i] > len || ov[2 * i + 1] > len
            || ov[2 * i + 1] < ov[2 * i]) {
            spans[i].start = spans[i].end = -1;
        } else {
            spans[i].start = (long) ov[2 * i];
            spans[i].end = (long) ov[2 * i + 1];
        }
    }
    return 1;
}

static const struct dict_pattern_engine pcre_engine = {
    .type = "pcre",
    .compile = pcre_compile_pattern,
    .match = pcre_match,
    .free = pcre_free_handle,
};

dict_t *
dict_pcre_open(const char *name, int flags, str_t *err)
{
    return dict_pattern_open(&pcre_engine, name, flags, err);
}
