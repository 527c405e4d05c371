/*
 * virtual.c - the virtual delivery agent: mailboxes of virtual domains.
 *
 * master.cf: virtual unix - n n - - virtual
 *
 * For each recipient of a request from qmgr (deliver_proto.h):
 *   1. the address (lower case) is looked up in virtual_mailbox_maps as
 *      user+ext@domain, then user@domain (recipient_delimiter), then
 *      @domain; no entry: bounce 5.1.1. The value is a path under
 *      virtual_mailbox_base: ending in "/" a Maildir, else an mbox file.
 *   2. the mailbox owner comes from virtual_uid_maps / virtual_gid_maps
 *      (same keys; "static:N" for everyone). Both unset: the agent delivers
 *      as the user it runs as, which only works when it does not run as
 *      root (an instance made by "postern init" as an ordinary user); as
 *      root, mail is deferred with a reason. A uid below
 *      virtual_minimum_uid is refused (deferred, configuration error).
 *   3. missing directories below virtual_mailbox_base (and a missing mbox
 *      file) are created, owned by the mailbox owner, without following
 *      symbolic links;
 *   4. the agent switches its effective uid/gid to the owner, writes the
 *      mailbox with deliver_maildir()/deliver_mbox() under a file size
 *      limit of virtual_mailbox_limit, and switches back.
 *
 * SECURITY: started as root (unpriv = n) so that it can take each mailbox
 * owner's identity; it never writes a mailbox as root: the queue file is
 * opened before the switch, every mailbox access happens with the owner's
 * effective uid, and directories it creates as root are created with
 * openat/mkdirat under O_NOFOLLOW and handed to the owner at once. It
 * trusts qmgr's request only as far as deliver_request_read() checks it,
 * and the tables as configuration (paths with ".." are still refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "deliver.h"
#include "dict.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "server.h"
#include "str.h"

#define VIRTUAL_RELAY   "virtual"
#define VIRTUAL_MAX_TABLES 32

struct table_list {
    const char *param;
    dict_t *dict[VIRTUAL_MAX_TABLES];
    size_t  count;
};

static struct {
    struct table_list mailbox, uid, gid;
    str_t  *table_error;        /* non-empty: a table could not be opened */
    const char *base;
    const char *delimiter;
    long    minimum_uid;
    long    mailbox_limit;
    bool    root;               /* can switch users */
} vconf;

