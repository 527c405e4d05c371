/*
 * dict_unix.c - "unix:passwd.byname" and "unix:group.byname": the system's
 * account databases (through getpwnam_r/getgrnam_r, so NSS applies).
 *
 *     unix:passwd.byname   key: a user name; value: the passwd entry as one
 *                          line, "name:password:uid:gid:gecos:home:shell"
 *     unix:group.byname    key: a group name; value:
 *                          "name:password:gid:member,member,..."
 *
 * local_recipient_maps uses the first to know which local users exist. Keys
 * are folded to lower case like other tables (user names are lower case by
 * convention). A name that is not in the database is DICT_NOTFOUND; a
 * failing NSS back end (not "no such entry") is DICT_ERROR, so mail to a
 * real user is deferred, not bounced, while the directory is unreachable.
 * Any other name after "unix:" fails the open.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"
#include "mem.h"

#define UNIX_BUF_START  1024
#define UNIX_BUF_MAX    (1024 * 1024)   /* grows up to this for huge groups */

enum unix_map {
    UNIX_PASSWD,
    UNIX_GROUP,
};

struct dict_unix {
    dict_t  dict;
    enum unix_map map;
};

/* "Not found" as getpwnam_r/getgrnam_r may report it, depending on the NSS module. */
static bool
unix_not_found_errno(int e)
{
    return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

static int
unix_lookup(dict_t *d, const char *key, str_t *value, str_t *err)
{
    struct dict_unix *du = (struct dict_unix *) d;
    size_t  size = UNIX_BUF_START;
    char   *buf;
    int     rc;

    if (*key == 0)
        return DICT_NOTFOUND;
    for (;;) {
        buf = mem_alloc(size);
        if (du->map == UNIX_PASSWD) {
            struct passwd pw, *res = NULL;

            rc = getpwnam_r(key, &pw, buf, size, &res);
            if (rc == 0 && res != NULL) {
                str_printf(value, "%s:%s:%ld:%ld:%s:%s:%s", pw.pw_name, pw.pw_passwd ? pw.pw_passwd : "",
                           (long) pw.pw_uid, (long) pw.pw_gid, pw.pw_gecos ? pw.pw_gecos : "",
                           pw.pw_dir ? pw.pw_dir : "", pw.pw_shell ? pw.pw_shell : "");
                mem_free(buf);
                return DICT_FOUND;
            }
        } else {
            struct group gr, *res = NULL;

            rc = getgrnam_r(key, &gr, buf, size, &res);
            if (rc == 0 && res != NULL) {
                str_printf(value, "%s:%s:%ld:", gr.gr_name, gr.gr_passwd ? gr.gr_passwd : "",
                           (long) gr.gr_gid);
                for (char **m = gr.gr_mem; m != NULL && *m != NULL; m++) {
                    if (m != gr.gr_mem)
                        str_putc(value, ',');
                    str_append_cstr(value, *m);
                }
                mem_free(buf);
                return DICT_FOUND;
            }
        }
        mem_free(buf);
        if (rc == ERANGE && size < UNIX_BUF_MAX) {
            size *= 2;
            continue;
        }
        if (unix_not_found_errno(rc))
            return DICT_NOTFOUND;
        str_printf(err, "unix:%s: lookup of \"%.100s\" failed: %s", d->name, key, strerror(rc));
        return DICT_ERROR;
    }
}

static void
unix_close(dict_t *d)
{
    dict_free_common(d);
}

dict_t *
dict_unix_open(const char *name, int flags, str_t *err)
{
    struct dict_unix *du;
    enum unix_map map;

    if (strcmp(name, "passwd.byname") == 0) {
        map = UNIX_PASSWD;
    } else if (strcmp(name, "group.byname") == 0) {
        map = UNIX_GROUP;
    } else {
        str_set_cstr(err, "unsupported unix table ");
        dict_quote(err, name, strlen(name));
        str_append_cstr(err, ": use unix:passwd.byname or unix:group.byname");
        return NULL;
    }
    du = (struct dict_unix *) dict_alloc(sizeof(*du), "unix", name, flags);
    du->map = map;
    du->dict.lookup = unix_lookup;
    du->dict.close = unix_close;
    return &du->dict;
}
