/*
 * local.h - the local delivery agent's shared types.
 *
 * One request from qmgr (deliver_proto.h) holds recipients in the local
 * domains. For each one the agent walks Postfix's order: Delivered-To:
 * loop check, alias_maps, the user's ~/.forward, then the mailbox; aliases
 * and .forward files yield items (addresses, |commands, /files,
 * :include:/paths, \user) that are delivered in turn, recursively, under a
 * depth limit. The results of all the deliveries made for one queue
 * recipient fold into one result for qmgr: deferred beats bounced beats
 * sent.
 *
 * Files: local_main.c (service, per-recipient driver, results, privilege
 * switching), local_alias.c (alias tables, item lists, :include:),
 * local_forward.c (.forward files, re-queueing of non-local addresses),
 * local_mailbox.c (mbox / Maildir), local_command.c (|command),
 * local_file.c (/file), local_util.c (pure helpers, unit-tested).
 */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "config.h"
#include "deliver.h"
#include "dict.h"
#include "str.h"

#define LOCAL_MAX_DEPTH     20          /* nested alias/.forward/:include: expansions */
#define LOCAL_MAX_ITEMS     1000        /* items taken from one list */
#define LOCAL_LIST_MAX      (256 * 1024)/* biggest .forward or :include: file read */
#define LOCAL_OUTPUT_MAX    1024        /* command output kept for the reason */
#define LOCAL_RELAY         "local"

/* Where a destination came from: allow_mail_to_commands / _files classes. */
#define LOCAL_CLASS_ALIAS   (1 << 0)
#define LOCAL_CLASS_FORWARD (1 << 1)
#define LOCAL_CLASS_INCLUDE (1 << 2)

/* Outcomes, in increasing order of precedence when folded. */
enum local_status {
    LOCAL_SENT = 0,
    LOCAL_BOUNCE = 1,
    LOCAL_DEFER = 2,
};

/* An account: the rights a delivery runs with, and its environment. */
struct local_owner {
    uid_t   uid;
    gid_t   gid;
    char   *name;
    char   *home;
    char   *shell;
};

/* The agent's configuration, read once. */
struct local_conf {
    config_t *cfg;
    dict_t **alias;             /* alias_maps, opened once */
    uid_t  *alias_uid;          /* owner of each table's file (0 when unknown) */
    size_t  nalias;
    str_t  *alias_error;        /* non-empty: a table could not be opened */
    int     allow_commands;     /* LOCAL_CLASS_* mask */
    int     allow_files;
    const char *forward_path;   /* raw: holds $home etc. */
    const char *home_mailbox;
    const char *spool_dir;
    long    mailbox_size_limit;
    long    command_time_limit;
    const char *delimiter;
    const char *default_privs;
    const char *export_env;
    bool    root;               /* started as root: switch users */
};

extern struct local_conf local_conf;

/* One queue recipient being delivered: results fold in here. */
struct local_ctx {
    struct deliver_request *rq;
    size_t  idx;
    const char *rcpt;           /* rq->rcpt[idx].address */
    enum local_status status;
    int     count;              /* deliveries made / attempted */
    str_t  *dsn;
    str_t  *reason;
    char  **seen;               /* duplicate filter: "mbox:/path", "cmd:uid:text", ... */
    size_t  nseen, seen_cap;
    char  **chain;              /* "alias:name" / "forward:name" being expanded */
    size_t  nchain, chain_cap;
    char  **remote;             /* non-local addresses to re-queue */
    size_t  nremote, remote_cap;
};

/* What the current item is being delivered for (Postfix's local attributes). */
struct local_attr {
    const char *address;        /* the address being delivered (canonical) */
    const char *user;           /* local part, lower case, without extension */
    const char *extension;      /* "" when none */
    const char *local;          /* full local part, lower case */
    const char *domain;         /* "" when none */
    int     depth;
};

