/*
 * test_deliver.c - unit tests for deliver.c: reading a request, results and
 * the reply, deliver_copy() and its quoting, the Maildir and mbox writers
 * (symbolic links, hard links, size limits and truncation, stale locks).
 *
 * Everything happens in a private temporary directory that stands for
 * queue_directory (the test chdirs there); queue files are built with
 * rec_put like cleanup writes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "config.h"
#include "deliver.h"
#include "mem.h"
#include "queue.h"
#include "rec.h"
#include "str.h"
#include "unit.h"

#define QID "4bKj7Pq2RtzM3x"

static char test_dir[64];
static config_t *test_cfg;

/* Make the temporary queue directory and chdir there (once). */
static void
setup(void)
{
    if (test_dir[0])
        return;
    snprintf(test_dir, sizeof(test_dir), "/tmp/test_deliver.XXXXXX");
    if (mkdtemp(test_dir) == NULL || chdir(test_dir) != 0 || mkdir("active", 0700) != 0) {
        perror(test_dir);
        exit(2);
    }
    test_cfg = config_new();
    queue_init(test_cfg);
}

/*
 * Write active/QID with the given content lines (a line longer than 100
 * bytes is split into L records); returns its content offset. Lines are
 * NUL-terminated C strings.
 */
static off_t
write_queue_file(const char *sender, const char *const *lines, size_t n)
{
    str_t  *env = str_new(0), *content = str_new(0), *file = str_new(0), *path = str_new(0);
    long long size = 0;
    off_t   offset;
    int     fd;

    rec_put_str(env, REC_TYPE_TIME, "1700000000.000000");
    rec_put_str(env, REC_TYPE_SENDER, sender);
    rec_put_str(env, REC_TYPE_RCPT, "bob@example.com");
    rec_put(env, REC_TYPE_MESG, "", 0);
    for (size_t i = 0; i < n; i++) {
        rec_put_line(content, lines[i], strlen(lines[i]), 100);
        size += (long long) strlen(lines[i]) + 1;
    }
    rec_put(content, REC_TYPE_XTRA, "", 0);
    rec_put(content, REC_TYPE_END, "", 0);

    rec_put_str(file, REC_TYPE_VERSION, REC_VERSION_CURRENT);
    {
        str_t  *probe = str_new(0);

        rec_putf(probe, REC_TYPE_SIZE, REC_SIZE_FORMAT, 0LL, 0LL, 0LL);
        offset = (off_t) (str_len(file) + str_len(probe) + str_len(env));
        str_free(probe);
    }
    rec_putf(file, REC_TYPE_SIZE, REC_SIZE_FORMAT, size, (long long) offset, 1LL);
    str_append_str(file, env);
    str_append_str(file, content);

    queue_path(path, "active", QID);
    fd = open(str_cstr(path), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, str_cstr(file), str_len(file)) != (ssize_t) str_len(file)
        || close(fd) != 0) {
        perror(str_cstr(path));
        exit(2);
    }
    str_free(env);
    str_free(content);
    str_free(file);
    str_free(path);
    return offset;
}

/* A request for the file written by write_queue_file (not read from a peer). */
static struct deliver_request *
make_request(const char *sender, off_t offset, const char *rcpt)
{
    struct deliver_request *rq = mem_zalloc(sizeof(*rq));

    rq->queue_name = mem_strdup("active");
    rq->queue_id = mem_strdup(QID);
    rq->content_offset = offset;
    rq->sender = mem_strdup(sender);
    rq->arrival_time = 1700000000;
    rq->active_time = 1700000000;
    rq->start_ms = 1700000000000LL;
    rq->nrcpt = 1;
    rq->rcpt = mem_array(1, sizeof(*rq->rcpt));
    rq->rcpt[0].address = mem_strdup(rcpt);
    rq->rcpt[0].orig = mem_strdup("");
    rq->rcpt[0].orcpt = mem_strdup("");
    return rq;
}

/* The whole file at path into a new str_t ("" when missing). */
static str_t *
slurp(const char *path)
{
    str_t  *s = str_new(0);
    char    buf[4096];
    int     fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0)
        return s;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        str_append(s, buf, (size_t) n);
    close(fd);
    return s;
}

