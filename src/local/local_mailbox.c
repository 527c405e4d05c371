/*
 * local_mailbox.c - delivery to a user's own mailbox.
 *
 * home_mailbox (relative to the home directory) names it when set: a
 * trailing "/" makes it a Maildir, else an mbox file. Otherwise it is the
 * mbox mail_spool_directory/USER. The write runs with the user's ids; when
 * the spool directory is group-writable (the usual root:mail 2775 layout)
 * its group is added to the user's groups for the write, so the mailbox and
 * its dot-lock can be created there without root.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "local.h"
#include "log.h"
#include "mem.h"

/* Create the directories of a Maildir path below the home directory, as the user. */
static void
make_maildir_parents(const struct local_owner *user, const char *path)
{
    str_t  *dir = str_new(128), *why = str_new(32);
    size_t  start = strlen(user->home);

    if (!local_become(user, (gid_t) -1, why))
        goto out;
    for (size_t i = start + 1; path[i]; i++) {
        if (path[i] != '/')
            continue;
        str_set(dir, path, i);
        if (mkdir(str_cstr(dir), 0700) != 0 && errno != EEXIST)
            break;                      /* deliver_maildir reports the problem */
    }
    local_unbecome();
  out:
    str_free(dir);
    str_free(why);
}

void
local_mailbox(struct local_ctx *ctx, const struct local_attr *a, const struct local_owner *user)
{
    str_t  *path = str_new(128), *key = str_new(128);
    gid_t   extra = (gid_t) -1;
    struct stat st;

    (void) a;
    if (*local_conf.home_mailbox) {
        const char *rel = local_conf.home_mailbox;

        while (*rel == '/')
            rel++;
        str_printf(path, "%s%s%s", user->home,
                   user->home[strlen(user->home) - 1] == '/' ? "" : "/", rel);
    } else {
        str_printf(path, "%s/%s", local_conf.spool_dir, user->name);
        if (stat(local_conf.spool_dir, &st) == 0 && (st.st_mode & S_IWGRP) && st.st_gid != 0)
            extra = st.st_gid;
    }
    str_printf(key, "mailbox:%s", str_cstr(path));
    if (local_dup(ctx, str_cstr(key)))
        goto out;
    if (*local_conf.home_mailbox && str_cstr(path)[str_len(path) - 1] == '/')
        make_maildir_parents(user, str_cstr(path));
    local_file_write(ctx, str_cstr(path), user, extra, "mailbox");
  out:
    str_free(path);
    str_free(key);
}
