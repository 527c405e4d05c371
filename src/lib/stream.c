/*
 * stream.c - buffered I/O with deadlines; see stream.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "mem.h"
#include "stream.h"

#define STREAM_BUFSIZE 16384

struct stream {
    int     fd;
    int     timeout;        /* seconds; 0 = none */
    int     status;         /* sticky error status */
    int     err;            /* errno for STREAM_ERR */
    bool    eof;
    unsigned char rbuf[STREAM_BUFSIZE];
    size_t  rpos, rlen;
    str_t   wbuf;
    int64_t deadline;       /* monotonic ms for the current call, 0 = none */
    int     sock;           /* SOCK_UNKNOWN, SOCK_YES or SOCK_NO */
    bool    fresh_call;     /* no read yet in the current call */
    int     blocking;       /* SOCK_UNKNOWN, SOCK_YES (blocking descriptor) or SOCK_NO */
    int     rcvtimeo;       /* the SO_RCVTIMEO we set, in seconds; -1 = none set */
    bool    seekable;       /* a file that is always ready: read and write, no poll */
    off_t   file_pos;       /* seekable: the file offset just after rbuf[rlen - 1] */
};

/*
 * Sockets are first read and written with MSG_DONTWAIT, and poll() is used
 * only when that would block: most reads of a busy session find data
 * already there, and the poll() per call was a third of a daemon's system
 * calls. Other descriptors (pipes, files, terminals) are polled first, as
 * their blocking mode belongs to whoever shares them.
 */
enum { SOCK_UNKNOWN, SOCK_YES, SOCK_NO };

/*
 * The first read of a call on a blocking socket waits in recv() itself,
 * with SO_RCVTIMEO set to the stream's timeout (set once, and again only
 * when the timeout changes): one system call where the try, poll and read
 * above take three, and in a non-pipelined SMTP session nearly every read
 * has to wait. It keeps the deadline exact, since that read starts the
 * call; later reads of the same call (a long line in pieces) wait with
 * poll() for what is left of the deadline.
 */

stream_t *
stream_open(int fd)
{
    stream_t *st = mem_zalloc(sizeof(*st));

    st->fd = fd;
    st->rcvtimeo = -1;
    str_init(&st->wbuf);
    return st;
}

stream_t *
stream_open_socket(int fd, bool blocking)
{
    stream_t *st = stream_open(fd);

    st->sock = SOCK_YES;
    st->blocking = blocking ? SOCK_YES : SOCK_NO;
    return st;
}

stream_t *
stream_open_file(int fd, off_t pos)
{
    stream_t *st = stream_open(fd);

    st->sock = SOCK_NO;
    st->seekable = true;
    st->file_pos = pos;
    return st;
}

void
stream_abandon(stream_t *st)
{
    if (st == NULL)
        return;
    str_release(&st->wbuf);
    mem_free(st);
}

int
stream_close(stream_t *st)
{
    int     rc = 0;

    if (st == NULL)
        return 0;
    if (st->wbuf.len > 0 && stream_flush(st) != STREAM_OK)
        rc = STREAM_ERR;
    if (close(st->fd) != 0 && rc == 0)
        rc = STREAM_ERR;
    stream_abandon(st);
    return rc;
}

int
stream_fd(const stream_t *st)
{
    return st->fd;
}

void
stream_set_timeout(stream_t *st, int seconds)
{
    st->timeout = seconds < 0 ? 0 : seconds;
}

int
stream_status(const stream_t *st)
{
    return st->status;
}

int
stream_errno(const stream_t *st)
{
    return st->err;
}

const char *
stream_strstatus(int status)
{
    switch (status) {
    case STREAM_OK:
        return "ok";
    case STREAM_EOF:
        return "lost connection";
    case STREAM_ERR:
        return "I/O error";
    case STREAM_TIMEOUT:
        return "timeout";
    case STREAM_TOOLONG:
        return "line too long";
    }
    return "unknown status";
}

static void
start_call(stream_t *st)
{
    st->deadline = st->timeout ? clock_mono_ms() + (int64_t) st->timeout * 1000 : 0;
    st->fresh_call = true;
}

static int
fail(stream_t *st, int status, int err)
{
    st->status = status;
    st->err = err;
    return status;
}

/* Wait for the descriptor to be ready for "events" before the deadline. */
static int
wait_ready(stream_t *st, short events)
{
    for (;;) {
        struct pollfd pfd = {.fd = st->fd, .events = events};
        int     ms = -1;

        if (st->deadline) {
            int64_t left = st->deadline - clock_mono_ms();

            if (left <= 0)
                return fail(st, STREAM_TIMEOUT, ETIMEDOUT);
            ms = left > 86400000 ? 86400000 : (int) left;
        }
        int     n = poll(&pfd, 1, ms);

        if (n > 0)
            return STREAM_OK;
        if (n == 0)
            continue;               /* re-check deadline */
        if (errno != EINTR)
            return fail(st, STREAM_ERR, errno);
    }
}