static const char *const simple_lines[] = {
    "Subject: hello", "From: joe@example.com", "", "From the start", "a From b", ".dot", "end",
};

TEST(copy_plain_with_headers)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    const char *hdrs[] = {"Return-Path: <joe@example.com>", "X-Test: 1", NULL};
    str_t  *why = str_new(0);
    int     fd = open("out.plain", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK_INTEQ(deliver_copy(rq, fd, hdrs, 0, why), 0);
    close(fd);
    str_t  *got = slurp("out.plain");

    CHECK_STREQ(str_cstr(got), "Return-Path: <joe@example.com>\nX-Test: 1\nSubject: hello\n"
                "From: joe@example.com\n\nFrom the start\na From b\n.dot\nend\n");
    str_free(got);
    str_free(why);
    deliver_request_free(rq);
}

TEST(copy_mbox_quotes_from_lines)
{
    setup();
    char    longline[300];

    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "From ", 5);
    longline[sizeof(longline) - 1] = 0;
    const char *lines[] = {"Subject: q", "", "From me", ">From you", longline, "From"};
    off_t   off = write_queue_file("", lines, 6);
    struct deliver_request *rq = make_request("", off, "bob@example.com");
    str_t  *why = str_new(0);
    int     fd = open("out.mbox", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK_INTEQ(deliver_copy(rq, fd, NULL, DELIVER_COPY_MBOX, why), 0);
    close(fd);
    str_t  *got = slurp("out.mbox");
    const char *body = strchr(str_cstr(got), '\n');

    CHECK(cstr_has_prefix(str_cstr(got), "From MAILER-DAEMON  "));
    CHECK(body != NULL);
    if (body) {
        str_t  *want = str_new(0);

        str_printf(want, "\nSubject: q\n\n>From me\n>From you\n>%s\nFrom\n\n", longline);
        CHECK_STREQ(body, str_cstr(want));
        str_free(want);
    }
    str_free(got);
    str_free(why);
    deliver_request_free(rq);
}

TEST(copy_crlf_and_dot_stuffing)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);
    int     fd = open("out.crlf", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK_INTEQ(deliver_copy(rq, fd, NULL, DELIVER_COPY_CRLF | DELIVER_COPY_DOT, why), 0);
    close(fd);
    str_t  *got = slurp("out.crlf");

    CHECK_STREQ(str_cstr(got), "Subject: hello\r\nFrom: joe@example.com\r\n\r\nFrom the start\r\n"
                "a From b\r\n..dot\r\nend\r\n");
    str_free(got);
    str_free(why);
    deliver_request_free(rq);
}

TEST(copy_refuses_wrong_offset)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off + 2, "bob@example.com");
    str_t  *why = str_new(0);
    int     fd = open("out.bad", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK_INTEQ(deliver_copy(rq, fd, NULL, 0, why), -1);
    CHECK_INTEQ(errno, EBADMSG);
    CHECK(strstr(str_cstr(why), "content offset") != NULL);
    close(fd);
    /* An offset that points at an envelope record: caught by the record check. */
    rq->content_offset = off;
    str_free(why);
    deliver_request_free(rq);
}

TEST(copy_refuses_missing_queue_file)
{
    setup();
    struct deliver_request *rq = make_request("joe@example.com", 100, "bob@example.com");
    str_t  *why = str_new(0);

    mem_free(rq->queue_id);
    rq->queue_id = mem_strdup("4bKj7Pq2RtzM3y");
    CHECK_INTEQ(deliver_copy(rq, 1, NULL, 0, why), -1);
    CHECK(strstr(str_cstr(why), "cannot open queue file") != NULL);
    str_free(why);
    deliver_request_free(rq);
}

TEST(copy_write_error_keeps_errno)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);
    int     fd = open("/dev/full", O_WRONLY);

    if (fd >= 0) {
        CHECK_INTEQ(deliver_copy(rq, fd, NULL, 0, why), -1);
        CHECK_INTEQ(errno, ENOSPC);
        close(fd);
    }
    str_free(why);
    deliver_request_free(rq);
}

