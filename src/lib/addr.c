/*
 * addr.c - mail addresses: RFC 5321 paths, RFC 5322 header address lists,
 * quoting between the internal and the external form, and xtext.
 *
 * Internal form: the local part as the characters it denotes (no quotes,
 * no backslashes), then "@domain" when there is a domain. The domain part is
 * everything after the last '@'.
 *
 * What the path parser accepts (addr_parse_path):
 *   - "<" [route ":"] mailbox ">", "<>" with ADDR_PATH_ALLOW_EMPTY, and
 *     without ADDR_PATH_STRICT also a bare mailbox ended by white space;
 *   - a source route "@a,@b:" is checked for syntax and dropped;
 *   - the local part is a dot-string (atext atoms and dots; runs of dots and
 *     leading or trailing dots are tolerated, as deployed mail needs) or a
 *     quoted string (printable ASCII, quoted pairs of printable ASCII);
 *   - the domain is a host name (labels of letters, digits, '-' and '_',
 *     1..63 bytes, 255 in all, one trailing dot tolerated) or an address
 *     literal [1.2.3.4] / [IPv6:...], checked with inet_pton;
 *   - a mailbox without a domain ("postmaster") is accepted: the rewrite
 *     service qualifies it;
 *   - no control characters anywhere; bytes >= 0x80 only with
 *     ADDR_PATH_UTF8, and then only as valid UTF-8;
 *   - the internal form must fit in ADDR_MAX_LEN bytes.
 *
 * The header parser (addr_parse_header) tokenizes first (bounded number of
 * tokens and comment nesting), then walks the tokens: groups, display
 * names, angle addresses (obsolete routes dropped), bare addr-specs.
 *
 * Trust: input is peer data. Nothing here logs; problems are reported in
 * return values and error texts.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mem.h"

#define ADDR_DOMAIN_MAX     255     /* RFC 5321 4.5.3.1.2 */
#define ADDR_LABEL_MAX      63
#define ADDR_HDR_MAX_TOKENS 10000   /* tokens per header value */
#define ADDR_HDR_MAX_NEST   64      /* comment nesting depth */

/* RFC 5322 atext: letters, digits and these. */
static bool
is_atext(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL)
        || c >= 0x80;
}

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes available), or 0
 * when it is not one (overlong forms, surrogates and values above U+10FFFF
 * are refused).
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
    uint32_t cp;
    size_t  len, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Check an address literal "[...]" of len bytes. */
static bool
literal_ok(const char *lit, size_t len)
{
    char    buf[64];
    unsigned char bin[16];

    if (len < 3 || lit[0] != '[' || lit[len - 1] != ']' || len - 2 >= sizeof(buf))
        return false;
    memcpy(buf, lit + 1, len - 2);
    buf[len - 2] = 0;
    if (strncasecmp(buf, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, buf + 5, bin) == 1;
    return inet_pton(AF_INET, buf, bin) == 1;
}

/* Host name or address literal of len bytes (no trailing dot). */
static bool
domain_ok_len(const char *d, size_t len, bool allow_utf8)
{
    size_t  label = 0;
    bool    label_utf8 = false;

    if (len == 0 || len > ADDR_DOMAIN_MAX)
        return false;
    if (d[0] == '[')
        return literal_ok(d, len);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char) d[i];

        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            label_utf8 = false;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t  n = allow_utf8 ? utf8_len((const unsigned char *) d + i, len - i) : 0;

            if (n == 0)
                return false;
            label += n;
            label_utf8 = true;
            i += n;
        } else if (isalnum(c) || c == '_' || (c == '-' && label > 0)) {
            label++;
            i++;
        } else {
            return false;
        }
        /* An U-label may take more bytes than its A-label (which DNS limits). */
        if (label > (label_utf8 ? 4 * ADDR_LABEL_MAX : ADDR_LABEL_MAX))
            return false;
    }
    return label > 0 && d[len - 1] != '-';
}

bool
addr_domain_ok(const char *domain, bool allow_utf8)
{
    return domain != NULL && domain_ok_len(domain, strlen(domain), allow_utf8);
}

const char *
addr_domain(const char *internal)
{
    const char *at = strrchr(internal, '@');

    return at ? at + 1 : NULL;
}

/*
 * The path parser. p walks the text; every function takes the current
 * position and returns the new one, or NULL with err set.
 */
