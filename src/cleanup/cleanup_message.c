/*
 * cleanup_message.c - content records: the header block, added headers, body.
 *
 * Content arrives as N records (a whole line) and L records (a piece of a
 * longer line). Lines are reassembled and written again split at
 * line_length_limit, so the queue file never holds a record longer than
 * that, whatever the client sent.
 *
 * The primary header block runs from the first line to the first empty
 * line, or to the first line that is neither a header ("name:" with a
 * printable name) nor a continuation (starting with a blank). Each header
 * is kept with its continuation lines: it is inspected unfolded and written
 * exactly as received. Inspection:
 *   Received:                  counted; hopcount_limit of them is too many
 *                              ("5.4.6 too many hops");
 *   Message-Id:                logged as "ID: message-id=...";
 *   Bcc:, Resent-Bcc:, Content-Length:, Return-Path:
 *                              removed (as Postfix does, for all mail);
 *   (Resent-)To/Cc/Bcc:        with CLEANUP_FLAG_EXTRACT, their addresses
 *                              become recipients (the Resent- ones when any
 *                              Resent- header is present, as sendmail -t).
 * At the end of the header block, for local submissions, for mail whose
 * rewrite context is "local" (smtpd says so for clients that match
 * local_header_rewrite_clients, as Postfix does), or with
 * always_add_missing_headers, missing headers are added after the existing
 * ones, in this order (Postfix's): Message-Id:, Date:, From:, then
 * undisclosed_recipients_header when there is no To:/Cc: (Resent-To:/Cc:).
 * When a Resent- header is present they are the Resent- variants (except
 * the To: line).
 *
 * header_size_limit bounds the header block. When it is reached, the
 * missing headers are added at that point, the header being collected is
 * written uninspected after them, and the rest of the message is treated as
 * body. (Adding them before that header keeps its continuation lines
 * attached to it.)
 *
 * message_size_limit is checked on the content as received, counting one
 * newline per line ("5.3.4 message file too big"). After any error the
 * rest of the content is read and counted but nothing more is inspected or
 * written.
 *
 * Trust: content is untrusted and may hold any byte; lengths are explicit
 * throughout, and text copied into log lines is made printable first.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "cleanup.h"
#include "cleanup_proto.h"
#include "log.h"
#include "mem.h"
#include "rec.h"

/* A hard ceiling for the header block when header_size_limit is 0. */
#define HEADER_BLOCK_HARD_MAX   (16L * 1024 * 1024)
/* Longest value shown in a log line. */
#define LOG_VALUE_MAX           200

#define HF_DROP     (1 << 0)    /* removed from the message */
#define HF_XRCPT    (1 << 1)    /* source of recipients for CLEANUP_FLAG_EXTRACT */
#define HF_RESENT   (1 << 2)    /* a Resent- header */

struct hdr_info {
    const char *name;
    enum cleanup_hdr type;
    int     flags;
};

static const struct hdr_info hdr_table[] = {
    {"Bcc", HDR_BCC, HF_DROP | HF_XRCPT},
    {"Cc", HDR_CC, HF_XRCPT},
    {"Content-Length", HDR_CONTENT_LENGTH, HF_DROP},
    {"Date", HDR_DATE, 0},
    {"From", HDR_FROM, 0},
    {"Message-Id", HDR_MESSAGE_ID, 0},
    {"Received", HDR_RECEIVED, 0},
    {"Resent-Bcc", HDR_RESENT_BCC, HF_DROP | HF_XRCPT | HF_RESENT},
    {"Resent-Cc", HDR_RESENT_CC, HF_XRCPT | HF_RESENT},
    {"Resent-Date", HDR_RESENT_DATE, HF_RESENT},
    {"Resent-From", HDR_RESENT_FROM, HF_RESENT},
    {"Resent-Message-Id", HDR_RESENT_MESSAGE_ID, HF_RESENT},
    {"Resent-To", HDR_RESENT_TO, HF_XRCPT | HF_RESENT},
    {"Return-Path", HDR_RETURN_PATH, HF_DROP},
    {"To", HDR_TO, HF_XRCPT},
};