/* The one file in dir (NULL when none or several); caller frees. */
static char *
only_file(const char *dir)
{
    char    cmd[256];
    char    line[512];
    FILE   *p;
    char   *found = NULL;
    int     count = 0;

    snprintf(cmd, sizeof(cmd), "ls -A %s 2>/dev/null", dir);
    if ((p = popen(cmd, "r")) == NULL)
        return NULL;
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = 0;
        if (count++ == 0)
            found = mem_strdup(line);
    }
    pclose(p);
    if (count != 1) {
        mem_free(found);
        return NULL;
    }
    return found;
}

TEST(maildir_delivery)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "Bob@Example.COM");
    str_t  *why = str_new(0), *path = str_new(0);

    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/example.com/bob/", why), 0);
    CHECK(strstr(str_cstr(why), "delivered to maildir") != NULL);
    char   *name = only_file("mail/example.com/bob/new");

    CHECK(name != NULL);
    CHECK(only_file("mail/example.com/bob/tmp") == NULL);
    if (name) {
        str_printf(path, "mail/example.com/bob/new/%s", name);
        str_t  *got = slurp(str_cstr(path));

        CHECK(cstr_has_prefix(str_cstr(got), "Return-Path: <joe@example.com>\n"
                              "Delivered-To: bob@example.com\nSubject: hello\n"));
        CHECK(strstr(name, ".M") != NULL && strstr(name, "P") != NULL);
        str_free(got);
        mem_free(name);
    }
    struct stat st;

    CHECK(stat("mail/example.com/bob/cur", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 07777) == 0700);
    /* A second delivery gets its own file. */
    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/example.com/bob", why), 0);
    CHECK(only_file("mail/example.com/bob/new") == NULL);   /* two files now */
    /* tmp/ and cur/ gone: both are made again at the next delivery. */
    CHECK(rmdir("mail/example.com/bob/cur") == 0 && rmdir("mail/example.com/bob/tmp") == 0);
    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/example.com/bob", why), 0);
    CHECK(stat("mail/example.com/bob/tmp", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(stat("mail/example.com/bob/cur", &st) == 0 && S_ISDIR(st.st_mode));
    str_free(why);
    str_free(path);
    deliver_request_free(rq);
}

/* The number of entries in dir (0 when it cannot be listed). */
static int
count_files(const char *dir)
{
    char    cmd[256], line[512];
    int     n = 0;
    FILE   *p;

    snprintf(cmd, sizeof(cmd), "ls -A %s 2>/dev/null", dir);
    if ((p = popen(cmd, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), p))
        n++;
    pclose(p);
    return n;
}

/*
 * A delivery into mail/NAME by a child that SIGXFSZ kills at its first
 * write beyond 10 bytes; the number of files it leaves in tmp/ and new/.
 */
static int
killed_mid_write(struct deliver_request *rq, const char *name)
{
    char    dir[64], sub[80];
    int     status = 0, left = 0;
    pid_t   pid;

    snprintf(dir, sizeof(dir), "mail/%s", name);
    if ((pid = fork()) == 0) {
        struct rlimit lim, nocore = {0, 0};
        str_t  *why = str_new(0);

        signal(SIGXFSZ, SIG_DFL);
        setrlimit(RLIMIT_CORE, &nocore);
        if (getrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(2);
        lim.rlim_cur = 10;
        setrlimit(RLIMIT_FSIZE, &lim);
        deliver_maildir(rq, 0, dir, why);
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
    for (int k = 0; k < 2; k++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, k ? "new" : "tmp");
        left += count_files(sub);
    }
    return left;
}

TEST(maildir_agent_killed_mid_write_leaves_nothing)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);

    /* The message is an unnamed file until it is complete. */
    CHECK_INTEQ(killed_mid_write(rq, "crash"), 0);
    /* Named files (the fallback) leave the partial file in tmp/, as Maildir readers expect. */
    deliver_maildir_named(true);
    CHECK_INTEQ(killed_mid_write(rq, "crash-named"), 1);
    CHECK(only_file("mail/crash-named/new") == NULL);
    /* The fallback delivers like the default. */
    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/named", why), 0);
    char   *name = only_file("mail/named/new");

    CHECK(name != NULL);
    CHECK(only_file("mail/named/tmp") == NULL);
    mem_free(name);
    deliver_maildir_named(false);
    str_free(why);
    deliver_request_free(rq);
}

