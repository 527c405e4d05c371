/*
 * postern_init.c - "postern init DIR [--listen ADDR:PORT] [-o name=value]..."
 *
 * Creates a self-contained instance: DIR/main.cf, DIR/master.cf, and under
 * DIR the queue, the mail store, the data directory and the log. Refuses a
 * DIR that already has a main.cf. As root it creates the unprivileged
 * accounts (user "postern", group "postdrop") when they are missing; as
 * another user the instance runs entirely as that user.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "dict.h"
#include "log.h"
#include "mem.h"
#include "postern.h"
#include "str.h"
#include "stream.h"

#define DEFAULT_LISTEN "127.0.0.1:2525"

/* Run an account tool (groupadd/useradd) and wait for it. */
static bool
run_tool(char *const argv[])
{
    pid_t   pid = fork();
    int     status;

    if (pid < 0) {
        log_warn_errno("fork");
        return false;
    }
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* As root: make sure group postdrop and user postern exist. */
static bool
ensure_accounts(void)
{
    if (getgrnam("postdrop") == NULL) {
        char   *argv[] = {"/usr/sbin/groupadd", "--system", "postdrop", NULL};

        if (!run_tool(argv)) {
            log_error("cannot create group postdrop with %s", argv[0]);
            return false;
        }
        printf("postern: created group postdrop\n");
    }
    if (getpwnam("postern") == NULL) {
        char   *argv[] = {"/usr/sbin/useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
            "--comment", "Postern mail system", "postern", NULL};

        if (!run_tool(argv)) {
            log_error("cannot create user postern with %s", argv[0]);
            return false;
        }
        printf("postern: created user postern\n");
    }
    return true;
}

static bool
make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Write a whole file that must not exist yet. */
static bool
write_new_file(const char *path, const str_t *text)
{
    int     fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

    if (fd < 0) {
        log_error("cannot create %s: %s", path, strerror(errno));
        return false;
    }
    if (fd_write_all(fd, str_cstr(text), str_len(text)) < 0 || fsync(fd) != 0) {
        log_error("cannot write %s: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    return close(fd) == 0;
}

int
postern_init(int argc, char **argv)
{
    const char *listen = DEFAULT_LISTEN;
    const char *dir_arg = NULL;
    char    dir[PATH_MAX];
    str_t  *path = str_new(0), *text = str_new(1024), *overrides = str_new(0);
    bool    as_root = geteuid() == 0;
    const char *owner, *group;
    uid_t   mail_uid = 0;
    gid_t   mail_gid = 0;
    int     rc = POSTERN_EXIT_FAIL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strncmp(argv[i], "--listen=", 9) == 0) {
            listen = argv[i] + 9;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            const char *eq = strchr(argv[++i], '=');

            if (eq == NULL || eq == argv[i]) {
                log_error("bad -o argument \"%s\": need name=value", argv[i]);
                goto out;
            }
            str_append_printf(overrides, "%.*s = %s\n", (int) (eq - argv[i]), argv[i], eq + 1);
        } else if (argv[i][0] != '-' && dir_arg == NULL) {
            dir_arg = argv[i];
        } else {
            fprintf(stderr, "usage: postern init DIR [--listen ADDR:PORT] [-o name=value]...\n");
            rc = POSTERN_EXIT_USAGE;
            goto out;
        }
    }
    if (dir_arg == NULL) {
        fprintf(stderr, "usage: postern init DIR [--listen ADDR:PORT] [-o name=value]...\n");
        rc = POSTERN_EXIT_USAGE;
        goto out;
    }
    if (strpbrk(listen, " \t\n#") != NULL || *listen == 0) {
        log_error("bad --listen address \"%s\"", listen);
        goto out;
    }
    if (!make_dir(dir_arg, 0755) || realpath(dir_arg, dir) == NULL) {
        log_error("cannot use %s: %s", dir_arg, strerror(errno));
        goto out;
    }
    str_printf(path, "%s/main.cf", dir);
    if (access(str_cstr(path), F_OK) == 0) {
        log_error("%s already exists: refusing to overwrite an instance", str_cstr(path));
        goto out;
    }
    if (as_root) {
        if (!ensure_accounts())
            goto out;
        owner = "postern";
        group = "postdrop";
    } else {
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = getgrgid(getegid());

        if (pw == NULL || gr == NULL) {
            log_error("cannot find the name of uid %ld or gid %ld", (long) geteuid(),
                      (long) getegid());
            goto out;
        }
        owner = pw->pw_name;
        group = gr->gr_name;
    }
    static const char *subdirs[] = {"log", "data", "mail"};

    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        str_printf(path, "%s/%s", dir, subdirs[i]);
        if (!make_dir(str_cstr(path), 0755))
            goto out;
    }
    /* The virtual mailboxes under DIR/mail belong to the account that owns the queue. */
    {
        struct passwd *pw = getpwnam(owner);

        if (pw == NULL) {
            log_error("cannot find the account %s", owner);
            goto out;
        }
        mail_uid = pw->pw_uid;
        mail_gid = pw->pw_gid;
        str_printf(path, "%s/mail", dir);
        if (as_root && chown(str_cstr(path), mail_uid, mail_gid) != 0) {
            log_error("cannot give %s to %s: %s", str_cstr(path), owner, strerror(errno));
            goto out;
        }
    }

    str_printf(text,
               "# main.cf of the Postern instance in %s, written by \"postern init\".\n"
               "# Syntax and parameter names are those of Postfix. Parameters that are not\n"
               "# set here have their defaults: \"postern -c %s conf -d\" lists them all.\n"
               "\n"
               "# Everything the instance keeps lives under its own directory.\n"
               "queue_directory = %s/queue\n"
               "data_directory = %s/data\n"
               "maillog_file = %s/log/maillog\n"
               "\n"
               "# Unprivileged account of the daemons, and group of postdrop.\n"
               "mail_owner = %s\n"
               "setgid_group = %s\n"
               "\n"
               "# Clients that may relay: this host only.\n"
               "mynetworks = 127.0.0.0/8 [::1]/128\n"
               "\n"
               "# Mail for NAME@localhost and NAME@$myhostname goes to the Maildir\n"
               "# %s/mail/NAME/ for any NAME of letters, digits, '.', '-' and '_':\n"
               "# both domains are virtual mailbox domains, and the pcre: table\n"
               "# %s/mailboxes maps each such address to its Maildir. No domain is\n"
               "# delivered to the system's accounts (mydestination is empty).\n"
               "mydestination =\n"
               "virtual_mailbox_domains = localhost, $myhostname\n"
               "virtual_mailbox_base = %s/mail\n"
               "virtual_mailbox_maps = pcre:%s/mailboxes\n"
               "# The mailboxes belong to %s (uid %lu, gid %lu).\n"
               "virtual_uid_maps = static:%lu\n"
               "virtual_gid_maps = static:%lu\n"
               "\n"
               "# Aliases of this instance (\"postern -c %s map -a hash:%s/aliases\"\n"
               "# or \"newaliases -C %s\" rebuilds them after an edit).\n"
               "alias_maps = hash:%s/aliases\n"
               "alias_database = hash:%s/aliases\n",
               dir, dir, dir, dir, dir, owner, group,
               dir, dir, dir, dir, owner, (unsigned long) mail_uid, (unsigned long) mail_gid,
               (unsigned long) mail_uid, (unsigned long) mail_gid, dir, dir, dir, dir, dir);
    if (str_len(overrides) > 0) {
        str_append_cstr(text, "\n# Settings given to \"postern init -o\".\n");
        str_append_str(text, overrides);
    }
    str_printf(path, "%s/main.cf", dir);
    if (!write_new_file(str_cstr(path), text))
        goto out;

    str_printf(text,
               "# master.cf of the Postern instance in %s: the services master runs.\n"
               "# Postfix syntax. Fields: service type private unpriv chroot wakeup maxproc\n"
               "# command + arguments; \"-\" means the default.\n"
               "#\n"
               "# service      type  private unpriv  chroot  wakeup  maxproc command + args\n"
               "# ==========================================================================\n"
               "%-14s inet  n       -       n       -       -       smtpd\n"
               "pickup         fifo  n       -       n       60      1       pickup\n"
               "cleanup        unix  -       -       n       -       0       cleanup\n"
               "rewrite        unix  -       -       n       -       -       trivial-rewrite\n"
               "qmgr           fifo  n       -       n       300     1       qmgr\n"
               "bounce         unix  -       -       n       -       0       bounce\n"
               "defer          unix  -       -       n       -       0       bounce\n"
               "showq          unix  n       -       n       -       -       showq\n"
               "anvil          unix  -       -       n       -       1       anvil\n"
               "#\n"
               "# Delivery agents. local and virtual start as root (unpriv = n) when\n"
               "# master is root, and switch to the mailbox owner for each delivery.\n"
               "local          unix  -       n       n       -       -       local\n"
               "virtual        unix  -       n       n       -       -       virtual\n"
               "error          unix  -       -       n       -       -       error\n"
               "retry          unix  -       -       n       -       -       error\n"
               "discard        unix  -       -       n       -       -       discard\n",
               dir, listen);
    str_printf(path, "%s/master.cf", dir);
    if (!write_new_file(str_cstr(path), text))
        goto out;

    /* The Maildir map: the pattern refuses a leading '.', so no NAME can be "." or "..". */
    str_set_cstr(text,
                 "# Virtual mailboxes of this instance: address -> Maildir under\n"
                 "# virtual_mailbox_base (a trailing '/' means Maildir).\n"
                 "/^([A-Za-z0-9_-][A-Za-z0-9._-]*)@[^@]+$/\t$1/\n");
    str_printf(path, "%s/mailboxes", dir);
    if (!write_new_file(str_cstr(path), text))
        goto out;
    str_set_cstr(text,
                 "# Aliases of this instance, in aliases(5) syntax: \"name: address, ...\".\n"
                 "postmaster: postmaster@localhost\n");
    str_printf(path, "%s/aliases", dir);
    if (!write_new_file(str_cstr(path), text))
        goto out;
    str_printf(path, "hash:%s/aliases", dir);
    if (dict_build(str_cstr(path), DICT_BUILD_ALIASES, text) != 0) {
        log_error("%s", str_cstr(text));
        goto out;
    }
    printf("postern: created instance %s (SMTP on %s)\n", dir, listen);
    printf("postern: start it with: postern -c %s start\n", dir);
    rc = POSTERN_EXIT_OK;
  out:
    str_free(path);
    str_free(text);
    str_free(overrides);
    return rc;
}
