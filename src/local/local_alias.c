/*
 * local_alias.c - alias_maps lookups and the delivery of item lists
 * (aliases, .forward and :include: files).
 *
 * An alias is looked up by the full local part ("user+ext") first, then by
 * the user name without extension, in each table of alias_maps in turn.
 * A name that is already being expanded (an alias that refers to itself,
 * directly or through others) is not expanded again: delivery continues
 * with the user's .forward and mailbox, as in Postfix.
 *
 * Privileges: commands and files named in an alias run as the owner of the
 * table's file, or default_privs when that is root. :include: files are
 * read with the rights of the list's owner; commands and files found in
 * them run as the include file's owner (unless that is root: then the
 * list's owner stays).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "local.h"
#include "log.h"
#include "mem.h"

/* The file behind "type:name", for its owner. */
static uid_t
table_owner(const char *spec)
{
    const char *colon = strchr(spec, ':');
    str_t  *path = str_new(64);
    struct stat st;
    uid_t   uid = 0;

    if (colon && colon[1] == '/') {
        bool    indexed = strncmp(spec, "hash:", 5) == 0 || strncmp(spec, "lmdb:", 5) == 0
            || strncmp(spec, "btree:", 6) == 0;

        str_printf(path, "%s%s", colon + 1, indexed ? DICT_LMDB_SUFFIX : "");
        if (stat(str_cstr(path), &st) == 0)
            uid = st.st_uid;
    }
    str_free(path);
    return uid;
}

void
local_alias_init(config_t *cfg)
{
    const char *p = config_str(cfg, "alias_maps");
    str_t  *spec = str_new(64), *err = str_new(64);
    size_t  cap = 0, ucap = 0;

    local_conf.alias_error = str_new(0);
    while (*p) {
        size_t  len;
        dict_t *d;

        p += strspn(p, ", \t\r\n");
        if ((len = strcspn(p, ", \t\r\n")) == 0)
            break;
        str_set(spec, p, len);
        p += len;
        if ((d = dict_open(str_cstr(spec), 0, err)) == NULL) {
            log_warn("alias_maps: %s", str_cstr(err));
            if (str_len(local_conf.alias_error) == 0)
                str_set_cstr(local_conf.alias_error, str_cstr(err));
            continue;
        }
        local_conf.alias = mem_grow_array(local_conf.alias, &cap, local_conf.nalias + 1,
                                          sizeof(dict_t *));
        local_conf.alias_uid = mem_grow_array(local_conf.alias_uid, &ucap, local_conf.nalias + 1,
                                              sizeof(uid_t));
        local_conf.alias_uid[local_conf.nalias] = table_owner(str_cstr(spec));
        local_conf.alias[local_conf.nalias++] = d;
    }
    str_free(spec);
    str_free(err);
}

int
local_alias(struct local_ctx *ctx, const struct local_attr *a)
{
    const char *keys[2] = {a->local, a->user};
    size_t  nkeys = *a->extension ? 2 : 1;
    str_t  *value = str_new(128), *tag = str_new(64);
    int     done = 0;

    for (size_t k = 0; k < nkeys && !done; k++) {
        for (size_t t = 0; t < local_conf.nalias && !done; t++) {
            int     rc = dict_lookup(local_conf.alias[t], keys[k], value);

            if (rc == DICT_NOTFOUND)
                continue;
            if (rc == DICT_ERROR) {
                local_result(ctx, LOCAL_DEFER, "4.3.0", "alias lookup of \"%s\" failed: %s",
                             keys[k], dict_error(local_conf.alias[t]));
                done = 1;
                break;
            }
            str_printf(tag, "alias:%s", keys[k]);
            if (local_chain_has(ctx, str_cstr(tag)))
                goto out;               /* refers to itself: the user's own mailbox */
            local_chain_push(ctx, str_cstr(tag));
            if (local_conf.alias_uid[t] != 0) {
                struct local_owner o;

                if (local_owner_by_uid(local_conf.alias_uid[t], &o)) {
                    local_expand_list(ctx, a, str_cstr(value), &o, LOCAL_CLASS_ALIAS);
                    local_owner_free(&o);
                } else {
                    local_result(ctx, LOCAL_DEFER, "4.3.0", "alias table owner uid %ld has no "
                                 "account", (long) local_conf.alias_uid[t]);
                }
            } else {
                local_expand_list(ctx, a, str_cstr(value), NULL, LOCAL_CLASS_ALIAS);
            }
            local_chain_pop(ctx);
            done = 1;
        }
    }
  out:
    str_free(value);
    str_free(tag);
    return done;
}

/* ---- item lists -------------------------------------------------------- */