/* Open the tables named in parameter param ("type:name, type:name ..."). */
static void
tables_open(config_t *cfg, struct table_list *tl, const char *param)
{
    char   *text = mem_strdup(config_str(cfg, param));
    str_t  *err = str_new(0);
    char   *save = NULL;

    tl->param = param;
    for (char *tok = strtok_r(text, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        dict_t *d;

        if (tl->count == VIRTUAL_MAX_TABLES) {
            str_printf(vconf.table_error, "%s: more than %d tables", param, VIRTUAL_MAX_TABLES);
            break;
        }
        if ((d = dict_open(tok, 0, err)) == NULL) {
            log_warn("%s: %s", param, str_cstr(err));
            if (str_len(vconf.table_error) == 0)
                str_printf(vconf.table_error, "%s: %s", param, str_cstr(err));
            continue;
        }
        tl->dict[tl->count++] = d;
    }
    mem_free(text);
    str_free(err);
}

/*
 * Look key up in every table of tl in turn: DICT_FOUND with value,
 * DICT_NOTFOUND, or DICT_ERROR with err set.
 */
static int
tables_lookup(struct table_list *tl, const char *key, str_t *value, str_t *err)
{
    for (size_t i = 0; i < tl->count; i++) {
        int     rc = dict_lookup(tl->dict[i], key, value);

        if (rc == DICT_FOUND)
            return rc;
        if (rc == DICT_ERROR) {
            str_printf(err, "%s lookup of \"%s\" failed: %s", tl->param, key,
                       dict_error(tl->dict[i]));
            return rc;
        }
    }
    return DICT_NOTFOUND;
}

/*
 * The Postfix search order for address addr (lower case, with a domain):
 * user+ext@domain, user@domain, @domain.
 */
static int
address_lookup(struct table_list *tl, const char *addr, str_t *value, str_t *err)
{
    const char *at = strrchr(addr, '@');
    str_t  *key = str_new(0);
    int     rc;

    if ((rc = tables_lookup(tl, addr, value, err)) != DICT_NOTFOUND)
        goto out;
    if (at != NULL && *vconf.delimiter) {
        size_t  cut = strcspn(addr + 1, vconf.delimiter) + 1;   /* not at position 0 */

        if (addr + cut < at) {
            str_set(key, addr, cut);
            str_append_cstr(key, at);
            if ((rc = tables_lookup(tl, str_cstr(key), value, err)) != DICT_NOTFOUND)
                goto out;
        }
    }
    if (at != NULL)
        rc = tables_lookup(tl, at, value, err);
out:
    str_free(key);
    return rc;
}

/* A decimal ID from a table; false when it is not one. */
static bool
parse_id(const char *text, long *id)
{
    return cstr_parse_long(text, id) == 0 && *id >= 0 && *id <= 0x7fffffffL;
}

/* A mailbox path from the table: relative, no "." or ".." components, no control bytes. */
static bool
path_ok(const char *p)
{
    const char *c = p;

    if (*p == 0)
        return false;
    for (const unsigned char *u = (const unsigned char *) p; *u; u++)
        if (*u < 0x20 || *u == 0x7f)
            return false;
    while (*c) {
        size_t  n = strcspn(c, "/");

        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n;
        while (*c == '/')
            c++;
    }
    return true;
}

/*
 * Create the missing directories of rel (each component up to, not
 * including, the last one when !last_too) under base, owned by uid:gid when
 * running as root. Symbolic links below base are refused. Returns 0, or a
 * DELIVER_FAIL_* with why.
 */
static int
make_dirs(const char *base, const char *rel, bool last_too, uid_t uid, gid_t gid, str_t *why,
          const char **dsn)
{
    char   *copy = mem_strdup(rel), *save = NULL, *next;
    int     dfd = open(*base ? base : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    str_t  *done = str_new(0);

    if (dfd < 0) {
        str_printf(why, "cannot open virtual_mailbox_base %s: %s", base, strerror(errno));
        *dsn = "4.3.5";
        rc = DELIVER_FAIL_TEMP;
        goto out;
    }
    str_set_cstr(done, base);
    next = strtok_r(copy, "/", &save);
    while (next != NULL) {
        char   *comp = next;
        int     fd;

        next = strtok_r(NULL, "/", &save);
        if (next == NULL && !last_too) {
            /* The mbox file: as root, create it for its owner (the directory may be root's). */
            if (vconf.root && (fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                                           | O_NOCTTY | O_CLOEXEC, 0600)) >= 0) {
                if (fchown(fd, uid, gid) != 0) {
                    str_printf(why, "cannot give mailbox %s/%s to uid %ld: %s", str_cstr(done),
                               comp, (long) uid, strerror(errno));
                    *dsn = "4.3.0";
                    rc = DELIVER_FAIL_TEMP;
                    if (unlinkat(dfd, comp, 0) != 0)
                        log_warn_errno("cannot remove %s/%s", str_cstr(done), comp);
                }
                close(fd);
            }
            break;
        }
        str_append_printf(done, "/%s", comp);
        fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            /*
             * Create the directory under a private name, give it to its
             * owner, then move it into place without replacing anything: a
             * second agent creating the same mailbox at the same moment
             * never sees it half made (still root's), and never has it
             * replaced under its feet.
             */
            char    tmp[NAME_MAX + 1];
            int     n = snprintf(tmp, sizeof(tmp), ".%.200s.%ld.tmp", comp, (long) getpid());

            if (n < 0 || (size_t) n >= sizeof(tmp)) {
                str_printf(why, "mailbox path component too long in %s", str_cstr(done));
                *dsn = "5.2.0";
                rc = DELIVER_FAIL_PERM;
                break;
            }
            (void) unlinkat(dfd, tmp, AT_REMOVEDIR);    /* left by a crash of this pid */
            if (mkdirat(dfd, tmp, next == NULL ? 0700 : 0755) != 0) {
                str_printf(why, "cannot create directory %s: %s", str_cstr(done), strerror(errno));
                *dsn = errno == ENOSPC ? "4.3.1" : errno == EDQUOT ? "4.2.2" : "4.2.0";
                rc = DELIVER_FAIL_TEMP;
                break;
            }
            if (vconf.root && fchownat(dfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
                str_printf(why, "cannot give directory %s to uid %ld: %s", str_cstr(done),
                           (long) uid, strerror(errno));
                *dsn = "4.3.0";
                rc = DELIVER_FAIL_TEMP;
                (void) unlinkat(dfd, tmp, AT_REMOVEDIR);
                break;
            }
            if (renameat2(dfd, tmp, dfd, comp, RENAME_NOREPLACE) != 0) {
                int     saved = errno;

                (void) unlinkat(dfd, tmp, AT_REMOVEDIR);
                if (saved != EEXIST) {
                    str_printf(why, "cannot create directory %s: %s", str_cstr(done),
                               strerror(saved));
                    *dsn = "4.2.0";
                    rc = DELIVER_FAIL_TEMP;
                    break;
                }
                /* Another agent made it first: use theirs. */
            }
            fd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            struct stat st;

            if ((errno == ELOOP || errno == ENOTDIR)
                && fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
                str_printf(why, "mailbox path %s is a symbolic link", str_cstr(done));
                *dsn = "5.2.0";
                rc = DELIVER_FAIL_PERM;
            } else if (errno == ENOTDIR) {
                str_printf(why, "mailbox path %s is not a directory", str_cstr(done));
                *dsn = "5.2.0";
                rc = DELIVER_FAIL_PERM;
            } else {
                str_printf(why, "cannot open directory %s: %s", str_cstr(done), strerror(errno));
                *dsn = "4.2.0";
                rc = DELIVER_FAIL_TEMP;
            }
            break;
        }
        close(dfd);
        dfd = fd;
    }
out:
    if (dfd >= 0)
        close(dfd);
    mem_free(copy);
    str_free(done);
    return rc;
}

/*
 * Mailbox paths that make_dirs() found (or made) sound a moment ago, so that
 * a run of deliveries to the same mailbox walks its path as root once per
 * DIRS_OK_MS, not per message. The delivery itself, as the owner, still
 * refuses a symbolic link as the mailbox; a failed delivery forgets the
 * path, so that the next one walks it again.
 */
#define DIRS_OK_SLOTS   16
#define DIRS_OK_MS      10000

static struct dirs_ok {
    char   *rel;
    uid_t   uid;
    gid_t   gid;
    int64_t until_ms;
} dirs_ok[DIRS_OK_SLOTS];

static struct dirs_ok *
dirs_ok_find(const char *rel, uid_t uid, gid_t gid)
{
    for (size_t k = 0; k < DIRS_OK_SLOTS; k++)
        if (dirs_ok[k].rel && strcmp(dirs_ok[k].rel, rel) == 0 && dirs_ok[k].uid == uid
            && dirs_ok[k].gid == gid)
            return &dirs_ok[k];
    return NULL;
}

static bool
dirs_known_ok(const char *rel, uid_t uid, gid_t gid)
{
    struct dirs_ok *d = dirs_ok_find(rel, uid, gid);

    return d && clock_mono_ms() < d->until_ms;
}

/* make_dirs() just passed for rel: remember it for DIRS_OK_MS. */
static void
dirs_remember(const char *rel, uid_t uid, gid_t gid)
{
    struct dirs_ok *d = dirs_ok_find(rel, uid, gid);

    if (d == NULL) {
        d = &dirs_ok[0];            /* a free slot, else the one that expires first */
        for (size_t k = 0; k < DIRS_OK_SLOTS && d->rel; k++)
            if (dirs_ok[k].rel == NULL || dirs_ok[k].until_ms < d->until_ms)
                d = &dirs_ok[k];
        mem_free(d->rel);
        *d = (struct dirs_ok) {.rel = mem_strdup(rel), .uid = uid, .gid = gid};
    }
    d->until_ms = clock_mono_ms() + DIRS_OK_MS;
}

static void
dirs_forget(const char *rel, uid_t uid, gid_t gid)
{
    struct dirs_ok *d = dirs_ok_find(rel, uid, gid);

    if (d) {
        mem_free(d->rel);
        *d = (struct dirs_ok) {0};
    }
}

/* Take the mailbox owner's identity (root only). false with why set. */
static bool
become(uid_t uid, gid_t gid, str_t *why)
{
    if (!vconf.root)
        return true;
    if (setgroups(1, &gid) != 0 || setegid(gid) != 0 || seteuid(uid) != 0) {
        str_printf(why, "cannot switch to uid %ld gid %ld: %s", (long) uid, (long) gid,
                   strerror(errno));
        if (seteuid(0) != 0 || setegid(0) != 0)
            log_fatal_errno("cannot switch back to root");
        return false;
    }
    return true;
}

/* Back to root after become(). Fatal when that fails: we must not go on as someone else. */
static void
unbecome(void)
{
    gid_t   root_gid = 0;

    if (!vconf.root)
        return;
    if (seteuid(0) != 0 || setegid(0) != 0 || setgroups(1, &root_gid) != 0)
        log_fatal_errno("cannot switch back to root");
}

/* Lower the file size limit for a delivery; restore it with limit_restore(). */
static void
limit_set(struct rlimit *saved)
{
    static struct rlimit start;     /* the process's own limit, read once */
    static bool known;
    struct rlimit lim;

    if (!known) {
        if (getrlimit(RLIMIT_FSIZE, &start) != 0)
            start.rlim_cur = start.rlim_max = RLIM_INFINITY;
        known = true;
    }
    *saved = start;
    if (vconf.mailbox_limit <= 0)
        return;
    lim = *saved;
    if (lim.rlim_max == RLIM_INFINITY || (rlim_t) vconf.mailbox_limit < lim.rlim_max)
        lim.rlim_cur = (rlim_t) vconf.mailbox_limit;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
        log_warn_errno("cannot set the file size limit to virtual_mailbox_limit");
}

static void
limit_restore(const struct rlimit *saved)
{
    if (setrlimit(RLIMIT_FSIZE, saved) != 0)
        log_warn_errno("cannot restore the file size limit");
}

/* Find uid and gid for addr. 0, or -1 after setting the recipient's deferral. */
static int
find_owner(struct deliver_request *rq, size_t i, const char *addr, uid_t *uid, gid_t *gid)
{
    str_t  *value = str_new(0), *err = str_new(0);
    long    u = -1, g = -1;
    int     rc = -1;

    if (vconf.uid.count == 0 && vconf.gid.count == 0) {
        if (vconf.root) {
            deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: "
                          "virtual_uid_maps and virtual_gid_maps are not set, and the virtual "
                          "agent will not deliver as root");
            goto out;
        }
        *uid = geteuid();
        *gid = getegid();
        rc = 0;
        goto out;
    }
    int     ur = address_lookup(&vconf.uid, addr, value, err);

    if (ur == DICT_FOUND && !parse_id(str_cstr(value), &u))
        ur = DICT_ERROR, str_printf(err, "bad uid \"%s\" for %s in virtual_uid_maps",
                                   str_cstr(value), addr);
    int     gr = ur == DICT_ERROR ? DICT_ERROR : address_lookup(&vconf.gid, addr, value, err);

    if (gr == DICT_FOUND && !parse_id(str_cstr(value), &g))
        gr = DICT_ERROR, str_printf(err, "bad gid \"%s\" for %s in virtual_gid_maps",
                                   str_cstr(value), addr);
    if (ur == DICT_ERROR || gr == DICT_ERROR) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: %s",
                      str_cstr(err));
        goto out;
    }
    if (ur == DICT_NOTFOUND || gr == DICT_NOTFOUND) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: "
                      "no %s for %s", ur == DICT_NOTFOUND ? "virtual_uid_maps entry"
                      : "virtual_gid_maps entry", addr);
        goto out;
    }
    if (u < vconf.minimum_uid) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: "
                      "uid %ld for %s is below virtual_minimum_uid %ld", u, addr,
                      vconf.minimum_uid);
        goto out;
    }
    if (!vconf.root && ((uid_t) u != geteuid() || (gid_t) g != getegid())) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: "
                      "cannot deliver as uid %ld gid %ld: the virtual agent does not run as root",
                      u, g);
        goto out;
    }
    *uid = (uid_t) u;
    *gid = (gid_t) g;
    rc = 0;
