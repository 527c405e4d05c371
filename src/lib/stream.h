/*
 * stream.h - buffered, deadline-aware I/O on a file descriptor.
 *
 * The only place in Postern that calls read(2)/write(2) on sockets and pipes:
 * EINTR, short reads and short writes are handled here once. Each public call
 * that may block finishes within the stream's timeout (seconds, 0 = wait
 * forever) or returns STREAM_TIMEOUT.
 *
 * Ownership: a stream owns its descriptor; stream_close() closes it.
 * Errors are sticky: after STREAM_ERR or STREAM_TIMEOUT every further call
 * returns the same status. Nothing here logs; callers decide.
 */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

enum stream_status {
    STREAM_OK = 0,
    STREAM_EOF = -1,        /* orderly end of input */
    STREAM_ERR = -2,        /* I/O error; stream_errno() tells which */
    STREAM_TIMEOUT = -3,    /* deadline passed */
    STREAM_TOOLONG = -4,    /* line longer than the caller's limit */
};

typedef struct stream stream_t;

stream_t *stream_open(int fd);
/* A connected socket whose blocking mode the caller knows: no probing calls. */
stream_t *stream_open_socket(int fd, bool blocking);
/*
 * A descriptor that lseek() works on (a regular file), now at offset pos:
 * always ready, so it is read and written directly, never polled. Not for
 * anything that can block, such as a FIFO an untrusted user may have put in
 * place of a file.
 */
stream_t *stream_open_file(int fd, off_t pos);
/*
 * Reading a file stream: go on from offset off, out of what was read
 * already when it covers off (no system call), else after an lseek().
 */
int     stream_seek(stream_t *st, off_t off);
int     stream_close(stream_t *st);         /* flushes; returns 0 or STREAM_ERR */
void    stream_abandon(stream_t *st);       /* frees without flushing or closing fd */
int     stream_fd(const stream_t *st);
void    stream_set_timeout(stream_t *st, int seconds);
int     stream_status(const stream_t *st);  /* sticky status, STREAM_OK if none */
int     stream_errno(const stream_t *st);
const char *stream_strstatus(int status);

/*
 * Read one line, through and including "\n", appending nothing else: "line"
 * is reset first. At most "max" bytes are stored. When the line is longer,
 * the first "max" bytes are returned with STREAM_TOOLONG and the rest of the
 * line stays unread (call again to continue). At end of input a partial last
 * line is returned with STREAM_OK; an empty read at end returns STREAM_EOF.
 */
int     stream_read_line(stream_t *st, str_t *line, size_t max);
/* Read exactly n bytes into buf (STREAM_EOF if the input ends first). */
int     stream_read_exact(stream_t *st, void *buf, size_t n);
/* Read exactly n bytes, appending them to s. */
int     stream_read_append(stream_t *st, str_t *s, size_t n);
/* Read one byte: returns 0..255, or a negative stream_status. */
int     stream_getc(stream_t *st);
/* Bytes already buffered and unread (e.g. to detect pipelined input). */
size_t  stream_pending(const stream_t *st);
/*
 * Without waiting: has the peer of a socket closed its end (or reset it),
 * with nothing left unread? Used before reusing a kept connection.
 */
bool    stream_peer_gone(stream_t *st);
/* Wait until input is available or the timeout passes: STREAM_OK/TIMEOUT/EOF... */
int     stream_wait_readable(stream_t *st, int timeout_ms);

int     stream_write(stream_t *st, const void *data, size_t n);
int     stream_puts(stream_t *st, const char *s);
int     stream_printf(stream_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int     stream_flush(stream_t *st);

/* Low level, for code that does not use a stream: full write/read with EINTR handled. */
ssize_t fd_write_all(int fd, const void *data, size_t n);
ssize_t fd_read_full(int fd, void *buf, size_t n);  /* stops early only at EOF */

#endif
