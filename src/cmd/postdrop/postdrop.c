/*
 * postdrop - put a local submission into the maildrop queue.
 *
 * Usage: postdrop [-c config_dir] [-v]
 *
 * Reads one submission as records (maildrop.h) on standard input, normally
 * from sendmail, checks it, and stores it as maildrop/ID, where ID is a
 * queue ID made from the file's inode and the time. It adds who submitted
 * the message (A submit_uid and submit_user, from the real uid) right after
 * the sender record: users cannot state these themselves. The file is
 * written under a temporary name, fsync'ed, then renamed; only then does
 * postdrop exit 0 and wake up pickup (public/$pickup_service_name). On any
 * error the file is removed and postdrop exits with EX_TEMPFAIL (75), or
 * EX_NOPERM (77) when the user may not submit mail, or EX_DATAERR (65)
 * for input that breaks the rules, with a message on standard error.
 *
 * SECURITY: installed set-gid to setgid_group (never set-uid) so that it
 * can write into maildrop/ (mode 1730, mail_owner:setgid_group) and reach
 * public/. It trusts neither its environment nor its input: the
 * environment is cleared; when it runs set-gid, a configuration directory
 * other than the default is accepted from an unprivileged user only if
 * alternate_config_directories of the default main.cf lists it, or if that
 * directory and its main.cf
 * belong to root and nobody else may write them (so only the administrator
 * chose their content). Input is checked record by record before it is
 * written. The file it creates is mode 0444, owned by the submitting user:
 * pickup trusts the owner uid, not the file's content, to say who sent it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "instance.h"
#include "ipc.h"
#include "log.h"
#include "maildrop.h"
#include "mem.h"
#include "queue.h"
#include "rec.h"
#include "str.h"
#include "stream.h"

/* The temporary file, for the error and signal paths (static: signal-safe). */
static char tmp_path[256];
static int tmp_created;

static void
remove_tmp(void)
{
    if (tmp_created) {
        (void) unlink(tmp_path);
        tmp_created = 0;
    }
}

static void
on_signal(int sig)
{
    if (tmp_created)
        (void) unlink(tmp_path);
    _exit(EX_TEMPFAIL);
}

static _Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Log the reason, remove the temporary file and exit with a sysexits status. */
static _Noreturn void
die(int status, const char *fmt, ...)
{
    va_list ap;
    str_t  *msg = str_new(0);

    va_start(ap, fmt);
    str_append_vprintf(msg, fmt, ap);
    va_end(ap);
    log_error("%s", str_cstr(msg));
    remove_tmp();
    exit(status);
}

static void
fatal_hook(void)
{
    remove_tmp();
}

