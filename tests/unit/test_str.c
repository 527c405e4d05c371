/*
 * test_str.c - unit tests for str.c and stream.c.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "str.h"
#include "unit.h"

TEST(append_and_printf)
{
    str_t  *s = str_new(0);

    str_append(s, "ab\0c", 4);
    CHECK_INTEQ(str_len(s), 4);
    CHECK(memcmp(str_cstr(s), "ab\0c", 5) == 0);
    str_printf(s, "%s-%d", "x", 42);
    CHECK_STREQ(str_cstr(s), "x-42");
    for (int i = 0; i < 1000; i++)
        str_append_printf(s, "%04d", i);
    CHECK_INTEQ(str_len(s), 4 + 4000);
    CHECK(cstr_has_prefix(str_cstr(s) + 4, "00000001"));
    str_free(s);
}

TEST(trim_chomp_lower)
{
    str_t  *s = str_new(0);

    str_set_cstr(s, "  Hello World \r\n");
    str_chomp(s);
    CHECK_STREQ(str_cstr(s), "  Hello World ");
    str_trim(s);
    CHECK_STREQ(str_cstr(s), "Hello World");
    str_lower(s);
    CHECK_STREQ(str_cstr(s), "hello world");
    CHECK(str_eq_cstr(s, "hello world"));
    CHECK(!str_eq_cstr(s, "hello"));
    str_free(s);
}

TEST(parse_numbers_and_bools)
{
    static const struct {
        const char *in;
        int     rc;
        long    val;
    } cases[] = {
        {"0", 0, 0}, {"42", 0, 42}, {"-7", 0, -7}, {"", -1, 0}, {" 1", -1, 0},
        {"12x", -1, 0}, {"99999999999999999999999", -1, 0}, {"banana", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long    v = 0;

        CHECK_INTEQ(cstr_parse_long(cases[i].in, &v), cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_INTEQ(v, cases[i].val);
    }
    bool    b;

    CHECK(cstr_parse_bool("YES", &b) && b);
    CHECK(cstr_parse_bool("no", &b) && !b);
    CHECK(!cstr_parse_bool("maybe", &b));
}

static stream_t *
pipe_stream(const char *data, size_t len, int *wfd_out)
{
    int     fds[2];

    if (pipe(fds) != 0)
        abort();
    if (len)
        CHECK((size_t) write(fds[1], data, len) == len);
    if (wfd_out)
        *wfd_out = fds[1];
    else
        close(fds[1]);
    return stream_open(fds[0]);
}

TEST(stream_lines)
{
    stream_t *st = pipe_stream("one\r\ntwo\nlonglongline\nlast", 27, NULL);
    str_t  *line = str_new(0);

    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "one\r\n");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "two\n");
    CHECK_INTEQ(stream_read_line(st, line, 4), STREAM_TOOLONG);
    CHECK_STREQ(str_cstr(line), "long");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "longline\n");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "last");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_EOF);
    str_free(line);
    stream_close(st);
}

TEST(stream_timeout)
{
    int     wfd;
    stream_t *st = pipe_stream("", 0, &wfd);
    str_t  *line = str_new(0);

    stream_set_timeout(st, 1);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_TIMEOUT);
    /* Errors are sticky. */
    CHECK_INTEQ(stream_getc(st), STREAM_TIMEOUT);
    close(wfd);
    str_free(line);
    stream_close(st);
}

static double
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/*
 * A stream on one end of a socket pair, with a timeout, that has read one
 * line already (so it knows it reads a socket); sv[1] is the peer.
 */
static stream_t *
socket_stream(int sv[2], int timeout, str_t *line)
{
    stream_t *st;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    st = stream_open(sv[0]);
    stream_set_timeout(st, timeout);
    CHECK(write(sv[1], "one\r\n", 5) == 5);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "one\r\n");
    return st;
}

/* A read that must time out after about one second. */
static void
check_one_second_timeout(stream_t *st, str_t *line, bool getc)
{
    double  t0 = mono_s(), took;

    CHECK_INTEQ(getc ? stream_getc(st) : stream_read_line(st, line, 100), STREAM_TIMEOUT);
    took = mono_s() - t0;
    CHECK(took > 0.8 && took < 1.8);
}

