/*
 * local_file.c - delivery to /file destinations of aliases and .forward
 * files, and the mailbox writer that mailbox delivery shares.
 *
 * A destination that ends in "/" is a Maildir, anything else an mbox file
 * (appended with a dot-lock and an fcntl lock by deliver_mbox). The write
 * happens with the effective ids of the list's owner: the user for a
 * .forward, the alias table's owner or default_privs for an alias, never
 * root. deliver.c refuses symbolic links and files the writer does not
 * own. mailbox_size_limit bounds the file after the append.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "local.h"
#include "log.h"
#include "mem.h"

void
local_file_write(struct local_ctx *ctx, const char *path, const struct local_owner *owner,
                 gid_t extra_gid, const char *what)
{
    struct deliver_request *rq = ctx->rq;
    bool    maildir = *path && path[strlen(path) - 1] == '/';
    long    limit = local_conf.mailbox_size_limit;
    str_t  *why = str_new(64);
    struct stat st;
    int     rc;

    if (limit > 0 && rq->message_size > limit) {
        local_result(ctx, LOCAL_BOUNCE, "5.2.2", "message is larger than the %s size limit "
                     "(%ld bytes)", what, limit);
        goto out;
    }
    if (!local_become(owner, extra_gid, why)) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "%s", str_cstr(why));
        goto out;
    }
    if (!maildir && limit > 0 && lstat(path, &st) == 0 && S_ISREG(st.st_mode)
        && st.st_size + rq->message_size > limit) {
        local_unbecome();
        local_result(ctx, LOCAL_BOUNCE, "5.2.2", "%s %s is full (mailbox_size_limit %ld bytes)",
                     what, path, limit);
        goto out;
    }
    rc = maildir ? deliver_maildir(rq, ctx->idx, path, why)
        : deliver_mbox(rq, ctx->idx, path, why);
    local_unbecome();
    if (rc == 0)
        local_result(ctx, LOCAL_SENT, "2.0.0", "delivered to %s%s: %s", maildir ? "maildir " : "",
                     what, path);
    else if (rc == DELIVER_FAIL_TEMP)
        local_result(ctx, LOCAL_DEFER, *deliver_fail_dsn() == '4' ? deliver_fail_dsn() : "4.2.0",
                     "cannot deliver to %s %s: %s", what, path, str_cstr(why));
    else
        local_result(ctx, LOCAL_BOUNCE, *deliver_fail_dsn() == '5' ? deliver_fail_dsn() : "5.2.0",
                     "cannot deliver to %s %s: %s", what, path, str_cstr(why));
  out:
    str_free(why);
}

void
local_file(struct local_ctx *ctx, const struct local_attr *a, const char *path,
           const struct local_owner *owner)
{
    struct local_owner o;
    str_t  *key = str_new(64);

    (void) a;
    str_printf(key, "file:%s", path);
    if (local_dup(ctx, str_cstr(key)))
        goto out;
    if (owner && owner->uid != 0) {
        local_owner_copy(&o, owner);
    } else if (!local_default_privs(&o, key)) {
        local_result(ctx, LOCAL_DEFER, "4.3.5", "cannot deliver to file %s: %s", path,
                     str_cstr(key));
        goto out;
    }
    local_file_write(ctx, path, &o, (gid_t) -1, "file");
    local_owner_free(&o);
  out:
    str_free(key);
}