/* Refill the read buffer; returns STREAM_OK, STREAM_EOF or an error. */
/*
 * One non-blocking attempt on a socket: the recv()/send() result, or -1
 * with errno EAGAIN when the caller must poll first (would block, or the
 * descriptor is not a socket). Writes never raise SIGPIPE.
 */
static ssize_t
quick_io(stream_t *st, void *buf, size_t n, bool out)
{
    if (st->sock != SOCK_NO) {
        ssize_t r = out ? send(st->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : recv(st->fd, buf, n, MSG_DONTWAIT);

        if (r >= 0 || errno != ENOTSOCK) {
            st->sock = SOCK_YES;
            return r;
        }
        st->sock = SOCK_NO;
    }
    errno = EAGAIN;
    return -1;
}

/*
 * Can this read wait in recv() under SO_RCVTIMEO (see the top)? Sets the
 * option when needed; false means: use the try-poll-read path.
 */
static bool
blocking_recv_ok(stream_t *st)
{
    if (!st->fresh_call || st->sock != SOCK_YES)
        return false;
    st->fresh_call = false;
    if (st->blocking == SOCK_UNKNOWN) {
        int     fl = fcntl(st->fd, F_GETFL);

        st->blocking = fl >= 0 && (fl & O_NONBLOCK) == 0 ? SOCK_YES : SOCK_NO;
    }
    if (st->blocking != SOCK_YES)
        return false;
    if (st->rcvtimeo != st->timeout) {
        struct timeval tv = {.tv_sec = st->timeout, .tv_usec = 0};

        if (setsockopt(st->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
            st->blocking = SOCK_NO;
            return false;
        }
        st->rcvtimeo = st->timeout;
    }
    return true;
}

static int
fill(stream_t *st)
{
    if (st->status)
        return st->status;
    if (st->eof)
        return STREAM_EOF;
    if (st->rpos > 0 && st->rpos == st->rlen)
        st->rpos = st->rlen = 0;
    for (;;) {
        void   *buf = st->rbuf + st->rlen;
        size_t  room = sizeof(st->rbuf) - st->rlen;
        ssize_t n;

        if (blocking_recv_ok(st)) {
            n = recv(st->fd, buf, room, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return fail(st, STREAM_TIMEOUT, ETIMEDOUT);
            if (n < 0 && errno == EINTR)
                continue;           /* a signal: the poll path keeps the deadline */
        } else {
            n = quick_io(st, buf, room, false);
        }

        if (n < 0 && errno == EAGAIN) {
            int     rc = st->seekable ? STREAM_OK : wait_ready(st, POLLIN);

            if (rc != STREAM_OK)
                return rc;
            n = read(st->fd, buf, room);
        }
        if (n > 0) {
            st->rlen += (size_t) n;
            st->file_pos += n;
            return STREAM_OK;
        }
        if (n == 0) {
            st->eof = true;
            return STREAM_EOF;
        }
        if (errno == EINTR || errno == EAGAIN)
            continue;
        return fail(st, STREAM_ERR, errno);
    }
}

int
stream_seek(stream_t *st, off_t off)
{
    off_t   start = st->file_pos - (off_t) st->rlen;   /* the offset of rbuf[0] */

    if (!st->seekable)
        return fail(st, STREAM_ERR, ESPIPE);
    if (st->status)
        return st->status;
    if (off >= start && off <= st->file_pos) {
        st->rpos = (size_t) (off - start);     /* already read: from the buffer */
    } else {
        if (lseek(st->fd, off, SEEK_SET) < 0)
            return fail(st, STREAM_ERR, errno);
        st->file_pos = off;
        st->rpos = st->rlen = 0;
    }
    st->eof = false;
    return STREAM_OK;
}

int
stream_read_line(stream_t *st, str_t *line, size_t max)
{
    str_reset(line);
    start_call(st);
    for (;;) {
        if (st->rpos == st->rlen) {
            int     rc = fill(st);

            if (rc == STREAM_EOF)
                return line->len > 0 ? STREAM_OK : STREAM_EOF;
            if (rc != STREAM_OK)
                return rc;
        }
        unsigned char *start = st->rbuf + st->rpos;
        size_t  avail = st->rlen - st->rpos;
        unsigned char *nl = memchr(start, '\n', avail);
        size_t  take = nl ? (size_t) (nl - start) + 1 : avail;
        size_t  room = max - line->len;

        if (take > room) {
            str_append(line, start, room);
            st->rpos += room;
            return STREAM_TOOLONG;
        }
        str_append(line, start, take);
        st->rpos += take;
        if (nl)
            return STREAM_OK;
        if (st->rpos == st->rlen)
            st->rpos = st->rlen = 0;
    }
}

static int
read_into(stream_t *st, void *buf, str_t *s, size_t n)
{
    size_t  done = 0;

    start_call(st);
    while (done < n) {
        if (st->rpos == st->rlen) {
            int     rc = fill(st);

            if (rc != STREAM_OK)
                return rc;
        }
        size_t  take = st->rlen - st->rpos;

        if (take > n - done)
            take = n - done;
        if (buf)
            memcpy((char *) buf + done, st->rbuf + st->rpos, take);
        else
            str_append(s, st->rbuf + st->rpos, take);
        st->rpos += take;
        done += take;
    }
    return STREAM_OK;
}

int
stream_read_exact(stream_t *st, void *buf, size_t n)
{
    return read_into(st, buf, NULL, n);
}

int
stream_read_append(stream_t *st, str_t *s, size_t n)
{
    return read_into(st, NULL, s, n);
}

int
stream_getc(stream_t *st)
{
    if (st->rpos == st->rlen) {
        start_call(st);
        int     rc = fill(st);

        if (rc != STREAM_OK)
            return rc;
    }
    return st->rbuf[st->rpos++];
}

size_t
stream_pending(const stream_t *st)
{
    return st->rlen - st->rpos;
}

bool
stream_peer_gone(stream_t *st)
{
    char    c;
    ssize_t n;

    if (st->rpos < st->rlen)
        return false;
    if (st->status || st->eof)
        return true;
    n = recv(st->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int
stream_wait_readable(stream_t *st, int timeout_ms)
{
    if (st->rpos < st->rlen)
        return STREAM_OK;
    if (st->status)
        return st->status;
    if (st->eof)
        return STREAM_EOF;
    st->deadline = clock_mono_ms() + timeout_ms;
    int     rc = wait_ready(st, POLLIN);

    if (rc == STREAM_TIMEOUT) {     /* not sticky: this was only a probe */
        st->status = STREAM_OK;
        st->err = 0;
    }
    return rc;
}

int
stream_write(stream_t *st, const void *data, size_t n)
{
    if (st->status)
        return st->status;
    str_append(&st->wbuf, data, n);
    if (st->wbuf.len >= STREAM_BUFSIZE)
        return stream_flush(st);
    return STREAM_OK;
}

int
stream_puts(stream_t *st, const char *s)
{
    return stream_write(st, s, strlen(s));
}

int
stream_printf(stream_t *st, const char *fmt, ...)
{
    va_list ap;

    if (st->status)
        return st->status;
    va_start(ap, fmt);
    str_append_vprintf(&st->wbuf, fmt, ap);
    va_end(ap);
    if (st->wbuf.len >= STREAM_BUFSIZE)
        return stream_flush(st);
    return STREAM_OK;
}

int
stream_flush(stream_t *st)
{
    size_t  off = 0;

    if (st->status)
        return st->status;
    start_call(st);
    while (off < st->wbuf.len) {
        ssize_t n = quick_io(st, st->wbuf.data + off, st->wbuf.len - off, true);

        if (n < 0 && errno == EAGAIN) {
            int     rc = st->seekable ? STREAM_OK : wait_ready(st, POLLOUT);

            if (rc != STREAM_OK)
                return rc;
            n = st->sock == SOCK_YES
                ? send(st->fd, st->wbuf.data + off, st->wbuf.len - off, MSG_DONTWAIT | MSG_NOSIGNAL)
                : write(st->fd, st->wbuf.data + off, st->wbuf.len - off);
        }

        if (n > 0) {
            off += (size_t) n;
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return fail(st, STREAM_ERR, n < 0 ? errno : EIO);
    }
    str_reset(&st->wbuf);
    return STREAM_OK;
}

ssize_t
fd_write_all(int fd, const void *data, size_t n)
{
    size_t  off = 0;

    while (off < n) {
        ssize_t w = write(fd, (const char *) data + off, n - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t) w;
    }
    return (ssize_t) off;
}

ssize_t
fd_read_full(int fd, void *buf, size_t n)
{
    size_t  off = 0;

    while (off < n) {
        ssize_t r = read(fd, (char *) buf + off, n - off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        off += (size_t) r;
    }
    return (ssize_t) off;
}