TEST(maildir_symlink_refused)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "eve@example.com");
    str_t  *why = str_new(0);

    CHECK(mkdir("elsewhere", 0700) == 0);
    CHECK(symlink("../elsewhere", "mail/eve") == 0 || (mkdir("mail", 0700) == 0
                                                      && symlink("../elsewhere", "mail/eve") == 0));
    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/eve/", why), DELIVER_FAIL_PERM);
    CHECK_STREQ(deliver_fail_dsn(), "5.2.0");
    CHECK(strstr(str_cstr(why), "symbolic link") != NULL);
    CHECK(only_file("elsewhere") == NULL);
    /* A plain file where the Maildir should be. */
    CHECK(close(open("mail/file", O_WRONLY | O_CREAT, 0600)) == 0);
    CHECK_INTEQ(deliver_maildir(rq, 0, "mail/file", why), DELIVER_FAIL_PERM);
    str_free(why);
    deliver_request_free(rq);
}

TEST(mbox_delivery_appends)
{
    setup();
    const char *lines[] = {"Subject: m", "", "From here", "bye"};
    off_t   off = write_queue_file("joe@example.com", lines, 4);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);

    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.bob", why), 0);
    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.bob", why), 0);
    str_t  *got = slurp("mbox.bob");
    const char *second = strstr(str_cstr(got) + 1, "\nFrom joe@example.com  ");

    CHECK(cstr_has_prefix(str_cstr(got), "From joe@example.com  "));
    CHECK(second != NULL);
    CHECK(strstr(str_cstr(got), "\nReturn-Path: <joe@example.com>\nDelivered-To: bob@example.com\n"
                 "Subject: m\n\n>From here\nbye\n\n") != NULL);
    CHECK(access("mbox.bob.lock", F_OK) != 0);
    struct stat st;

    CHECK(stat("mbox.bob", &st) == 0 && (st.st_mode & 0777) == 0600);
    str_free(got);
    str_free(why);
    deliver_request_free(rq);
}

TEST(mbox_refuses_links_and_non_files)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);

    CHECK(close(open("target", O_WRONLY | O_CREAT, 0600)) == 0);
    CHECK(symlink("target", "mbox.sym") == 0);
    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.sym", why), DELIVER_FAIL_PERM);
    CHECK(strstr(str_cstr(why), "symbolic link") != NULL);
    CHECK(link("target", "mbox.hard") == 0);
    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.hard", why), DELIVER_FAIL_PERM);
    CHECK(strstr(str_cstr(why), "hard links") != NULL);
    CHECK(mkdir("mbox.dir", 0700) == 0);
    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.dir", why), DELIVER_FAIL_PERM);
    str_t  *t = slurp("target");

    CHECK_INTEQ(str_len(t), 0);
    CHECK(access("mbox.sym.lock", F_OK) != 0 && access("mbox.hard.lock", F_OK) != 0);
    str_free(t);
    str_free(why);
    deliver_request_free(rq);
}

TEST(mbox_size_limit_truncates_back)
{
    setup();
    const char *lines[] = {"Subject: big", "", "0123456789012345678901234567890123456789"};
    off_t   off = write_queue_file("joe@example.com", lines, 3);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);
    struct rlimit old, lim;
    struct stat st;

    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.full", why), 0);
    CHECK(stat("mbox.full", &st) == 0);
    off_t   before = st.st_size;

    signal(SIGXFSZ, SIG_IGN);
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t) before + 30;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int     rc = deliver_mbox(rq, 0, "mbox.full", why);

    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK_INTEQ(rc, DELIVER_FAIL_PERM);
    CHECK_STREQ(deliver_fail_dsn(), "5.2.2");
    CHECK(stat("mbox.full", &st) == 0);
    CHECK_INTEQ(st.st_size, before);
    CHECK(access("mbox.full.lock", F_OK) != 0);
    str_free(why);
    deliver_request_free(rq);
}