struct path_state {
    const char *p;
    int     flags;
    str_t  *out;
    str_t  *err;
};

static bool
path_fail(struct path_state *ps, const char *why)
{
    str_set_cstr(ps->err, why);
    return false;
}

/* A domain: host name or literal, ended by one of the "stop" characters or NUL. */
static bool
path_domain(struct path_state *ps, const char *stop, bool keep)
{
    const char *start = ps->p, *p = ps->p;
    size_t  len;

    if (*p == '[') {
        while (*p && *p != ']' && (unsigned char) *p > ' ' && *p != '<' && *p != '>')
            p++;
        if (*p != ']')
            return path_fail(ps, "unterminated address literal");
        p++;
    } else {
        while (*p && strchr(stop, *p) == NULL && (unsigned char) *p > ' ' && *p != 0x7f)
            p++;
    }
    len = (size_t) (p - start);
    if (len == 0)
        return path_fail(ps, "missing domain");
    if (*p && strchr(stop, *p) == NULL) {
        if ((unsigned char) *p < ' ' || *p == 0x7f)
            return path_fail(ps, "control character in address");
        return path_fail(ps, "bad character in domain");
    }
    /* One trailing dot is tolerated (and kept: rewriting removes it). */
    if (!domain_ok_len(start, (len > 1 && start[len - 1] == '.' && start[0] != '[')
                       ? len - 1 : len, (ps->flags & ADDR_PATH_UTF8) != 0))
        return path_fail(ps, start[0] == '[' ? "bad address literal" : "bad domain name");
    if (keep)
        str_append(ps->out, start, len);
    ps->p = p;
    return true;
}

/* Route "@a,@b:" (optional); on return ps->p is after the colon. */
static bool
path_route(struct path_state *ps)
{
    if (*ps->p != '@')
        return true;
    for (int hops = 0;; hops++) {
        if (hops > 100)
            return path_fail(ps, "source route too long");
        ps->p++;                                /* the '@' */
        if (!path_domain(ps, ",:>", false))
            return false;
        if (*ps->p == ':') {
            ps->p++;
            return true;
        }
        if (*ps->p != ',' || ps->p[1] != '@')
            return path_fail(ps, "bad source route");
        ps->p++;
    }
}

/* Local part: quoted string or dot-string, into ps->out unquoted. */
static bool
path_local(struct path_state *ps, const char *stop)
{
    const char *p = ps->p;
    bool    utf8 = (ps->flags & ADDR_PATH_UTF8) != 0;

    if (*p == '"') {
        for (p++;; p++) {
            unsigned char c = (unsigned char) *p;

            if (c == 0)
                return path_fail(ps, "unterminated quoted string");
            if (c == '"') {
                p++;
                break;
            }
            if (c == '\\') {
                c = (unsigned char) *++p;
                if (c < ' ' || c > '~')
                    return path_fail(ps, c == 0 ? "unterminated quoted string"
                                     : "bad quoted pair in local part");
                str_putc(ps->out, c);
                continue;
            }
            if (c >= 0x80) {
                size_t  n = utf8 ? utf8_len((const unsigned char *) p, strnlen(p, 4)) : 0;

                if (n == 0)
                    return path_fail(ps, utf8 ? "invalid UTF-8 in local part"
                                     : "8-bit character in address");
                str_append(ps->out, p, n);
                p += n - 1;
                continue;
            }
            if (c < ' ' || c == 0x7f)
                return path_fail(ps, "control character in address");
            str_putc(ps->out, c);
        }
    } else {
        const char *start = p;

        while (*p && strchr(stop, *p) == NULL) {
            unsigned char c = (unsigned char) *p;

            if (c >= 0x80) {
                size_t  n = utf8 ? utf8_len((const unsigned char *) p, strnlen(p, 4)) : 0;

                if (n == 0)
                    return path_fail(ps, utf8 ? "invalid UTF-8 in local part"
                                     : "8-bit character in address");
                p += n;
                continue;
            }
            if (c < ' ' || c == 0x7f)
                return path_fail(ps, "control character in address");
            if (c != '.' && !is_atext(c))
                return path_fail(ps, c == ' ' ? "space in address" : "bad character in local part");
            p++;
        }
        str_append(ps->out, start, (size_t) (p - start));
    }
    ps->p = p;
    return true;
}

