/*
 * maildrop.h - the record stream of a local submission, and its checker.
 *
 * sendmail writes a submission to postdrop as records (rec.h); postdrop
 * checks it, adds who submitted it and stores it in maildrop/; pickup checks
 * the stored file again before it hands it to cleanup. Both checks use the
 * same state machine here, fed one record at a time, so neither needs the
 * whole message in memory.
 *
 * The order (a subset of a queue file's, see rec_type.h):
 *     T            arrival time "SECONDS[.MICROSECONDS]"
 *     F            (optional) the sender's full name
 *     S            envelope sender (may be empty: the null sender)
 *     A            "name=value" attributes, each name at most once
 *     per recipient: O? N? R
 *     M            start of content
 *     N / L        content lines (L: piece of a longer line, followed by L or N)
 *     X            end of content
 *     E            end
 * Nothing may follow E.
 *
 * Which attributes are allowed depends on where the records come from:
 *   MAILDROP_FROM_USER (postdrop reading sendmail): submit_flags (only
 *     CLEANUP_FLAG_EXTRACT), dsn_envid, dsn_ret. submit_uid and submit_user
 *     are refused: only postdrop itself may state who submitted a message.
 *   MAILDROP_FROM_FILE (pickup reading maildrop/): the same plus submit_uid
 *     (required) and submit_user.
 *
 * Trust: the records are untrusted peer data (a local user wrote them).
 * Every value is checked for length, NUL and line breaks; a message naming
 * the first problem is kept in mc->error (safe to log: peer bytes escaped).
 */
#ifndef POSTERN_MAILDROP_H
#define POSTERN_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define MAILDROP_ADDR_MAX    2048   /* longest sender or recipient address */
#define MAILDROP_NAME_MAX    1024   /* longest full name */
#define MAILDROP_ATTR_MAX    1024   /* longest A record */
#define MAILDROP_ENVID_MAX   100    /* RFC 3461: ENVID of at most 100 characters */
#define MAILDROP_ENV_MAX     4096   /* read limit for any envelope record */

enum maildrop_origin {
    MAILDROP_FROM_USER,
    MAILDROP_FROM_FILE,
};

enum maildrop_result {
    MAILDROP_MORE = 0,      /* record accepted, more expected */
    MAILDROP_DONE = 1,      /* E accepted: the submission is complete */
    MAILDROP_BAD = -1,      /* rejected; mc->error says why */
};

struct maildrop_check {
    /* Set by maildrop_check_init(). */
    enum maildrop_origin origin;
    size_t  line_limit;         /* longest content record */
    long long size_limit;       /* content bytes (one "\n" per line); 0 = none */
    /* Results, valid once MAILDROP_DONE was returned. */
    long long content_size;
    long    rcpt_count;
    int     submit_flags;       /* CLEANUP_FLAG_EXTRACT or 0 */
    long long submit_uid;       /* -1 when not given */
    str_t   sender;
    str_t   error;
    /* Private. */
    int     state;
    bool    pending_orcpt, pending_notify, in_cont, seen_fullname;
    unsigned seen_attrs;
};

void    maildrop_check_init(struct maildrop_check *mc, enum maildrop_origin origin,
                            size_t line_limit, long long size_limit);
void    maildrop_check_free(struct maildrop_check *mc);
/* Check the next record. After MAILDROP_BAD or MAILDROP_DONE every call fails. */
int     maildrop_check_record(struct maildrop_check *mc, int type, const char *data, size_t len);
/* The longest record to accept from a reader, given the line limit. */
size_t  maildrop_max_record(size_t line_limit);

/*
 * authorized_submit_users: is "user" in "list"? The list holds names and
 * type:name tables, separated by commas or white space; "!" before an item
 * negates it; the first item that matches decides; no match means no.
 * Names compare without regard to ASCII case; a table matches when the
 * name is found in it (static:anyone matches everybody). Returns 1 yes,
 * 0 no, -1 when a table cannot be opened or answer (err says why: the
 * caller must treat this as a temporary failure).
 */
int     maildrop_user_allowed(const char *list, const char *user, str_t *err);

/*
 * Is "dir" listed in "list" (alternate_config_directories: paths separated
 * by commas or white space, compared exactly after removing trailing
 * slashes)?
 */
bool    maildrop_dir_listed(const char *list, const char *dir);

#endif