/* local_main.c */
void    local_result(struct local_ctx *ctx, enum local_status st, const char *dsn,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool    local_dup(struct local_ctx *ctx, const char *key);
bool    local_chain_has(const struct local_ctx *ctx, const char *key);
void    local_chain_push(struct local_ctx *ctx, const char *key);
void    local_chain_pop(struct local_ctx *ctx);
void    local_deliver_address(struct local_ctx *ctx, const char *address, int depth,
                              bool mailbox_only);
/* Privileges: become (effectively) o, and back. false with why on failure. */
bool    local_become(const struct local_owner *o, gid_t extra_gid, str_t *why);
void    local_unbecome(void);
bool    local_owner_by_name(const char *name, struct local_owner *o);
bool    local_owner_by_uid(uid_t uid, struct local_owner *o);
void    local_owner_free(struct local_owner *o);
void    local_owner_copy(struct local_owner *dst, const struct local_owner *src);
/* The account for commands and files when root would be the owner. */
bool    local_default_privs(struct local_owner *o, str_t *why);

/* local_alias.c */
void    local_alias_init(config_t *cfg);
/* 1: an alias was found and expanded; 0: no alias; results are in ctx. */
int     local_alias(struct local_ctx *ctx, const struct local_attr *a);
void    local_expand_list(struct local_ctx *ctx, const struct local_attr *a, const char *list,
                          const struct local_owner *owner, int cls);

/* local_forward.c */
/* 1: a usable .forward was found and expanded; 0: none. */
int     local_forward(struct local_ctx *ctx, const struct local_attr *a,
                      const struct local_owner *user);
/*
 * Read a list file (.forward, :include:) of at most LOCAL_LIST_MAX bytes
 * with o's rights into out; *st describes it. Returns 0, 1 when it does not
 * exist, -1 with why on any other problem (not a regular file, too big,
 * unreadable).
 */
int     local_read_list(const char *path, const struct local_owner *o, str_t *out,
                        struct stat *st, str_t *why);
/* Re-queue ctx->remote through cleanup (called once per queue recipient). */
void    local_forward_remote(struct local_ctx *ctx);

/* local_mailbox.c */
void    local_mailbox(struct local_ctx *ctx, const struct local_attr *a,
                      const struct local_owner *user);

/* local_command.c */
void    local_command(struct local_ctx *ctx, const struct local_attr *a, const char *command,
                      const struct local_owner *owner);

/* local_file.c */
void    local_file(struct local_ctx *ctx, const struct local_attr *a, const char *path,
                   const struct local_owner *owner);
/*
 * Write the message to path with owner's rights (plus extra_gid, or
 * (gid_t) -1): mbox, or Maildir when path ends in "/". "what" names the
 * destination in the result ("mailbox", "file").
 */
void    local_file_write(struct local_ctx *ctx, const char *path, const struct local_owner *owner,
                         gid_t extra_gid, const char *what);

/* local_util.c: pure helpers (no I/O), unit-tested. */
/*
 * Split an aliases(5) / .forward value into items: separated by commas
 * (and newlines), blanks trimmed, a "quoted item" unquoted, lines starting
 * with '#' skipped. Calls fn for each non-empty item; returns their count,
 * stopping after max.
 */
size_t  local_split_items(const char *text, size_t max,
                          void (*fn)(const char *item, void *ctx), void *ctx);
/* Parse "alias, forward, include" into a LOCAL_CLASS_* mask. */
int     local_class_mask(const char *text);
/*
 * Split a local part at the first character from delim (none when delim is
 * empty, or the part starts with it): user gets the name, ext the rest
 * (without the delimiter). Both are reset first.
 */
void    local_split_ext(const char *local, const char *delim, str_t *user, str_t *ext);
/*
 * Map a command's exit status to a result: LOCAL_SENT for 0, LOCAL_DEFER
 * for the temporary sysexits codes, LOCAL_BOUNCE otherwise. *dsn and
 * *text get the enhanced status code and a description.
 */
enum local_status local_exit_status(int code, const char **dsn, const char **text);
/*
 * Expand $name, ${name}, ${name?text}, ${name:text} and $$ in text into out
 * (reset first) using lookup, which returns NULL for an unknown name (that
 * expands to ""). The chosen text of ?/: is itself expanded. Returns false
 * on a syntax error (unbalanced braces, a bad name) or a nesting deeper
 * than 10 levels. The lookup decides what values are safe to insert.
 */
bool    local_expand_macros(const char *text, const char *(*lookup)(const char *name, void *ctx),
                            void *ctx, str_t *out);
/* Make command output fit for a reason: printable ASCII, blanks folded, bounded. */
void    local_clean_text(str_t *out, const char *data, size_t len, size_t max);

#endif