bool
addr_parse_path(const char *text, str_t *addr, const char **rest, int flags, str_t *err)
{
    struct path_state ps = {.p = text, .flags = flags, .out = addr, .err = err};
    bool    bracket;
    const char *stop;

    str_reset(addr);
    str_reset(err);
    while (*ps.p == ' ' || *ps.p == '\t')
        ps.p++;
    bracket = *ps.p == '<';
    if (!bracket && (flags & ADDR_PATH_STRICT))
        return path_fail(&ps, "missing '<'");
    if (bracket)
        ps.p++;
    stop = bracket ? "@>" : "@ \t";
    if (bracket && *ps.p == '>') {
        if (!(flags & ADDR_PATH_ALLOW_EMPTY))
            return path_fail(&ps, "empty address not allowed");
        ps.p++;
        if (rest)
            *rest = ps.p;
        return true;
    }
    if (*ps.p == 0 || (!bracket && (*ps.p == ' ' || *ps.p == '\t')))
        return path_fail(&ps, bracket ? "missing '>'" : "missing address");
    if (bracket && !path_route(&ps))
        goto fail;
    if (!path_local(&ps, stop))
        goto fail;
    if (str_len(addr) == 0 && *ps.p != '@')
        return path_fail(&ps, "empty local part");
    if (*ps.p == '@') {
        str_putc(addr, '@');
        ps.p++;
        if (!path_domain(&ps, bracket ? ">" : " \t", true))
            goto fail;
    }
    if (bracket) {
        if (*ps.p != '>') {
            path_fail(&ps, *ps.p == 0 ? "missing '>'" : "unexpected text before '>'");
            goto fail;
        }
        ps.p++;
    } else if (*ps.p == '<' || *ps.p == '>') {
        path_fail(&ps, "unbalanced angle brackets");
        goto fail;
    }
    if (str_len(addr) > ADDR_MAX_LEN) {
        path_fail(&ps, "address too long");
        goto fail;
    }
    if (memchr(str_cstr(addr), 0, str_len(addr)) != NULL) {
        path_fail(&ps, "NUL byte in address");
        goto fail;
    }
    if (rest)
        *rest = ps.p;
    return true;

fail:
    str_reset(addr);
    return false;
}

/*
 * Header address lists. Tokens of the value, then a walk over them.
 */
enum tok_type {
    TOK_ATOM,               /* atext run, possibly with dots in obs forms: stored as is */
    TOK_QSTRING,            /* quoted string, stored unquoted */
    TOK_DOMLIT,             /* [..], stored with brackets, white space removed */
    TOK_SPECIAL,            /* one of < > @ , ; : . */
    TOK_BAD,                /* a character that has no place in an address */
};

struct tok {
    enum tok_type type;
    int     ch;             /* TOK_SPECIAL: the character */
    size_t  off, len;       /* TOK_ATOM/QSTRING/DOMLIT: text in the token buffer */
};

struct hdr_state {
    struct tok *toks;
    size_t  ntok, cap;
    str_t  *text;           /* unquoted token texts */
};

static bool
tok_add(struct hdr_state *hs, enum tok_type type, int ch, size_t off, size_t len)
{
    if (hs->ntok >= ADDR_HDR_MAX_TOKENS)
        return false;
    hs->toks = mem_grow_array(hs->toks, &hs->cap, hs->ntok + 1, sizeof(*hs->toks));
    hs->toks[hs->ntok++] = (struct tok) {.type = type, .ch = ch, .off = off, .len = len};
    return true;
}

