/*
 * cleanup_envelope.c - envelope records: checks, rewriting, duplicates.
 *
 * The client's T, F, S, A, O, N and R records arrive in an order that
 * cleanup_main.c has already checked. Here each one's contents are checked
 * (lengths, NUL and control bytes, number formats, attribute names), the
 * sender and every recipient are rewritten to canonical form through the
 * trivial-rewrite service, and duplicate recipients are dropped.
 *
 * Rewriting context: the A record "rewrite_context" when the client sent
 * one, else "local" for local submissions (CLEANUP_FLAG_LOCAL) and "remote"
 * otherwise. Because A records come after S, the sender is rewritten (and
 * S and the A records are written) only when the first recipient or M
 * arrives. If the rewrite service fails, the message is deferred
 * ("4.3.0 address rewriting failed"): nothing is guessed.
 *
 * Duplicates: a recipient is dropped when the same canonical address with
 * the same ORCPT and the same NOTIFY was already written (as Postfix does:
 * two requests that differ in DSN options are both honoured).
 *
 * Trust: every byte comes from the client. Bad data is a protocol error
 * (CLEANUP_STAT_BAD) with a warning naming the record.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cleanup.h"
#include "cleanup_proto.h"
#include "log.h"
#include "mem.h"
#include "rec.h"
#include "rewrite_clnt.h"

#define CLEANUP_ATTR_NAME_MAX 64

/* The A record names a client may send. */
static const char *const known_attrs[] = {
    REC_ATTR_CLIENT_NAME, REC_ATTR_CLIENT_ADDR, REC_ATTR_CLIENT_PORT, REC_ATTR_HELO_NAME,
    REC_ATTR_PROTOCOL, REC_ATTR_ENCODING, REC_ATTR_SMTPUTF8, REC_ATTR_DSN_ENVID,
    REC_ATTR_DSN_RET, REC_ATTR_LOG_IDENT, REC_ATTR_RWR_CONTEXT, REC_ATTR_TRACE_FLAGS,
    REC_ATTR_SUBMIT_UID, NULL,
};

void
cleanup_envelope_init(struct cleanup_state *st)
{
    st->attr_seen = htable_new(16);
    st->rcpt_seen = htable_new(16);
    st->pend_attrs = str_new(256);
}

void
cleanup_envelope_free(struct cleanup_state *st)
{
    htable_free(st->attr_seen, NULL);
    htable_free(st->rcpt_seen, NULL);
    str_free(st->pend_attrs);
    mem_free(st->fullname);
    mem_free(st->sender);
    mem_free(st->sender_canon);
    mem_free(st->pend_orcpt);
    mem_free(st->first_rcpt);
}