struct expand_state {
    struct local_ctx *ctx;
    const struct local_attr *a;
    const struct local_owner *owner;    /* NULL: default_privs */
    int     cls;
};

static const char *
class_name(int cls)
{
    return cls == LOCAL_CLASS_ALIAS ? "alias" : cls == LOCAL_CLASS_FORWARD ? "forward" : "include";
}

/* Deliver to the items of an :include: file. */
static void
include_file(struct expand_state *es, const char *path)
{
    struct local_ctx *ctx = es->ctx;
    struct local_owner reader, fowner;
    str_t  *text = str_new(1024), *why = str_new(64);
    struct stat st;
    int     rc;

    if (*path != '/') {
        local_result(ctx, LOCAL_BOUNCE, "5.3.5", ":include: path is not absolute: %s", path);
        goto out;
    }
    if (es->owner && es->owner->uid != 0)
        local_owner_copy(&reader, es->owner);
    else if (!local_default_privs(&reader, why)) {
        local_result(ctx, LOCAL_DEFER, "4.3.5", "cannot read %s: %s", path, str_cstr(why));
        goto out;
    }
    rc = local_read_list(path, &reader, text, &st, why);
    local_owner_free(&reader);
    if (rc != 0) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "cannot read include file %s: %s", path,
                     str_cstr(why));
        goto out;
    }
    if (st.st_mode & S_IWOTH) {
        local_result(ctx, LOCAL_DEFER, "4.7.0", "include file %s is world-writable", path);
        goto out;
    }
    str_printf(why, "include:%s", path);
    if (local_chain_has(ctx, str_cstr(why))) {
        local_result(ctx, LOCAL_BOUNCE, "5.4.6", "mail forwarding loop through %s", path);
        goto out;
    }
    local_chain_push(ctx, str_cstr(why));
    if (st.st_uid != 0 && local_owner_by_uid(st.st_uid, &fowner)) {
        struct local_attr sub = *es->a;

        sub.depth++;
        local_expand_list(ctx, &sub, str_cstr(text), &fowner, LOCAL_CLASS_INCLUDE);
        local_owner_free(&fowner);
    } else if (st.st_uid != 0) {
        local_result(ctx, LOCAL_DEFER, "4.3.0", "owner uid %ld of %s has no account",
                     (long) st.st_uid, path);
    } else {
        struct local_attr sub = *es->a;

        sub.depth++;
        local_expand_list(ctx, &sub, str_cstr(text), es->owner, LOCAL_CLASS_INCLUDE);
    }
    local_chain_pop(ctx);
  out:
    str_free(text);
    str_free(why);
}

static void
expand_item(const char *item, void *arg)
{
    struct expand_state *es = arg;
    struct local_ctx *ctx = es->ctx;

    if (es->a->depth >= LOCAL_MAX_DEPTH) {
        local_result(ctx, LOCAL_BOUNCE, "5.4.6", "mail forwarding loop for %s (expansion deeper "
                     "than %d levels)", ctx->rcpt, LOCAL_MAX_DEPTH);
        return;
    }
    if (item[0] == '|') {
        if (!(local_conf.allow_commands & es->cls)) {
            local_result(ctx, LOCAL_BOUNCE, "5.7.1", "mail to command is restricted (%s; see "
                         "allow_mail_to_commands)", class_name(es->cls));
            return;
        }
        local_command(ctx, es->a, item + 1, es->owner);
    } else if (item[0] == '/') {
        if (!(local_conf.allow_files & es->cls)) {
            local_result(ctx, LOCAL_BOUNCE, "5.7.1", "mail to file is restricted (%s; see "
                         "allow_mail_to_files)", class_name(es->cls));
            return;
        }
        local_file(ctx, es->a, item, es->owner);
    } else if (strncasecmp(item, ":include:", 9) == 0) {
        const char *path = item + 9;

        while (*path == ' ' || *path == '\t')
            path++;
        include_file(es, path);
    } else if (item[0] == '\\') {
        local_deliver_address(ctx, item + 1, es->a->depth + 1, true);
    } else {
        local_deliver_address(ctx, item, es->a->depth + 1, false);
    }
}

void
local_expand_list(struct local_ctx *ctx, const struct local_attr *a, const char *list,
                  const struct local_owner *owner, int cls)
{
    struct expand_state es = {.ctx = ctx, .a = a, .owner = owner, .cls = cls};

    if (local_split_items(list, LOCAL_MAX_ITEMS, expand_item, &es) == LOCAL_MAX_ITEMS)
        log_warn("%s: %s: only the first %d destinations of a list were used", ctx->rq->queue_id,
                 ctx->rcpt, LOCAL_MAX_ITEMS);
}
