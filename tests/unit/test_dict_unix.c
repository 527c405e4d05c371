/*
 * test_dict_unix.c - unit tests for unix:passwd.byname and
 * unix:group.byname. The expected values are computed from getpwuid/getgrgid
 * for the user running the test and for root, so the test does not depend
 * on the machine's accounts beyond those.
 */
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "dict.h"
#include "str.h"
#include "unit.h"

/* Count the ':' separated fields of s. */
static int
fields(const char *s)
{
    int     n = 1;

    for (; *s; s++)
        n += *s == ':';
    return n;
}

TEST(passwd_byname)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    str_t  *want = str_new(0);
    dict_t *d = dict_open("unix:passwd.byname", 0, err);
    struct passwd *pw = getpwuid(getuid());

    CHECK(d != NULL);
    CHECK(pw != NULL);
    if (d == NULL || pw == NULL)
        goto out;
    str_printf(want, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name, pw->pw_passwd, (long) pw->pw_uid,
               (long) pw->pw_gid, pw->pw_gecos, pw->pw_dir, pw->pw_shell);
    CHECK_INTEQ(dict_lookup(d, pw->pw_name, value), DICT_FOUND);
    CHECK_STREQ(str_cstr(value), str_cstr(want));
    CHECK_INTEQ(dict_lookup(d, "root", value), DICT_FOUND);
    CHECK(strncmp(str_cstr(value), "root:", 5) == 0);
    CHECK_INTEQ(fields(str_cstr(value)), 7);
    CHECK(strstr(str_cstr(value), ":0:0:") != NULL);
    CHECK_INTEQ(dict_lookup(d, "ROOT", value), DICT_FOUND);                /* folded */
    CHECK_INTEQ(dict_lookup(d, "no-such-user-postern-test", value), DICT_NOTFOUND);
    CHECK_INTEQ(str_len(value), 0);
    CHECK_INTEQ(dict_lookup(d, "", value), DICT_NOTFOUND);
    CHECK_INTEQ(dict_lookup(d, "root:x", value), DICT_NOTFOUND);
out:
    dict_close(d);
    str_free(err);
    str_free(value);
    str_free(want);
}

TEST(group_byname)
{
    str_t  *err = str_new(0);
    str_t  *value = str_new(0);
    dict_t *d = dict_open("unix:group.byname", 0, err);
    struct group *gr = getgrgid(0);

    CHECK(d != NULL);
    CHECK(gr != NULL);
    if (d == NULL || gr == NULL)
        goto out;
    CHECK_INTEQ(dict_lookup(d, gr->gr_name, value), DICT_FOUND);
    CHECK(strncmp(str_cstr(value), gr->gr_name, strlen(gr->gr_name)) == 0);
    CHECK_INTEQ(fields(str_cstr(value)), 4);
    CHECK(strstr(str_cstr(value), ":0:") != NULL);
    CHECK_INTEQ(dict_lookup(d, "no-such-group-postern-test", value), DICT_NOTFOUND);
out:
    dict_close(d);
    str_free(err);
    str_free(value);
}

TEST(bad_names)
{
    str_t  *err = str_new(0);

    CHECK(dict_open("unix:passwd.byuid", 0, err) == NULL);
    CHECK(strstr(str_cstr(err), "unsupported unix table \"passwd.byuid\"") != NULL);
    CHECK(dict_open("unix:", 0, err) == NULL);
    CHECK(dict_open("unix:passwd.byname", DICT_FLAG_WRITABLE, err) == NULL);
    CHECK(strstr(str_cstr(err), "read-only") != NULL);
    str_free(err);
}