/* An address in internal form: bounded, no control bytes. */
static bool
address_ok(const str_t *data)
{
    if (str_len(data) > ADDR_MAX_LEN)
        return false;
    for (size_t i = 0; i < str_len(data); i++) {
        unsigned char c = (unsigned char) data->data[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static void
bad_record(struct cleanup_state *st, int type, const char *why)
{
    log_warn("%s: bad %s record from client: %s", st->queue_id, rec_type_name(type), why);
    cleanup_error(st, CLEANUP_STAT_BAD, "4.3.0 internal protocol error");
}

/* T: "SECONDS.MICROSECONDS", digits only. */
static void
time_record(struct cleanup_state *st, const str_t *data)
{
    const char *p = str_cstr(data), *dot = memchr(p, '.', str_len(data));
    long long sec = 0;
    long    usec = 0;
    size_t  nsec, nusec;

    if (dot == NULL || !cleanup_text_ok(p, str_len(data))) {
        bad_record(st, REC_TYPE_TIME, "not SECONDS.MICROSECONDS");
        return;
    }
    nsec = (size_t) (dot - p);
    nusec = str_len(data) - nsec - 1;
    if (nsec < 1 || nsec > 12 || nusec < 1 || nusec > 6) {
        bad_record(st, REC_TYPE_TIME, "not SECONDS.MICROSECONDS");
        return;
    }
    for (size_t i = 0; i < nsec; i++) {
        if (!isdigit((unsigned char) p[i])) {
            bad_record(st, REC_TYPE_TIME, "not SECONDS.MICROSECONDS");
            return;
        }
        sec = sec * 10 + (p[i] - '0');
    }
    for (size_t i = 0; i < nusec; i++) {
        if (!isdigit((unsigned char) dot[1 + i])) {
            bad_record(st, REC_TYPE_TIME, "not SECONDS.MICROSECONDS");
            return;
        }
        usec = usec * 10 + (dot[1 + i] - '0');
    }
    for (size_t i = nusec; i < 6; i++)
        usec *= 10;
    st->arrival_sec = sec;
    st->arrival_usec = usec;
    if (cleanup_out_ok(st)) {
        str_t  *t = str_new(32);

        str_printf(t, "%lld.%06ld", sec, usec);
        cleanup_out_record(st, REC_TYPE_TIME, str_cstr(t), str_len(t));
        str_free(t);
    }
}

/* A: "name=value" with a known name, each name once, text values. */
static void
attr_record(struct cleanup_state *st, const str_t *data)
{
    const char *p = str_cstr(data), *eq = memchr(p, '=', str_len(data));
    const char *value;
    char    name[CLEANUP_ATTR_NAME_MAX + 1];
    size_t  nlen;
    bool    known = false;

    if (eq == NULL || eq == p || (size_t) (eq - p) > CLEANUP_ATTR_NAME_MAX
        || !cleanup_text_ok(p, str_len(data))) {
        bad_record(st, REC_TYPE_ATTR, "not name=value");
        return;
    }
    nlen = (size_t) (eq - p);
    memcpy(name, p, nlen);
    name[nlen] = 0;
    value = eq + 1;
    for (const char *const *k = known_attrs; *k; k++)
        if (strcmp(*k, name) == 0)
            known = true;
    if (!known) {
        bad_record(st, REC_TYPE_ATTR, "unknown attribute name");
        return;
    }
    if (!htable_insert(st->attr_seen, name, NULL)) {
        bad_record(st, REC_TYPE_ATTR, "attribute sent twice");
        return;
    }
    if (strcmp(name, REC_ATTR_RWR_CONTEXT) == 0) {
        if (strcmp(value, "local") == 0)
            st->rewrite_rule = "local";
        else if (strcmp(value, "remote") == 0)
            st->rewrite_rule = "remote";
        else {
            bad_record(st, REC_TYPE_ATTR, "rewrite_context is neither local nor remote");
            return;
        }
    } else if (strcmp(name, REC_ATTR_DSN_RET) == 0) {
        if (strcmp(value, "1") != 0 && strcmp(value, "2") != 0) {
            bad_record(st, REC_TYPE_ATTR, "bad dsn_ret value");
            return;
        }
    }
    rec_put(st->pend_attrs, REC_TYPE_ATTR, p, str_len(data));
}

/* Rewrite addr by the message's rule; false (and a deferral) on failure. */
static bool
rewrite(struct cleanup_state *st, const char *addr, str_t *result)
{
    int     flags = rewrite_clnt(st->rewrite_rule, addr, result);

    if (flags & REWRITE_FLAG_FAIL) {
        if ((st->errs & CLEANUP_STAT_DEFER) == 0)
            log_warn("%s: address rewriting failed for <%s>: message not accepted, "
                     "try again later", st->queue_id, addr);
        cleanup_error(st, CLEANUP_STAT_DEFER, "4.3.0 address rewriting failed");
        return false;
    }
    return true;
}

/* The envelope header is complete: rewrite the sender, write S and the A records. */
void
cleanup_envelope_end(struct cleanup_state *st)
{
    str_t  *canon;

    if (st->envelope_done)
        return;
    st->envelope_done = true;
    if (st->rewrite_rule == NULL)
        st->rewrite_rule = (st->flags & CLEANUP_FLAG_LOCAL) ? "local" : "remote";
    if (st->sender == NULL)
        return;                     /* order error already reported */
    canon = str_new(64);
    if (*st->sender == 0 || rewrite(st, st->sender, canon)) {
        if (*st->sender == 0)
            str_reset(canon);
        if (str_len(canon) > ADDR_MAX_LEN) {
            log_warn("%s: sender address too long after rewriting", st->queue_id);
            cleanup_error(st, CLEANUP_STAT_CONT, "5.1.7 sender address too long");
        }
        st->sender_canon = mem_strdup(str_cstr(canon));
        cleanup_out_record(st, REC_TYPE_SENDER, str_cstr(canon), str_len(canon));
        if (cleanup_out_ok(st) && str_len(st->pend_attrs) > 0) {
            /* Already encoded records: append them as they are. */
            str_append_str(st->out, st->pend_attrs);
        }
    }
    str_free(canon);
}

void
cleanup_envelope_add_rcpt(struct cleanup_state *st, const char *addr, const char *orcpt,
                          int notify, bool do_rewrite)
{
    str_t  *canon = str_new(64);
    str_t  *key;

    if (do_rewrite) {
        if (!rewrite(st, addr, canon)) {
            str_free(canon);
            return;
        }
    } else {
        str_set_cstr(canon, addr);
    }
    if (str_len(canon) == 0 || str_len(canon) > ADDR_MAX_LEN) {
        log_warn("%s: recipient <%s>: empty or too long after rewriting: dropped",
                 st->queue_id, addr);
        str_free(canon);
        return;
    }
    key = str_new(64);
    str_printf(key, "%d\n%s\n%s", notify, orcpt ? orcpt : "", str_cstr(canon));
    if (htable_insert(st->rcpt_seen, str_cstr(key), NULL)) {
        if (st->rcpt_count >= CLEANUP_MAX_RECIPIENTS) {
            if ((st->errs & CLEANUP_STAT_CONT) == 0)
                log_warn("%s: more than %d recipients", st->queue_id, CLEANUP_MAX_RECIPIENTS);
            cleanup_error(st, CLEANUP_STAT_CONT, "5.5.3 too many recipients");
        } else {
            if (orcpt)
                cleanup_out_record(st, REC_TYPE_ORCPT, orcpt, strlen(orcpt));
            if (notify) {
                char    n[16];
                int     len = snprintf(n, sizeof(n), "%d", notify);

                cleanup_out_record(st, REC_TYPE_NOTIFY, n, (size_t) len);
            }
            cleanup_out_record(st, REC_TYPE_RCPT, str_cstr(canon), str_len(canon));
            st->rcpt_count++;
            if (st->first_rcpt == NULL)
                st->first_rcpt = mem_strdup(str_cstr(canon));
        }
    }
    str_free(key);
    str_free(canon);
}

/* N before M: a decimal DSN NOTIFY mask; NEVER excludes the others. */
static void
notify_record(struct cleanup_state *st, const str_t *data)
{
    long    v;

    if (!cleanup_text_ok(str_cstr(data), str_len(data)) || str_len(data) > 2
        || cstr_parse_long(str_cstr(data), &v) != 0 || v < 1 || v > 15
        || ((v & DSN_NOTIFY_NEVER) && v != DSN_NOTIFY_NEVER)) {
        bad_record(st, REC_TYPE_NOTIFY, "bad DSN NOTIFY mask");
        return;
    }
    st->pend_notify = (int) v;
}

void
cleanup_envelope_record(struct cleanup_state *st, int type, const str_t *data)
{
    switch (type) {
    case REC_TYPE_TIME:
        time_record(st, data);
        break;
    case REC_TYPE_FULLNAME:
        if (str_len(data) > CLEANUP_FULLNAME_MAX || !address_ok(data)) {
            bad_record(st, type, "too long or has control characters");
            break;
        }
        st->fullname = mem_strdup(str_cstr(data));
        cleanup_out_record(st, REC_TYPE_FULLNAME, str_cstr(data), str_len(data));
        break;
    case REC_TYPE_SENDER:
        if (!address_ok(data)) {
            bad_record(st, type, "too long or has control characters");
            st->sender = mem_strdup("");
            break;
        }
        st->sender = mem_strdup(str_cstr(data));
        break;
    case REC_TYPE_ATTR:
        attr_record(st, data);
        break;
    case REC_TYPE_ORCPT:
        cleanup_envelope_end(st);
        if (!address_ok(data) || memchr(str_cstr(data), ';', str_len(data)) == NULL) {
            bad_record(st, type, "not addr-type;address");
            break;
        }
        mem_free(st->pend_orcpt);
        st->pend_orcpt = mem_strdup(str_cstr(data));
        break;
    case REC_TYPE_NOTIFY:
        cleanup_envelope_end(st);
        notify_record(st, data);
        break;
    case REC_TYPE_RCPT:
        cleanup_envelope_end(st);
        if (str_len(data) == 0 || !address_ok(data)) {
            bad_record(st, type, "empty, too long or has control characters");
        } else if (++st->rcpt_received > CLEANUP_MAX_RECIPIENTS) {
            if ((st->errs & CLEANUP_STAT_CONT) == 0)
                log_warn("%s: more than %d recipients", st->queue_id, CLEANUP_MAX_RECIPIENTS);
            cleanup_error(st, CLEANUP_STAT_CONT, "5.5.3 too many recipients");
        } else {
            cleanup_envelope_add_rcpt(st, str_cstr(data), st->pend_orcpt, st->pend_notify, true);
        }
        mem_free(st->pend_orcpt);
        st->pend_orcpt = NULL;
        st->pend_notify = 0;
        break;
    default:
        log_panic("cleanup_envelope_record: unexpected record type %d", type);
    }
}