/* True when path is a directory or file owned by root that only root may change. */
static bool
root_only(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 && sb.st_uid == 0 && (sb.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/*
 * May an unprivileged caller use config directory dir? See the SECURITY
 * note above. why says no, for the message.
 */
static bool
config_dir_allowed(const char *dir, str_t *why)
{
    str_t  *path = str_new(0);
    config_t *cfg;
    diag_list_t diags;
    bool    ok = false;

    if (strcmp(dir, INSTANCE_DEFAULT_DIR) == 0)
        ok = true;
    if (!ok) {
        str_printf(path, "%s/main.cf", INSTANCE_DEFAULT_DIR);
        cfg = config_new();
        diag_init(&diags);
        if (access(str_cstr(path), R_OK) == 0 && config_read_file(cfg, str_cstr(path), &diags) == 0
            && maildrop_dir_listed(config_str(cfg, "alternate_config_directories"), dir))
            ok = true;
        diag_free(&diags);
        config_free(cfg);
    }
    if (!ok) {
        str_printf(path, "%s/main.cf", dir);
        ok = root_only(dir) && root_only(str_cstr(path));
    }
    if (!ok)
        str_printf(why, "configuration directory %s is neither the default, nor listed in "
                   "alternate_config_directories of %s/main.cf, nor owned and writable only "
                   "by root", dir, INSTANCE_DEFAULT_DIR);
    str_free(path);
    return ok;
}

/* Read and check the records on stdin, writing them to out. */
static void
copy_submission(stream_t *in, stream_t *out, config_t *cfg, uid_t uid, const char *user)
{
    struct maildrop_check mc;
    size_t  line_limit = (size_t) config_int(cfg, "line_length_limit");
    size_t  max = maildrop_max_record(line_limit);
    str_t  *data = str_new(0);
    str_t  *err = str_new(0);
    str_t  *own = str_new(0);
    int     type, rc;

    maildrop_check_init(&mc, MAILDROP_FROM_USER, line_limit, config_int(cfg, "message_size_limit"));
    for (;;) {
        type = rec_get(in, data, max, err);
        if (type == REC_EOF)
            die(EX_TEMPFAIL, "submission ended early: no end record (was the sender interrupted?)");
        if (type == REC_BAD)
            die(EX_DATAERR, "malformed submission: %s", str_cstr(err));
        if (type < 0)
            die(EX_TEMPFAIL, "read submission: %s", str_cstr(err));
        rc = maildrop_check_record(&mc, type, str_cstr(data), str_len(data));
        if (rc == MAILDROP_BAD)
            die(EX_DATAERR, "rejected submission: %s", str_cstr(&mc.error));
        if (rec_write(out, type, str_cstr(data), str_len(data)) != STREAM_OK)
            die(EX_TEMPFAIL, "write %s: %s", tmp_path, strerror(stream_errno(out)));
        if (type == REC_TYPE_SENDER) {
            /* Who submitted it: from the kernel, never from the input. */
            str_printf(own, "%s=%lu", REC_ATTR_SUBMIT_UID, (unsigned long) uid);
            rec_write(out, REC_TYPE_ATTR, str_cstr(own), str_len(own));
            str_printf(own, "%s=%s", REC_ATTR_SUBMIT_USER, user);
            rec_write(out, REC_TYPE_ATTR, str_cstr(own), str_len(own));
        }
        if (rc == MAILDROP_DONE)
            break;
    }
    /* Nothing may follow the end record. */
    if (stream_getc(in) != STREAM_EOF)
        die(EX_DATAERR, "rejected submission: data after the end record");
    maildrop_check_free(&mc);
    str_free(data);
    str_free(err);
    str_free(own);
}

int
main(int argc, char **argv)
{
    const char *config_dir = NULL;
    char   *env_config;
    uid_t   uid = getuid();
    struct passwd *pw;
    config_t *cfg;
    diag_list_t diags;
    str_t  *path = str_new(0);
    str_t  *err = str_new(0);
    str_t  *id = str_new(0);
    char   *user;
    int     ch, fd;

    /* Descriptors 0-2 must exist, or a file we open could become stdout. */
    for (fd = open("/dev/null", O_RDWR); fd >= 0 && fd <= 2; fd = open("/dev/null", O_RDWR))
        ;
    if (fd > 2)
        close(fd);

    /* The environment belongs to the caller: keep only what we checked. */
    env_config = getenv("POSTERN_CONFIG") ? mem_strdup(getenv("POSTERN_CONFIG")) : NULL;
    if (clearenv() != 0)
        return EX_TEMPFAIL;
    (void) setenv("PATH", "/usr/bin:/bin", 1);
    umask(022);

    log_init("postdrop");
    log_set_stderr(true, false);
    log_set_fatal_hook(fatal_hook);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGQUIT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGXFSZ, on_signal);

    opterr = 0;
    while ((ch = getopt(argc, argv, "c:v")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'v':
            break;
        default:
            die(EX_USAGE, "usage: postdrop [-c config_dir] [-v]");
        }
    }
    if (optind != argc)
        die(EX_USAGE, "usage: postdrop [-c config_dir] [-v]");
    if (config_dir == NULL)
        config_dir = env_config ? env_config : INSTANCE_DEFAULT_DIR;
    if (config_dir[0] != '/')
        die(EX_USAGE, "configuration directory must be an absolute path: %s", config_dir);
    /*
     * The check matters only when postdrop runs with a group the caller
     * does not have (installed set-gid): without it, as in a development
     * build or a user's own instance, it can do nothing the caller could
     * not do anyway.
     */
    if (uid != 0 && getegid() != getgid() && !config_dir_allowed(config_dir, err))
        die(EX_NOPERM, "%s", str_cstr(err));

    cfg = config_new();
    diag_init(&diags);
    config_set(cfg, "config_directory", config_dir);
    str_printf(path, "%s/main.cf", config_dir);
    if (config_read_file(cfg, str_cstr(path), &diags) != 0) {
        diag_log(&diags);
        die(EX_TEMPFAIL, "cannot read %s", str_cstr(path));
    }
    if (config_validate(cfg, NULL, &diags) > 0) {
        diag_log(&diags);
        die(EX_TEMPFAIL, "%s: configuration errors", str_cstr(path));
    }
    diag_free(&diags);
    /*
     * Log to maillog_file when we may write it (root, or a group-writable
     * log); an ordinary user's postdrop logs to syslog instead, and in
     * either case errors also go to standard error.
     */
    {
        const char *maillog = config_str(cfg, "maillog_file");

        if (*maillog && faccessat(AT_FDCWD, maillog, W_OK, AT_EACCESS) != 0)
            maillog = NULL;
        log_configure(config_str(cfg, "syslog_name"), maillog, config_str(cfg, "myhostname"));
        log_set_stderr(true, false);
    }

    /* Who is submitting, and may they? */
    errno = 0;
    if ((pw = getpwuid(uid)) == NULL)
        die(EX_NOUSER, "no login name for user ID %lu", (unsigned long) uid);
    user = mem_strdup(pw->pw_name);
    if (uid != 0) {
        int     ok = maildrop_user_allowed(config_str(cfg, "authorized_submit_users"), user, err);

        if (ok < 0)
            die(EX_TEMPFAIL, "authorized_submit_users: %s", str_cstr(err));
        if (ok == 0) {
            log_warn("mail submission by user %s (uid %lu) is not allowed by authorized_submit_users",
                     user, (unsigned long) uid);
            die(EX_NOPERM, "user %s is not allowed to submit mail", user);
        }
    }

    if (chdir(config_str(cfg, "queue_directory")) != 0)
        die(EX_TEMPFAIL, "chdir %s: %s", config_str(cfg, "queue_directory"), strerror(errno));
    queue_init(cfg);

    /* Temporary name: pickup ignores names that are not queue IDs. */
    {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        snprintf(tmp_path, sizeof(tmp_path), "%s/tmp-%ld-%ld-%ld", QUEUE_MAILDROP, (long) getpid(),
                 (long) tv.tv_sec, (long) tv.tv_usec);
    }
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    if (fd < 0)
        die(EX_TEMPFAIL, "create %s/%s: %s", config_str(cfg, "queue_directory"), tmp_path,
            strerror(errno));
    tmp_created = 1;
    if (fchmod(fd, 0444) != 0)
        die(EX_TEMPFAIL, "chmod %s: %s", tmp_path, strerror(errno));

    stream_t *in = stream_open(STDIN_FILENO);
    stream_t *out = stream_open(fd);

    copy_submission(in, out, cfg, uid, user);
    if (stream_flush(out) != STREAM_OK)
        die(EX_TEMPFAIL, "write %s: %s", tmp_path, strerror(stream_errno(out)));
    if (fsync(fd) != 0)
        die(EX_TEMPFAIL, "fsync %s: %s", tmp_path, strerror(errno));

    /* Final name: a queue ID from the inode and the time, never replacing a file. */
    struct stat sb;
    struct timeval tv;

    if (fstat(fd, &sb) != 0)
        die(EX_TEMPFAIL, "fstat %s: %s", tmp_path, strerror(errno));
    for (int tries = 0;; tries++) {
        gettimeofday(&tv, NULL);
        queue_id_make(id, &tv, sb.st_ino);
        str_printf(path, "%s/%s", QUEUE_MAILDROP, str_cstr(id));
        if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, str_cstr(path), RENAME_NOREPLACE) == 0)
            break;
        /*
         * Without RENAME_NOREPLACE in this file system a plain rename is
         * still safe: the ID holds our inode number, which no other file
         * in the directory can have.
         */
        if ((errno == EINVAL || errno == ENOSYS) && rename(tmp_path, str_cstr(path)) == 0)
            break;
        if (errno != EEXIST || tries >= 10)
            die(EX_TEMPFAIL, "rename %s to %s: %s", tmp_path, str_cstr(path), strerror(errno));
    }
    /* From here the message is queued. */
    tmp_created = 0;
    if (stream_close(out) != STREAM_OK)
        log_warn("close %s: %s", str_cstr(path), strerror(errno));
    /* Best effort: group postdrop may not read the directory to fsync it. */
    if ((fd = open(QUEUE_MAILDROP, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void) fsync(fd);
        close(fd);
    }
    (void) ipc_trigger(NULL, "public", config_str(cfg, "pickup_service_name"), IPC_TRIGGER_WAKEUP);

    stream_abandon(in);
    mem_free(user);
    mem_free(env_config);
    str_free(path);
    str_free(err);
    str_free(id);
    config_free(cfg);
    return EX_OK;
}
