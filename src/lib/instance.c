/*
 * instance.c - locate, load and check an instance; see instance.h.
 *
 * SECURITY: instance_make_dirs runs as root in "postern start"/"init"; it
 * never follows a symbolic link it did not expect (lstat before chown/chmod)
 * and only creates directories inside queue_directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance.h"
#include "log.h"
#include "mem.h"
#include "str.h"

const char *
instance_config_dir(const char *opt)
{
    const char *env;

    if (opt && *opt)
        return opt;
    if ((env = getenv("POSTERN_CONFIG")) != NULL && *env)
        return env;
    return INSTANCE_DEFAULT_DIR;
}

/* Service names of master.cf, for per-service parameter names. */
static const char **
service_names(const struct mastercf *mc)
{
    const char **names = mem_array(mc->count + 1, sizeof(*names));

    for (size_t i = 0; i < mc->count; i++)
        names[i] = mc->entries[i].service;
    return names;
}

size_t
instance_load(const char *dir, config_t **cfgp, struct mastercf *mc, diag_list_t *diags)
{
    config_t *cfg = config_new();
    str_t  *path = str_new(0);
    size_t  errors_before = diag_errors(diags);

    *cfgp = cfg;
    mc->entries = NULL;
    mc->count = 0;
    config_set(cfg, "config_directory", dir);
    str_printf(path, "%s/main.cf", dir);
    (void) config_read_file(cfg, str_cstr(path), diags);
    str_printf(path, "%s/master.cf", dir);
    (void) mastercf_read_file(str_cstr(path), mc, diags);

    const char **names = service_names(mc);

    config_validate(cfg, names, diags);
    mem_free(names);

    /* Every service command must exist in daemon_directory (unless absolute). */
    if (diag_errors(diags) == errors_before) {
        const char *ddir = config_str(cfg, "daemon_directory");

        for (size_t i = 0; i < mc->count; i++) {
            const struct mastercf_entry *e = &mc->entries[i];

            for (size_t j = 0; j < e->nopts; j++) {
                str_t  *why = str_new(0);
                str_t  *val = str_new(0);

                if (!config_expand(cfg, e->opts[j].value, val, why))
                    diag_add(diags, DIAG_ERROR, e->file, e->line, "-o %s: %s",
                             e->opts[j].name, str_cstr(why));
                str_free(why);
                str_free(val);
            }
            if (e->argv[0][0] == '/')
                str_set_cstr(path, e->argv[0]);
            else
                str_printf(path, "%s/%s", ddir, e->argv[0]);
            if (access(str_cstr(path), X_OK) != 0)
                diag_add(diags, DIAG_ERROR, e->file, e->line,
                         "service %s: unknown command \"%s\" (%s: %s)", e->service, e->argv[0],
                         str_cstr(path), strerror(errno));
        }
    }
    str_free(path);
    return diag_errors(diags) - errors_before;
}