/* Tokenize value; false when unbalanced or too big. */
static bool
hdr_tokenize(struct hdr_state *hs, const char *v, size_t len)
{
    size_t  i = 0;

    while (i < len) {
        unsigned char c = (unsigned char) v[i];

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else if (c == '(') {
            int     depth = 0;

            do {
                if (i >= len)
                    return false;                       /* unterminated comment */
                c = (unsigned char) v[i++];
                if (c == '\\' && i < len)
                    i++;
                else if (c == '(' && ++depth > ADDR_HDR_MAX_NEST)
                    return false;
                else if (c == ')')
                    depth--;
                else if (c == 0)
                    return false;
            } while (depth > 0);
        } else if (c == '"') {
            size_t  off = str_len(hs->text);

            for (i++;; i++) {
                if (i >= len || v[i] == 0)
                    return false;
                if (v[i] == '"')
                    break;
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                if (v[i] == '\r' || v[i] == '\n')
                    continue;                           /* folding inside quotes */
                str_putc(hs->text, v[i]);
            }
            i++;
            if (!tok_add(hs, TOK_QSTRING, 0, off, str_len(hs->text) - off))
                return false;
        } else if (c == '[') {
            size_t  off = str_len(hs->text);

            str_putc(hs->text, '[');
            for (i++;; i++) {
                if (i >= len || v[i] == 0 || v[i] == '[' || v[i] == '\\')
                    return false;
                if (v[i] == ']')
                    break;
                if (v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
                    str_putc(hs->text, v[i]);
            }
            i++;
            str_putc(hs->text, ']');
            if (!tok_add(hs, TOK_DOMLIT, 0, off, str_len(hs->text) - off))
                return false;
        } else if (c != 0 && strchr("<>@,;:.", c) != NULL) {
            if (!tok_add(hs, TOK_SPECIAL, c, 0, 0))
                return false;
            i++;
        } else if (c == 0 || c == ')' || c == ']') {
            return false;
        } else if (is_atext(c)) {
            size_t  off = str_len(hs->text);

            while (i < len && is_atext((unsigned char) v[i]))
                str_putc(hs->text, v[i++]);
            if (!tok_add(hs, TOK_ATOM, 0, off, str_len(hs->text) - off))
                return false;
        } else {
            if (!tok_add(hs, TOK_BAD, c, 0, 0))     /* control character, '\\' */
                return false;
            i++;
        }
    }
    return true;
}

static bool
tok_is(const struct tok *t, int ch)
{
    return t->type == TOK_SPECIAL && t->ch == ch;
}

static bool
tok_word(const struct tok *t)
{
    return t->type == TOK_ATOM || t->type == TOK_QSTRING;
}

/*
 * Build an addr-spec from tokens [a, b) into out: [route] word *("." word)
 * ["@" domain]. False when the tokens are not one address.
 */
static bool
hdr_addr_spec(struct hdr_state *hs, size_t a, size_t b, str_t *out)
{
    const struct tok *t = hs->toks;
    size_t  i = a;

    str_reset(out);
    /* Obsolete route: "@a,@b:" before the address. */
    if (i < b && tok_is(&t[i], '@')) {
        while (i < b && !tok_is(&t[i], ':'))
            i++;
        if (i == b)
            return false;
        i++;
    }
    /* Local part: words separated by dots (obs: dots may repeat). */
    if (i == b || !tok_word(&t[i]))
        return false;
    for (bool want_word = true; i < b && !tok_is(&t[i], '@'); i++) {
        if (tok_word(&t[i]) && want_word) {
            str_append(out, str_cstr(hs->text) + t[i].off, t[i].len);
            want_word = false;
        } else if (tok_is(&t[i], '.')) {
            str_putc(out, '.');
            want_word = true;
        } else {
            return false;
        }
    }
    if (i < b) {
        i++;                                    /* '@' */
        str_putc(out, '@');
        if (i == b)
            return false;
        if (t[i].type == TOK_DOMLIT) {
            str_append(out, str_cstr(hs->text) + t[i].off, t[i].len);
            i++;
        } else {
            for (bool want_word = true; i < b; i++) {
                if (t[i].type == TOK_ATOM && want_word) {
                    str_append(out, str_cstr(hs->text) + t[i].off, t[i].len);
                    want_word = false;
                } else if (tok_is(&t[i], '.') && !want_word) {
                    str_putc(out, '.');
                    want_word = true;
                } else {
                    return false;
                }
            }
        }
        if (i != b)
            return false;
    }
    return str_len(out) <= ADDR_MAX_LEN && memchr(str_cstr(out), 0, str_len(out)) == NULL;
}

/*
 * One mailbox in tokens [a, b): "phrase <addr>" or a bare addr-spec.
 * Returns 1 when an address was passed to fn, 0 when the segment was empty
 * or not usable, -1 for unbalanced angle brackets.
 */
static int
hdr_mailbox(struct hdr_state *hs, size_t a, size_t b, str_t *out, addr_list_fn fn, void *ctx)
{
    const struct tok *t = hs->toks;
    size_t  lt = b, gt = b;

    if (a == b)
        return 0;
    for (size_t i = a; i < b; i++) {
        if (tok_is(&t[i], '<') && lt == b)
            lt = i;
        else if (tok_is(&t[i], '<'))
            return -1;
        else if (tok_is(&t[i], '>') && lt != b && gt == b)
            gt = i;
        else if (tok_is(&t[i], '>'))
            return -1;
    }
    if (lt != b) {
        if (gt == b)
            return -1;
        a = lt + 1;
        b = gt;
        if (a == b)
            return 0;                           /* <> */
    }
    for (size_t i = a; i < b; i++)
        if (t[i].type == TOK_BAD)
            return 0;
    if (!hdr_addr_spec(hs, a, b, out))
        return 0;
    fn(str_cstr(out), ctx);
    return 1;
}

int
addr_parse_header(const char *value, size_t len, addr_list_fn fn, void *ctx)
{
    struct hdr_state hs = {0};
    str_t  *out;
    int     count = 0, bad = 0;
    size_t  start = 0;
    bool    in_angle = false, in_group = false;

    hs.text = str_new(len + 16);
    if (!hdr_tokenize(&hs, value, len)) {
        /*
         * Keep only the addresses completed before the damage: the tokens
         * after the last separator may be a cut-off piece of one.
         */
        bad = 1;
        while (hs.ntok > 0 && !tok_is(&hs.toks[hs.ntok - 1], ',')
               && !tok_is(&hs.toks[hs.ntok - 1], ';'))
            hs.ntok--;
    }
    out = str_new(64);
    for (size_t i = 0; i <= hs.ntok; i++) {
        const struct tok *t = i < hs.ntok ? &hs.toks[i] : NULL;

        if (t && tok_is(t, '<'))
            in_angle = true;
        else if (t && tok_is(t, '>'))
            in_angle = false;
        if (t && in_angle)
            continue;
        if (t && tok_is(t, ':') && !in_group) {
            /* Group: what came before was its display name. */
            bool    is_group = true;

            for (size_t j = start; j < i; j++)
                if (!tok_word(&hs.toks[j]) && !tok_is(&hs.toks[j], '.'))
                    is_group = false;
            if (is_group) {
                in_group = true;
                start = i + 1;
            }
            continue;
        }
        if (t == NULL || tok_is(t, ',') || tok_is(t, ';')) {
            int     rc = hdr_mailbox(&hs, start, i, out, fn, ctx);

            if (rc < 0) {
                bad = 1;
                break;
            }
            count += rc;
            if (t && tok_is(t, ';'))
                in_group = false;
            start = i + 1;
        }
    }
    if (in_angle)
        bad = 1;
    str_free(out);
    str_free(hs.text);
    mem_free(hs.toks);
    return bad ? -1 : count;
}

/* Does the local part of len bytes need quotes to be a dot-string? */
static bool
local_needs_quotes(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
            return true;
    }
    return false;
}