out:
    str_free(value);
    str_free(err);
    return rc;
}

/* Deliver recipient i; sets its result. */
static void
deliver_one(struct deliver_request *rq, size_t i)
{
    str_t  *addr = str_new(0), *value = str_new(0), *err = str_new(0), *path = str_new(0);
    str_t  *why = str_new(0);
    uid_t   uid;
    gid_t   gid;
    bool    maildir;
    const char *dsn = "4.3.0";
    int     rc;

    if (str_len(vconf.table_error) > 0) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.0", "mail system configuration error: %s",
                      str_cstr(vconf.table_error));
        goto out;
    }
    str_set_cstr(addr, rq->rcpt[i].address);
    str_lower(addr);
    if (strchr(str_cstr(addr), '@') == NULL) {
        deliver_bounce(rq, i, VIRTUAL_RELAY, "5.1.1", "User unknown in virtual mailbox table");
        goto out;
    }
    rc = address_lookup(&vconf.mailbox, str_cstr(addr), value, err);
    if (rc == DICT_ERROR) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.0", "%s", str_cstr(err));
        goto out;
    }
    if (rc == DICT_NOTFOUND) {
        deliver_bounce(rq, i, VIRTUAL_RELAY, "5.1.1", "User unknown in virtual mailbox table");
        goto out;
    }
    if (!path_ok(str_cstr(value))) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.5", "mail system configuration error: "
                      "bad mailbox path \"%s\" in virtual_mailbox_maps", str_cstr(value));
        goto out;
    }
    if (find_owner(rq, i, str_cstr(addr), &uid, &gid) != 0)
        goto out;
    maildir = value->data[str_len(value) - 1] == '/';
    str_printf(path, "%s/%s", vconf.base, str_cstr(value));
    if (rq->flags & DELIVER_FLAG_VERIFY) {
        deliver_sent(rq, i, VIRTUAL_RELAY, "2.0.0", "delivers to %s", maildir ? "maildir"
                     : "mailbox");
        goto out;
    }
    if (!dirs_known_ok(str_cstr(value), uid, gid)) {
        if ((rc = make_dirs(vconf.base, str_cstr(value), maildir, uid, gid, why, &dsn)) != 0) {
            dirs_forget(str_cstr(value), uid, gid);
            if (rc == DELIVER_FAIL_PERM)
                deliver_bounce(rq, i, VIRTUAL_RELAY, dsn, "%s", str_cstr(why));
            else
                deliver_defer(rq, i, VIRTUAL_RELAY, dsn, "%s", str_cstr(why));
            goto out;
        }
        dirs_remember(str_cstr(value), uid, gid);
    }

    struct rlimit saved;

    if (!become(uid, gid, why)) {
        deliver_defer(rq, i, VIRTUAL_RELAY, "4.3.0", "%s", str_cstr(why));
        goto out;
    }
    limit_set(&saved);
    rc = maildir ? deliver_maildir(rq, i, str_cstr(path), why)
        : deliver_mbox(rq, i, str_cstr(path), why);
    limit_restore(&saved);
    unbecome();
    if (rc != 0)
        dirs_forget(str_cstr(value), uid, gid);
    if (rc == 0)
        deliver_sent(rq, i, VIRTUAL_RELAY, "2.0.0", "delivered to %s", maildir ? "maildir"
                     : "mailbox");
    else if (rc == DELIVER_FAIL_PERM)
        deliver_bounce(rq, i, VIRTUAL_RELAY, deliver_fail_dsn(), "%s", str_cstr(why));
    else
        deliver_defer(rq, i, VIRTUAL_RELAY, deliver_fail_dsn(), "%s", str_cstr(why));