static const struct hdr_info hdr_resent_other = {"Resent-", HDR_RESENT_OTHER, HF_RESENT};

#define SEEN(t)     (1UL << (t))
#define VISIBLE_RCPT (SEEN(HDR_TO) | SEEN(HDR_CC) | SEEN(HDR_RESENT_TO) | SEEN(HDR_RESENT_CC))

enum header_end { END_BLANK, END_NONHEADER, END_OVERFLOW, END_EOM };

void
cleanup_message_init(struct cleanup_state *st)
{
    st->line = str_new(256);
    st->hdr_raw = str_new(256);
    st->hdr_joined = str_new(256);
    st->extract_plain = str_new(0);
    st->extract_resent = str_new(0);
    st->phase = CONTENT_HEADERS;
}

void
cleanup_message_free(struct cleanup_state *st)
{
    str_free(st->line);
    str_free(st->hdr_raw);
    str_free(st->hdr_joined);
    str_free(st->extract_plain);
    str_free(st->extract_resent);
    mem_free(st->hdr_ends);
}

/*
 * If p[0..len) starts a header, the length of its name (without trailing
 * blanks before the colon), else 0.
 */
static size_t
header_name_len(const char *p, size_t len)
{
    size_t  i = 0, name_end;

    while (i < len && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
        i++;
    if (i == 0)
        return 0;
    name_end = i;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return (i < len && p[i] == ':') ? name_end : 0;
}

static const struct hdr_info *
header_classify(const char *name, size_t nlen)
{
    for (size_t i = 0; i < sizeof(hdr_table) / sizeof(hdr_table[0]); i++)
        if (strlen(hdr_table[i].name) == nlen && strncasecmp(hdr_table[i].name, name, nlen) == 0)
            return &hdr_table[i];
    if (nlen > 7 && strncasecmp(name, "Resent-", 7) == 0)
        return &hdr_resent_other;
    return NULL;
}

/* A printable, bounded copy of peer text for a log line. */
static void
log_safe(str_t *out, const char *p, size_t len)
{
    str_reset(out);
    for (size_t i = 0; i < len && i < LOG_VALUE_MAX; i++) {
        unsigned char c = (unsigned char) p[i];

        str_putc(out, (c < 0x20 || c >= 0x7f) ? '?' : c);
    }
}

static void
pending_clear(struct cleanup_state *st)
{
    str_reset(st->hdr_raw);
    str_reset(st->hdr_joined);
    st->hdr_nlines = 0;
}

static void
pending_add(struct cleanup_state *st, const char *p, size_t len)
{
    str_append(st->hdr_raw, p, len);
    st->hdr_ends = mem_grow_array(st->hdr_ends, &st->hdr_cap, st->hdr_nlines + 1,
                                  sizeof(*st->hdr_ends));
    st->hdr_ends[st->hdr_nlines++] = str_len(st->hdr_raw);
    str_append(st->hdr_joined, p, len);
}

static void
pending_write(struct cleanup_state *st)
{
    size_t  start = 0;

    for (size_t i = 0; i < st->hdr_nlines; i++) {
        cleanup_out_line(st, st->hdr_raw->data + start, st->hdr_ends[i] - start);
        start = st->hdr_ends[i];
    }
}

/* Note the pending header as seen (and count hops); returns its class or NULL. */
static const struct hdr_info *
pending_mark(struct cleanup_state *st)
{
    size_t  nlen = header_name_len(str_cstr(st->hdr_raw), st->hdr_ends[0]);
    const struct hdr_info *info = header_classify(str_cstr(st->hdr_raw), nlen);

    if (info == NULL)
        return NULL;
    st->headers_seen |= SEEN(info->type);
    if (info->flags & HF_RESENT)
        st->resent = true;
    if (info->type == HDR_RECEIVED && ++st->hops >= cleanup_conf.hopcount_limit
        && (st->errs & CLEANUP_STAT_HOPS) == 0) {
        log_info("%s: reject: too many hops (%ld Received: headers); from=<%s>",
                 st->queue_id, st->hops, st->sender ? st->sender : "");
        cleanup_error(st, CLEANUP_STAT_HOPS, "5.4.6 too many hops");
    }
    return info;
}

/* addr_parse_header() callback: collect an address, NUL-separated. */
static void
collect_addr(const char *addr, void *ctx)
{
    str_t  *list = ctx;

    if (*addr == 0 || strlen(addr) > ADDR_MAX_LEN)
        return;
    /* A bound on memory; add_rcpt enforces the real recipient limit. */
    if (str_len(list) > (size_t) CLEANUP_MAX_RECIPIENTS * 64)
        return;
    str_append(list, addr, strlen(addr) + 1);
}

/* The pending header is complete: inspect it, then write or drop it. */
static void
header_finish(struct cleanup_state *st)
{
    const struct hdr_info *info;
    const char *value;
    size_t  vlen, nlen;
    const char *colon;

    if (st->hdr_nlines == 0)
        return;
    info = pending_mark(st);
    if (info == NULL || st->errs) {
        if (!st->errs)
            pending_write(st);
        pending_clear(st);
        return;
    }
    nlen = str_len(st->hdr_joined);
    colon = memchr(str_cstr(st->hdr_joined), ':', nlen);
    value = colon + 1;
    vlen = nlen - (size_t) (value - str_cstr(st->hdr_joined));
    while (vlen > 0 && (*value == ' ' || *value == '\t'))
        value++, vlen--;
    if (info->type == HDR_MESSAGE_ID || info->type == HDR_RESENT_MESSAGE_ID) {
        str_t  *safe = str_new(64);

        log_safe(safe, value, vlen);
        log_info("%s: %smessage-id=%s", st->queue_id,
                 info->type == HDR_RESENT_MESSAGE_ID ? "resent-" : "", str_cstr(safe));
        if (info->type == HDR_MESSAGE_ID)
            st->message_id_logged = true;
        str_free(safe);
    }
    if ((info->flags & HF_XRCPT) && (st->flags & CLEANUP_FLAG_EXTRACT)) {
        if (addr_parse_header(value, vlen, collect_addr,
                              (info->flags & HF_RESENT) ? st->extract_resent
                              : st->extract_plain) < 0)
            log_warn("%s: malformed address list in %s: header", st->queue_id, info->name);
    }
    if ((info->flags & HF_DROP) == 0)
        pending_write(st);
    pending_clear(st);
}

/* Write one added header line. */
static void
add_header(struct cleanup_state *st, const str_t *line)
{
    cleanup_out_line(st, str_cstr(line), str_len(line));
}

/* Does a display name need quoting (anything beyond atext, blanks and 8-bit)? */
static bool
phrase_needs_quotes(const char *s)
{
    if (*s == 0)
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;

        if (c >= 0x80 || isalnum(c) || c == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", c))
            continue;
        return true;
    }
    return false;
}

/* Add the missing headers (see the file comment); returns true if any was added. */
static bool
add_missing(struct cleanup_state *st)
{
    const char *rs = st->resent ? "Resent-" : "";
    bool    added = false;
    str_t  *line, *tmp;

    if (st->errs)
        return false;
    if ((st->flags & CLEANUP_FLAG_LOCAL) == 0 && !cleanup_conf.always_add_missing_headers
        && (st->rewrite_rule == NULL || strcmp(st->rewrite_rule, "local") != 0)) {
        if (!st->message_id_logged)
            log_info("%s: message-id=<>", st->queue_id);
        return false;
    }
    line = str_new(128);
    tmp = str_new(64);
    if ((st->headers_seen & SEEN(st->resent ? HDR_RESENT_MESSAGE_ID : HDR_MESSAGE_ID)) == 0) {
        char    stamp[32];
        struct tm tm;
        time_t  t = st->create_time.tv_sec;

        if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
            log_panic("cannot format the time %lld", (long long) t);
        str_printf(tmp, "<%s.%s@%s>", stamp, st->queue_id, cleanup_conf.myhostname);
        str_printf(line, "%sMessage-Id: %s", rs, str_cstr(tmp));
        add_header(st, line);
        log_info("%s: %smessage-id=%s", st->queue_id, st->resent ? "resent-" : "", str_cstr(tmp));
        if (!st->resent)
            st->message_id_logged = true;
        added = true;
    }
    if (!st->message_id_logged)
        log_info("%s: message-id=<>", st->queue_id);
    if ((st->headers_seen & SEEN(st->resent ? HDR_RESENT_DATE : HDR_DATE)) == 0) {
        str_printf(line, "%sDate: ", rs);
        str_reset(tmp);
        cleanup_format_date(tmp, st->arrival_sec > 0 ? (time_t) st->arrival_sec
                            : st->create_time.tv_sec);
        str_append_str(line, tmp);
        add_header(st, line);
        added = true;
    }
    if ((st->headers_seen & SEEN(st->resent ? HDR_RESENT_FROM : HDR_FROM)) == 0) {
        const char *sender = st->sender_canon ? st->sender_canon : "";

        if (*sender)
            addr_externalize(tmp, sender);
        else
            str_set_cstr(tmp, "MAILER-DAEMON");
        str_printf(line, "%sFrom: ", rs);
        if (*sender && st->fullname && *st->fullname) {
            if (phrase_needs_quotes(st->fullname)) {
                str_putc(line, '"');
                for (const char *p = st->fullname; *p; p++) {
                    if (*p == '"' || *p == '\\')
                        str_putc(line, '\\');
                    str_putc(line, *p);
                }
                str_putc(line, '"');
            } else {
                str_append_cstr(line, st->fullname);
            }
            str_append_printf(line, " <%s>", str_cstr(tmp));
        } else {
            str_append_str(line, tmp);
        }
        add_header(st, line);
        added = true;
    }
    if ((st->headers_seen & VISIBLE_RCPT) == 0 && *cleanup_conf.undisclosed_header) {
        const char *h = cleanup_conf.undisclosed_header;

        if (header_name_len(h, strlen(h)) == 0) {
            log_warn("bad undisclosed_recipients_header \"%s\": need \"name: value\"", h);
        } else {
            str_set_cstr(line, h);
            add_header(st, line);
            added = true;
        }
    }
    str_free(line);
    str_free(tmp);
    return added;
}

/* Leave the header block; "blank_first" tells whether the ending line starts with a blank. */
static void
end_headers(struct cleanup_state *st, enum header_end how, bool blank_first)
{
    bool    added;

    if (how == END_OVERFLOW) {
        if (st->hdr_nlines > 0)
            (void) pending_mark(st);
        added = add_missing(st);
        if (!st->errs)
            pending_write(st);
        pending_clear(st);
    } else {
        header_finish(st);
        added = add_missing(st);
    }
    if (how == END_BLANK || (how == END_NONHEADER && added && blank_first))
        cleanup_out_line(st, "", 0);
    st->phase = CONTENT_BODY;
}

/* A body piece: write full line_length_limit chunks as L, the end of a line as N. */
static void
body_piece(struct cleanup_state *st, const char *p, size_t len, bool final)
{
    size_t  max = (size_t) cleanup_conf.line_length_limit, off = 0;

    str_append(st->line, p, len);
    while (str_len(st->line) - off > max) {
        st->message_size += (long long) max;
        cleanup_out_record(st, REC_TYPE_CONT, st->line->data + off, max);
        off += max;
    }
    if (off > 0) {
        memmove(st->line->data, st->line->data + off, str_len(st->line) - off);
        str_truncate(st->line, str_len(st->line) - off);
    }
    if (final) {
        cleanup_out_line(st, str_cstr(st->line), str_len(st->line));
        str_reset(st->line);
    }
    st->in_line = !final;
}

/* One complete line in the header block. */
static void
header_line(struct cleanup_state *st, const char *p, size_t len)
{
    st->hdr_block_size += len + 1;
    if (len == 0) {
        end_headers(st, END_BLANK, false);
    } else if ((p[0] == ' ' || p[0] == '\t') && st->hdr_nlines > 0) {
        pending_add(st, p, len);
    } else if (header_name_len(p, len) > 0) {
        header_finish(st);
        pending_add(st, p, len);
    } else {
        end_headers(st, END_NONHEADER, p[0] == ' ' || p[0] == '\t');
        cleanup_out_line(st, p, len);
    }
}

void
cleanup_message_record(struct cleanup_state *st, int type, const str_t *data)
{
    bool    final = (type == REC_TYPE_NORM);
    long    hmax = cleanup_conf.header_size_limit;

    st->input_size += (long long) str_len(data) + final;
    if (cleanup_conf.message_size_limit > 0 && st->input_size > cleanup_conf.message_size_limit
        && (st->errs & CLEANUP_STAT_SIZE) == 0) {
        log_info("%s: reject: message size exceeds message_size_limit %ld; from=<%s>",
                 st->queue_id, cleanup_conf.message_size_limit, st->sender ? st->sender : "");
        cleanup_error(st, CLEANUP_STAT_SIZE, "5.3.4 message file too big");
    }
    if (st->errs) {
        /* Nothing more will be written: only count the rest. */
        str_reset(st->line);
        st->in_line = !final;
        return;
    }
    if (st->phase == CONTENT_BODY) {
        body_piece(st, str_cstr(data), str_len(data), final);
        return;
    }
    if (hmax <= 0 || hmax > HEADER_BLOCK_HARD_MAX)
        hmax = HEADER_BLOCK_HARD_MAX;
    if (st->hdr_block_size + str_len(st->line) + str_len(data) > (size_t) hmax) {
        str_t  *held = str_new(str_len(st->line) + 1);

        log_info("%s: header block exceeds header_size_limit %ld: the rest is body",
                 st->queue_id, hmax);
        end_headers(st, END_OVERFLOW, false);
        str_append_str(held, st->line);
        str_reset(st->line);
        body_piece(st, str_cstr(held), str_len(held), false);
        body_piece(st, str_cstr(data), str_len(data), final);
        str_free(held);
        return;
    }
    str_append_str(st->line, data);
    st->in_line = !final;
    if (final) {
        header_line(st, str_cstr(st->line), str_len(st->line));
        str_reset(st->line);
    }
}

void
cleanup_message_end(struct cleanup_state *st)
{
    if (st->errs)
        return;
    if (st->in_line) {
        /* A last line without its end: finish it as a whole line. */
        str_t  *empty = str_new(1);

        cleanup_message_record(st, REC_TYPE_NORM, empty);
        str_free(empty);
    }
    if (st->phase == CONTENT_HEADERS && !st->errs)
        end_headers(st, END_EOM, false);
}

void
cleanup_message_extract(struct cleanup_state *st)
{
    const str_t *list = st->resent ? st->extract_resent : st->extract_plain;

    if ((st->flags & CLEANUP_FLAG_EXTRACT) == 0)
        return;
    for (size_t off = 0; off < str_len(list) && !st->errs;) {
        const char *a = list->data + off;

        cleanup_envelope_add_rcpt(st, a, NULL, 0, true);
        off += strlen(a) + 1;
    }
}

void
cleanup_format_date(str_t *out, time_t when)
{
    struct tm tm;
    char    buf[64], zone[16];
    long    off;

    if (localtime_r(&when, &tm) == NULL || strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S", &tm) == 0)
        log_panic("cannot format the time %lld", (long long) when);
    off = tm.tm_gmtoff / 60;
    str_append_printf(out, "%s %c%02ld%02ld", buf, off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    if (strftime(zone, sizeof(zone), "%Z", &tm) > 0)
        str_append_printf(out, " (%s)", zone);
}