TEST(mbox_stale_lock_removed)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    struct deliver_request *rq = make_request("joe@example.com", off, "bob@example.com");
    str_t  *why = str_new(0);
    struct timeval tv[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};

    CHECK(close(open("mbox.stale.lock", O_WRONLY | O_CREAT, 0600)) == 0);
    CHECK(utimes("mbox.stale.lock", tv) == 0);
    CHECK_INTEQ(deliver_mbox(rq, 0, "mbox.stale", why), 0);
    CHECK(access("mbox.stale.lock", F_OK) != 0);
    str_free(why);
    deliver_request_free(rq);
}

/* Send request al over a socketpair and read it with deliver_request_read. */
static struct deliver_request *
read_request(attr_list_t *al, str_t *err, stream_t **peer_out)
{
    int     sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        exit(2);
    }
    stream_t *peer = stream_open(sv[0]), *agent = stream_open(sv[1]);

    stream_set_timeout(peer, 5);
    stream_set_timeout(agent, 5);
    attr_write(peer, al);
    struct deliver_request *rq = deliver_request_read(agent, err);

    stream_close(agent);
    if (peer_out)
        *peer_out = peer;
    else
        stream_close(peer);
    return rq;
}

static attr_list_t *
good_request(off_t off)
{
    attr_list_t *al = attr_list_new();

    attr_put_str(al, "queue_name", "active");
    attr_put_str(al, "queue_id", QID);
    attr_put_int(al, "content_offset", off);
    attr_put_int(al, "message_size", 10);
    attr_put_int(al, "arrival_time", 1700000000);
    attr_put_int(al, "active_time", 1700000001);
    attr_put_str(al, "sender", "joe@example.com");
    attr_put_str(al, "transport", "virtual");
    attr_put_str(al, "nexthop", "example.com");
    attr_put_int(al, "flags", 0);
    attr_put_int(al, "rcpt_count", 2);
    attr_put_str(al, "rcpt_0_address", "bob@example.com");
    attr_put_str(al, "rcpt_0_orig", "Bob@example.com");
    attr_put_int(al, "rcpt_0_offset", 77);
    attr_put_str(al, "rcpt_1_address", "al@example.com");
    attr_put_int(al, "rcpt_1_notify", 6);
    attr_put_int(al, "rcpt_1_offset", 99);
    return al;
}