void
addr_externalize(str_t *out, const char *internal)
{
    const char *at = strrchr(internal, '@');
    size_t  llen = at ? (size_t) (at - internal) : strlen(internal);

    str_reset(out);
    if (*internal == 0)
        return;
    if (!local_needs_quotes(internal, llen)) {
        str_append(out, internal, llen);
    } else {
        str_putc(out, '"');
        for (size_t i = 0; i < llen; i++) {
            if (internal[i] == '"' || internal[i] == '\\')
                str_putc(out, '\\');
            str_putc(out, internal[i]);
        }
        str_putc(out, '"');
    }
    if (at)
        str_append_cstr(out, at);
}

void
addr_internalize(str_t *out, const char *external)
{
    const char *p = external;
    bool    quoted = false;

    str_reset(out);
    for (; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1]) {
                str_putc(out, *++p);
            } else if (*p == '"') {
                quoted = false;
            } else {
                str_putc(out, *p);
            }
        } else if (*p == '"') {
            quoted = true;
        } else if (*p == '@') {
            break;                              /* the domain is copied as is */
        } else {
            str_putc(out, *p);
        }
    }
    str_append_cstr(out, p);
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool
addr_xtext_decode(str_t *out, const char *xtext)
{
    str_reset(out);
    for (const char *p = xtext; *p; p++) {
        unsigned char c = (unsigned char) *p;

        if (c == '+') {
            int     hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            str_putc(out, hi * 16 + lo);
            p += 2;
        } else if (c < '!' || c > '~' || c == '=') {
            return false;
        } else {
            str_putc(out, c);
        }
    }
    return true;
}

void
addr_xtext_encode(str_t *out, const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            str_append_printf(out, "+%02X", *p);
        else
            str_putc(out, *p);
    }
}