out:
    str_free(addr);
    str_free(value);
    str_free(err);
    str_free(path);
    str_free(why);
}

static void
virtual_deliver(struct deliver_request *rq, void *ctx)
{
    for (size_t i = 0; i < rq->nrcpt; i++)
        deliver_one(rq, i);
}

static void
virtual_service(stream_t *client, config_t *cfg)
{
    deliver_serve(client, virtual_deliver, NULL);
}

static void
virtual_post_init(config_t *cfg)
{
    queue_init(cfg);
    vconf.table_error = str_new(0);
    vconf.root = geteuid() == 0;
    vconf.base = config_str(cfg, "virtual_mailbox_base");
    vconf.delimiter = config_str(cfg, "recipient_delimiter");
    vconf.minimum_uid = config_int(cfg, "virtual_minimum_uid");
    vconf.mailbox_limit = config_int(cfg, "virtual_mailbox_limit");
    tables_open(cfg, &vconf.mailbox, "virtual_mailbox_maps");
    tables_open(cfg, &vconf.uid, "virtual_uid_maps");
    tables_open(cfg, &vconf.gid, "virtual_gid_maps");
    if (vconf.mailbox.count == 0 && str_len(vconf.table_error) == 0)
        str_set_cstr(vconf.table_error, "virtual_mailbox_maps is empty");
    /* A file size limit must fail the write (EFBIG), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
}

static void
virtual_pre_exit(void)
{
    struct table_list *lists[] = {&vconf.mailbox, &vconf.uid, &vconf.gid};

    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->count; i++)
            dict_close(lists[l]->dict[i]);
    str_free(vconf.table_error);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "virtual",
        .post_init = virtual_post_init,
        .service = virtual_service,
        .finish_on_term = true,     /* end the request under way at a stop */
        .pre_exit = virtual_pre_exit,
    };

    single_server_main(argc, argv, &ops);
}