TEST(request_read_and_reply)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    attr_list_t *al = good_request(off), *reply = attr_list_new();
    str_t  *err = str_new(0);
    stream_t *peer;
    struct deliver_request *rq = read_request(al, err, &peer);
    const char *v;
    long long n;

    CHECK(rq != NULL);
    if (rq == NULL) {
        fprintf(stderr, "  request: %s\n", str_cstr(err));
        return;
    }
    CHECK_STREQ(rq->queue_id, QID);
    CHECK_STREQ(rq->sender, "joe@example.com");
    CHECK_STREQ(rq->nexthop, "example.com");
    CHECK_INTEQ(rq->nrcpt, 2);
    CHECK_STREQ(rq->rcpt[0].orig, "Bob@example.com");
    CHECK_INTEQ(rq->rcpt[1].notify, 6);
    CHECK_INTEQ(rq->rcpt[1].offset, 99);
    CHECK(rq->queue_fd_set);
    CHECK_INTEQ(rq->active_time, 1700000001);

    /* The file stays readable through the descriptor opened with the request. */
    str_t  *path = str_new(0);

    queue_path(path, "active", QID);
    CHECK(rename(str_cstr(path), "moved-away") == 0);
    int     fd = open("out.req", O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CHECK_INTEQ(deliver_copy(rq, fd, NULL, 0, err), 0);
    close(fd);
    CHECK(rename("moved-away", str_cstr(path)) == 0);

    deliver_sent(rq, 0, "virtual", "2.0.0", "delivered to %s", "maildir");
    /* Recipient 1 has no result: the reply defers it. */
    int     sv[2];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    stream_t *a = stream_open(sv[0]), *b = stream_open(sv[1]);

    CHECK_INTEQ(deliver_reply(a, rq), 0);
    CHECK_INTEQ(attr_read(b, NULL, reply, err), ATTR_OK);
    CHECK(attr_get_int(reply, "status", 0, 10, &n) == ATTR_OK && n == 0);
    CHECK(attr_get_str(reply, "rcpt_0_result", &v) == ATTR_OK && strcmp(v, "sent") == 0);
    CHECK(attr_get_str(reply, "rcpt_0_reason", &v) == ATTR_OK
          && strcmp(v, "delivered to maildir") == 0);
    CHECK(attr_get_str(reply, "rcpt_0_relay", &v) == ATTR_OK && strcmp(v, "virtual") == 0);
    CHECK(attr_get_str(reply, "rcpt_0_dsn", &v) == ATTR_OK && strcmp(v, "2.0.0") == 0);
    CHECK(attr_get_str(reply, "rcpt_1_result", &v) == ATTR_OK && strcmp(v, "deferred") == 0);
    CHECK(attr_get_str(reply, "rcpt_1_dsn", &v) == ATTR_OK && strcmp(v, "4.3.0") == 0);
    CHECK(attr_get_str(reply, "rcpt_1_reason", &v) == ATTR_OK);
    CHECK(attr_get_str(reply, "rcpt_1_relay", &v) == ATTR_OK);
    CHECK_INTEQ(attr_check_end(reply, err), ATTR_OK);
    stream_close(a);
    stream_close(b);

    /* The greeting came first on the request connection. */
    CHECK_INTEQ(attr_expect_protocol(peer, DELIVER_PROTOCOL, err), ATTR_OK);
    stream_close(peer);
    str_free(path);
    attr_list_free(al);
    attr_list_free(reply);
    str_free(err);
    deliver_request_free(rq);
}

TEST(request_read_refuses_bad_requests)
{
    setup();
    off_t   off = write_queue_file("joe@example.com", simple_lines, 7);
    str_t  *err = str_new(0);
    struct {
        const char *name;
        const char *value;      /* NULL: remove by rebuilding without it */
        const char *want;       /* in err */
    } cases[] = {
        {"queue_id", "../../etc/passwd", "queue ID"},
        {"queue_name", "nosuch", "queue name"},
        {"rcpt_0_address", "bob@example.com\r\nX: y", "line break"},
        {"rcpt_count", "3", "rcpt_2_address"},
        {"rcpt_count", "0", "rcpt_count"},
        {"content_offset", "-5", "content_offset"},
        {"unknown_thing", "1", "unknown_thing"},
        {"queue_id", "4bKj7Pq2RtzM3y", "cannot open queue file"},
    };

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        attr_list_t *al = good_request(off);

        attr_put_str(al, cases[c].name, cases[c].value);
        struct deliver_request *rq = read_request(al, err, NULL);

        CHECK(rq == NULL);
        if (strstr(str_cstr(err), cases[c].want) == NULL) {
            fprintf(stderr, "  case %zu: err \"%s\", want \"%s\"\n", c, str_cstr(err),
                    cases[c].want);
            CHECK(0);
        }
        deliver_request_free(rq);
        attr_list_free(al);
    }
    str_free(err);
}

TEST(delays_text)
{
    struct deliver_request rq = {.arrival_time = 100, .active_time = 102};
    str_t  *out = str_new(0);

    rq.start_ms = 102250;
    deliver_delays(&rq, out);
    /* delay= depends on the clock; the first three parts do not. */
    CHECK(cstr_has_prefix(str_cstr(out), "delay="));
    CHECK(strstr(str_cstr(out), ", delays=2/0.25/0/") != NULL);
    str_free(out);
}

TEST(zz_cleanup)
{
    char    cmd[128];

    if (test_dir[0]) {
        CHECK(chdir("/") == 0);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
        CHECK(system(cmd) == 0);
    }
    config_free(test_cfg);
}
