/*
 * ipc.c - client side of internal services: connect, greet, trigger.
 *
 * Trust: the peer is another Postern program, but its greeting is checked
 * (attr_expect_protocol) so a client that reached the wrong socket fails
 * at once instead of misreading replies.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attr.h"
#include "clock.h"
#include "ipc.h"
#include "log.h"

void
ipc_path(str_t *out, const char *qdir, const char *class, const char *service)
{
    if (qdir)
        str_printf(out, "%s/%s/%s", qdir, class, service);
    else
        str_printf(out, "%s/%s", class, service);
}

stream_t *
ipc_connect(const char *qdir, const char *class, const char *service,
            const char *proto, int timeout_s, str_t *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    str_t  *path = str_new(64);
    str_t  *why = str_new(0);
    stream_t *st = NULL;
    int     fd;

    ipc_path(path, qdir, class, service);
    if (str_len(path) >= sizeof(sun.sun_path)) {
        str_printf(err, "connect to %s: path too long", str_cstr(path));
        goto out;
    }
    memcpy(sun.sun_path, str_cstr(path), str_len(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        str_printf(err, "socket: %s", strerror(errno));
        goto out;
    }
    while (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0) {
        if (errno == EINTR)
            continue;
        str_printf(err, "connect to %s: %s", str_cstr(path), strerror(errno));
        close(fd);
        goto out;
    }
    st = stream_open_socket(fd, true);
    stream_set_timeout(st, timeout_s);
    if (proto && attr_expect_protocol(st, proto, why) != ATTR_OK) {
        str_printf(err, "%s service: %s", service, str_cstr(why));
        stream_close(st);
        st = NULL;
    }
  out:
    str_free(why);
    str_free(path);
    return st;
}

/*
 * A process that wakes the same FIFO for every message (cleanup wakes
 * qmgr) keeps it open for up to KEEP_FIFO_MS: a stat, an open and a close
 * per wake-up were most of what the wake-up cost. The FIFO is master's, and
 * master holds it open; opening it again every second picks up a FIFO made
 * anew by a restarted instance.
 */
#define KEEP_FIFO_MS    1000

static str_t *kept_path;
static int kept_fd = -1;
static int64_t kept_until;

static void
kept_close(void)
{
    if (kept_fd >= 0)
        (void) close(kept_fd);
    kept_fd = -1;
}

/* Write the wake-up byte: 0, or -1 when the reader is gone or broken. */
static int
trigger_write(int fd, char what)
{
    ssize_t n;

    do
        n = write(fd, &what, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 || (n < 0 && errno == EAGAIN) ? 0 : -1;   /* full: awake anyway */
}

int
ipc_trigger(const char *qdir, const char *class, const char *service, char what)
{
    str_t  *path = str_new(64);
    struct stat sb;
    int     fd = -1, rc = -1;

    ipc_path(path, qdir, class, service);
    if (kept_fd >= 0) {
        if (clock_mono_ms() < kept_until && str_eq_cstr(path, str_cstr(kept_path))
            && trigger_write(kept_fd, what) == 0) {
            str_free(path);
            return 0;
        }
        kept_close();
    }
    if (stat(str_cstr(path), &sb) != 0) {
        /* nobody listens: fd stays -1 */
    } else if (S_ISFIFO(sb.st_mode)) {
        fd = open(str_cstr(path), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    } else if (S_ISSOCK(sb.st_mode)) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        if (str_len(path) < sizeof(sun.sun_path)) {
            memcpy(sun.sun_path, str_cstr(path), str_len(path) + 1);
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
                && errno != EINPROGRESS) {
                close(fd);
                fd = -1;
            }
        }
    }
    if (fd >= 0) {
        rc = trigger_write(fd, what);
        if (rc == 0 && S_ISFIFO(sb.st_mode)) {
            kept_fd = fd;
            kept_until = clock_mono_ms() + KEEP_FIFO_MS;
            if (kept_path == NULL)
                kept_path = str_new(64);
            str_set_cstr(kept_path, str_cstr(path));
        } else {
            (void) close(fd);
        }
    }
    str_free(path);
    return rc;
}