/* Blocking sockets wait in recv() under SO_RCVTIMEO; the deadline stays per call. */
TEST(stream_socket_reads_and_deadlines)
{
    int     sv[2];
    str_t  *line = str_new(0);
    stream_t *st = socket_stream(sv, 1, line);

    CHECK(write(sv[1], "two\n", 4) == 4);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);     /* waits in recv() */
    CHECK_STREQ(str_cstr(line), "two\n");
    /* Part of a line, then silence: the whole call times out after ~1 s, not 2. */
    CHECK(write(sv[1], "thr", 3) == 3);
    check_one_second_timeout(st, line, false);
    stream_close(st);
    close(sv[1]);

    /* Nothing at all: SO_RCVTIMEO ends the wait. */
    st = socket_stream(sv, 1, line);
    check_one_second_timeout(st, line, false);
    stream_close(st);
    close(sv[1]);

    /* A changed timeout is applied. */
    st = socket_stream(sv, 5, line);
    stream_set_timeout(st, 1);
    check_one_second_timeout(st, line, true);
    stream_close(st);
    close(sv[1]);

    /* The peer's close is an orderly end. */
    st = socket_stream(sv, 5, line);
    close(sv[1]);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_EOF);
    stream_close(st);
    str_free(line);
}

/* A kept connection's check: closed by the peer, or still alive, without waiting. */
TEST(stream_peer_gone_without_waiting)
{
    int     sv[2];
    str_t  *line = str_new(0);
    stream_t *st = socket_stream(sv, 5, line);

    CHECK(!stream_peer_gone(st));               /* open, nothing to read */
    CHECK(write(sv[1], "x\n", 2) == 2);
    CHECK(!stream_peer_gone(st));               /* unread data: not gone */
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    close(sv[1]);
    CHECK(stream_peer_gone(st));                /* closed, nothing left */
    stream_close(st);
    str_free(line);
}

TEST(stream_exact_and_write)
{
    int     fds[2];
    char    buf[8];

    CHECK(pipe(fds) == 0);
    stream_t *w = stream_open(fds[1]);
    stream_t *r = stream_open(fds[0]);

    CHECK_INTEQ(stream_printf(w, "%s=%d;", "abc", 12345), STREAM_OK);
    CHECK_INTEQ(stream_close(w), 0);
    CHECK_INTEQ(stream_read_exact(r, buf, 4), STREAM_OK);
    CHECK(memcmp(buf, "abc=", 4) == 0);
    CHECK_INTEQ(stream_getc(r), '1');
    CHECK_INTEQ(stream_pending(r), 5);
    CHECK_INTEQ(stream_read_exact(r, buf, 8), STREAM_EOF);
    stream_close(r);
}

/* Streams whose kind the caller knows: a blocking socket, and a file. */
TEST(stream_known_socket_and_file)
{
    int     sv[2];
    str_t  *line = str_new(0);
    char    path[] = "/tmp/test_str_file.XXXXXX";
    int     fd = mkstemp(path);

    /* A blocking socket told as such: reads wait in recv(), under the timeout. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    stream_t *st = stream_open_socket(sv[0], true);

    stream_set_timeout(st, 1);
    CHECK(write(sv[1], "hi\n", 3) == 3);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "hi\n");
    check_one_second_timeout(st, line, false);
    stream_close(st);
    close(sv[1]);

    /* A file: written and read back directly, end of file included. */
    CHECK(fd >= 0);
    st = stream_open_file(fd, 0);
    CHECK_INTEQ(stream_printf(st, "a line\nlast"), STREAM_OK);
    CHECK_INTEQ(stream_flush(st), STREAM_OK);
    stream_abandon(st);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    st = stream_open_file(fd, 0);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "a line\n");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "last");
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_EOF);
    /* Back into what was read (from the buffer), then past it (lseek). */
    CHECK_INTEQ(stream_seek(st, 2), STREAM_OK);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "line\n");
    CHECK_INTEQ(stream_seek(st, 20), STREAM_OK);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_EOF);
    stream_close(st);
    /* Opened at an offset: seeks count from the start of the file. */
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && lseek(fd, 7, SEEK_SET) == 7);
    st = stream_open_file(fd, 7);
    CHECK_INTEQ(stream_read_line(st, line, 100), STREAM_OK);
    CHECK_STREQ(str_cstr(line), "last");
    CHECK_INTEQ(stream_seek(st, 8), STREAM_OK);
    CHECK_INTEQ(stream_getc(st), 'a');
    CHECK_INTEQ(stream_seek(st, 0), STREAM_OK);         /* before the buffer: lseek */
    CHECK_INTEQ(stream_getc(st), 'a');
    CHECK_INTEQ(stream_getc(st), ' ');
    stream_close(st);
    /* Not a file stream: no seeking. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    st = stream_open_socket(sv[0], true);
    CHECK_INTEQ(stream_seek(st, 0), STREAM_ERR);
    stream_close(st);
    close(sv[1]);
    unlink(path);
    str_free(line);
}
