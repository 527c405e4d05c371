/*
 * submit.c - sendmail's message and address reader; see submit.h.
 */
#include <ctype.h>
#include <string.h>

#include "rec.h"
#include "submit.h"

#define SUBMIT_CHUNK (64 * 1024)    /* return to the caller after this much output */

void
submit_input_init(struct submit_input *in, size_t line_limit, long long size_limit,
                  bool ignore_dots)
{
    memset(in, 0, sizeof(*in));
    in->line_limit = line_limit;
    in->size_limit = size_limit;
    in->ignore_dots = ignore_dots;
    str_init(&in->cur);
}

void
submit_input_free(struct submit_input *in)
{
    str_release(&in->cur);
}

/* Append the current piece as an L or N record; false when over the size limit. */
static bool
emit(struct submit_input *in, str_t *out, int type)
{
    /* SMTP transparency: the first piece of a line loses one leading dot. */
    if (in->smtp && !in->cont && str_len(&in->cur) > 0 && str_cstr(&in->cur)[0] == '.') {
        memmove(in->cur.data, in->cur.data + 1, str_len(&in->cur) - 1);
        str_truncate(&in->cur, str_len(&in->cur) - 1);
    }
    if (!in->over)
        rec_put(out, type, str_cstr(&in->cur), str_len(&in->cur));
    in->size += (long long) str_len(&in->cur) + (type == REC_TYPE_NORM);
    in->cont = (type == REC_TYPE_CONT);
    if (type == REC_TYPE_NORM)
        in->lines++;
    str_reset(&in->cur);
    if (in->size_limit <= 0 || in->size <= in->size_limit)
        return true;
    if (!in->smtp)
        return false;
    in->over = true;                /* read on to the "." line, keep nothing */
    return true;
}

/* Append the first n bytes of the current line as an L record, keeping the rest. */
static bool
emit_piece(struct submit_input *in, str_t *out, size_t n)
{
    size_t  rest = str_len(&in->cur) - n;
    char    held[1];

    if (rest > sizeof(held))
        return false;               /* cannot happen: at most the held-back CR */
    memcpy(held, str_cstr(&in->cur) + n, rest);
    str_truncate(&in->cur, n);
    if (!emit(in, out, REC_TYPE_CONT))
        return false;
    str_append(&in->cur, held, rest);
    return true;
}

/* A whole line ended (without its newline) in in->cur. Returns a status or MORE. */
static int
end_line(struct submit_input *in, str_t *out)
{
    if (!in->smtp && !in->cont && in->lines == 0 && str_len(&in->cur) >= 5
        && memcmp(str_cstr(&in->cur), "From ", 5) == 0) {
        str_reset(&in->cur);        /* a mailbox separator, not a header */
        in->lines = -1;             /* only the very first line is looked at */
        return SUBMIT_INPUT_MORE;
    }
    if (in->lines < 0)
        in->lines = 0;
    if ((!in->ignore_dots || in->smtp) && !in->cont && str_len(&in->cur) == 1
        && str_cstr(&in->cur)[0] == '.') {
        in->done = true;
        return in->over ? SUBMIT_INPUT_TOOBIG : SUBMIT_INPUT_OK;
    }
    if (!emit(in, out, REC_TYPE_NORM))
        return SUBMIT_INPUT_TOOBIG;
    return SUBMIT_INPUT_MORE;
}

int
submit_input_next(struct submit_input *in, stream_t *st, str_t *out)
{
    size_t  start = str_len(out);

    if (in->done)
        return SUBMIT_INPUT_OK;
    while (str_len(out) - start < SUBMIT_CHUNK) {
        int     c = stream_getc(st), rc;

        if (c < 0) {
            if (c != STREAM_EOF) {
                in->err = stream_errno(st);
                return SUBMIT_INPUT_ERROR;
            }
            in->done = true;
            if (in->smtp)
                return SUBMIT_INPUT_EOF;    /* no "." line: the client went away */
            /* A held-back CR at the very end is data: it gets its own piece. */
            if (in->line_limit > 0 && str_len(&in->cur) > in->line_limit
                && !emit_piece(in, out, in->line_limit))
                return SUBMIT_INPUT_TOOBIG;
            if (str_len(&in->cur) > 0 || in->cont) {
                rc = end_line(in, out);
                if (rc == SUBMIT_INPUT_TOOBIG)
                    return rc;
            }
            return SUBMIT_INPUT_OK;
        }
        if (c == '\n') {
            if (str_len(&in->cur) > 0 && str_cstr(&in->cur)[str_len(&in->cur) - 1] == '\r')
                str_truncate(&in->cur, str_len(&in->cur) - 1);
            if ((rc = end_line(in, out)) != SUBMIT_INPUT_MORE)
                return rc;
            continue;
        }
        if (in->line_limit > 0 && str_len(&in->cur) >= in->line_limit) {
            /* A CR right at the limit may be half of a CRLF: hold it back one byte. */
            if (c == '\r' && str_len(&in->cur) == in->line_limit) {
                str_putc(&in->cur, c);
                continue;
            }
            if (in->lines < 0)
                in->lines = 0;
            if (!emit_piece(in, out, in->line_limit))
                return SUBMIT_INPUT_TOOBIG;
        }
        str_putc(&in->cur, c);
    }
    return SUBMIT_INPUT_MORE;
}

/* Trim blanks and one pair of angle brackets: [*s, *s+*len). */
static void
strip_address(const char **s, size_t *len)
{
    const char *p = *s;
    size_t  n = *len;

    while (n > 0 && isspace((unsigned char) *p))
        p++, n--;
    while (n > 0 && isspace((unsigned char) p[n - 1]))
        n--;
    /* "Name <addr>": keep what is in the last angle brackets. */
    if (n >= 2 && p[n - 1] == '>' && p[0] != '<') {
        const char *lt = NULL;

        for (size_t i = 0; i < n - 1; i++)
            if (p[i] == '<')
                lt = p + i;
        if (lt) {
            n -= (size_t) (lt - p);
            p = lt;
        }
    }
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
        p++;
        n -= 2;
        while (n > 0 && isspace((unsigned char) *p))
            p++, n--;
        while (n > 0 && isspace((unsigned char) p[n - 1]))
            n--;
    }
    *s = p;
    *len = n;
}

void
submit_put_sender(str_t *out, const char *arg)
{
    size_t  len = strlen(arg);

    strip_address(&arg, &len);
    rec_put(out, REC_TYPE_SENDER, arg, len);
}

int
submit_put_recipients(str_t *out, const char *arg, int notify)
{
    const char *start = arg, *p;
    bool    quoted = false;
    int     angle = 0, count = 0;

    for (p = arg;; p++) {
        if (*p == 0 || (*p == ',' && !quoted && angle == 0)) {
            const char *a = start;
            size_t  len = (size_t) (p - start);

            strip_address(&a, &len);
            if (len > 0) {
                if (notify)
                    rec_putf(out, REC_TYPE_NOTIFY, "%d", notify);
                rec_put(out, REC_TYPE_RCPT, a, len);
                count++;
            }
            if (*p == 0)
                break;
            start = p + 1;
        } else if (*p == '\\' && quoted && p[1] != 0) {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (*p == '<' && !quoted) {
            angle++;
        } else if (*p == '>' && !quoted && angle > 0) {
            angle--;
        }
    }
    return count;
}