bool
instance_owner_ids(config_t *cfg, uid_t *uid, gid_t *gid, gid_t *sgid, str_t *why)
{
    const char *owner = config_str(cfg, "mail_owner");
    const char *group = config_str(cfg, "setgid_group");
    struct passwd *pw;
    struct group *gr;

    if ((pw = getpwnam(owner)) == NULL) {
        str_printf(why, "mail_owner account \"%s\" does not exist", owner);
        return false;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if ((gr = getgrnam(group)) == NULL) {
        str_printf(why, "setgid_group \"%s\" does not exist", group);
        return false;
    }
    *sgid = gr->gr_gid;
    return true;
}

/* The queue tree: name, owner (0 root, 1 mail_owner), group (0 owner's, 1 setgid_group), mode. */
static const struct queue_dir {
    const char *name;
    int     owner;
    int     group;
    mode_t  mode;
} queue_dirs[] = {
    {"pid", 0, 0, 0755},
    {"private", 1, 0, 0700},
    {"public", 1, 1, 0710},
    {"maildrop", 1, 1, 01730},   /* sticky: users cannot remove each other's files */
    {"incoming", 1, 0, 0700},
    {"active", 1, 0, 0700},
    {"deferred", 1, 0, 0700},
    {"hold", 1, 0, 0700},
    {"corrupt", 1, 0, 0700},
    {"bounce", 1, 0, 0700},
    {"defer", 1, 0, 0700},
    {"trace", 1, 0, 0700},
    {"flush", 1, 0, 0700},
    {"saved", 1, 0, 0700},
    {"spare", 1, 0, 0700},      /* finished queue files for reuse (queue.h) */
};

static bool
make_one(const char *path, uid_t uid, gid_t gid, mode_t mode, bool as_root, diag_list_t *diags)
{
    struct stat sb;

    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        diag_add(diags, DIAG_ERROR, path, 0, "cannot create directory: %s", strerror(errno));
        return false;
    }
    if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        diag_add(diags, DIAG_ERROR, path, 0, "not a directory");
        return false;
    }
    if (as_root && (sb.st_uid != uid || sb.st_gid != gid) && lchown(path, uid, gid) != 0) {
        diag_add(diags, DIAG_ERROR, path, 0, "cannot set owner: %s", strerror(errno));
        return false;
    }
    if ((sb.st_mode & 07777) != mode && chmod(path, mode) != 0) {
        diag_add(diags, DIAG_ERROR, path, 0, "cannot set mode: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Resolve who should own the tree; as non-root everything is ours. */
static bool
tree_ids(config_t *cfg, bool *as_root, uid_t *uid, gid_t *gid, gid_t *sgid, diag_list_t *diags)
{
    *as_root = geteuid() == 0;
    if (!*as_root) {
        *uid = geteuid();
        *gid = *sgid = getegid();
        return true;
    }
    str_t  *why = str_new(0);
    bool    ok = instance_owner_ids(cfg, uid, gid, sgid, why);

    if (!ok)
        diag_add(diags, DIAG_ERROR, NULL, 0, "%s", str_cstr(why));
    str_free(why);
    return ok;
}

bool
instance_make_dirs(config_t *cfg, diag_list_t *diags)
{
    const char *qdir = config_str(cfg, "queue_directory");
    bool    as_root, ok = true;
    uid_t   uid;
    gid_t   gid, sgid;
    str_t  *path = str_new(0);

    if (!tree_ids(cfg, &as_root, &uid, &gid, &sgid, diags)) {
        str_free(path);
        return false;
    }
    /* queue_directory itself: root-owned and not writable by others when root. */
    ok = make_one(qdir, as_root ? 0 : uid, as_root ? 0 : gid, 0755, as_root, diags);
    for (size_t i = 0; ok && i < sizeof(queue_dirs) / sizeof(queue_dirs[0]); i++) {
        const struct queue_dir *q = &queue_dirs[i];

        str_printf(path, "%s/%s", qdir, q->name);
        ok = make_one(str_cstr(path), q->owner ? uid : (as_root ? 0 : uid),
                      q->group ? sgid : (q->owner ? gid : (as_root ? 0 : gid)),
                      q->mode, as_root, diags);
    }
    str_free(path);
    return ok;
}

void
instance_check_dirs(config_t *cfg, diag_list_t *diags)
{
    const char *qdir = config_str(cfg, "queue_directory");
    bool    as_root;
    uid_t   uid;
    gid_t   gid, sgid;
    struct stat sb;
    str_t  *path = str_new(0);

    if (!tree_ids(cfg, &as_root, &uid, &gid, &sgid, diags)) {
        str_free(path);
        return;
    }
    if (lstat(qdir, &sb) != 0) {
        diag_add(diags, DIAG_WARNING, qdir, 0,
                 "queue directory does not exist yet (\"postern start\" creates it)");
        str_free(path);
        return;
    }
    for (size_t i = 0; i < sizeof(queue_dirs) / sizeof(queue_dirs[0]); i++) {
        const struct queue_dir *q = &queue_dirs[i];
        uid_t   want_uid = q->owner ? uid : (as_root ? 0 : uid);

        str_printf(path, "%s/%s", qdir, q->name);
        if (lstat(str_cstr(path), &sb) != 0) {
            diag_add(diags, DIAG_WARNING, str_cstr(path), 0, "missing (\"postern start\" creates it)");
            continue;
        }
        if (!S_ISDIR(sb.st_mode))
            diag_add(diags, DIAG_ERROR, str_cstr(path), 0, "not a directory");
        else if (sb.st_uid != want_uid)
            diag_add(diags, DIAG_WARNING, str_cstr(path), 0, "owned by uid %ld, expected %ld",
                     (long) sb.st_uid, (long) want_uid);
        else if ((sb.st_mode & 07777) != q->mode)
            diag_add(diags, DIAG_WARNING, str_cstr(path), 0, "mode %04o, expected %04o",
                     (unsigned) (sb.st_mode & 07777), (unsigned) q->mode);
    }
    str_free(path);
}

void
instance_pid_path(config_t *cfg, str_t *out)
{
    str_printf(out, "%s/%s/master.pid", config_str(cfg, "queue_directory"),
               config_str(cfg, "process_id_directory"));
}

pid_t
instance_master_pid(config_t *cfg)
{
    str_t  *path = str_new(0);
    int     fd;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

    instance_pid_path(cfg, path);
    fd = open(str_cstr(path), O_RDONLY | O_CLOEXEC);
    str_free(path);
    if (fd < 0)
        return 0;
    if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) {
        close(fd);
        return 0;
    }
    close(fd);
    return fl.l_pid;
}
