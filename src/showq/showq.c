/*
 * showq.c - the queue listing service for users who cannot read the queue.
 *
 * master.cf:  showq unix n - n - - showq
 *
 * Each client gets the whole listing in the showq protocol
 * (showq_proto.h): one attribute list per message (in chunks of
 * SHOWQ_RCPT_CHUNK recipients), then {done = count}. The client sends
 * nothing; anything it sends is ignored.
 *
 * SECURITY: runs as mail_owner on the single-server skeleton, in
 * queue_directory (chroot allowed). It only reads: queue files through the
 * strict reader and defer logs (qlist.c). It trusts nothing from the
 * client, and reads nothing from it. What it reveals is what "mailq" shows
 * (senders, recipients, sizes, delay reasons); public/showq is reachable
 * by the setgid_group, as with Postfix's postqueue.
 */
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "config.h"
#include "log.h"
#include "qlist.h"
#include "queue.h"
#include "server.h"
#include "showq_proto.h"
#include "str.h"

struct showq_state {
    stream_t *client;
    attr_list_t *al;
    str_t  *name;
    long long sent;
    bool    failed;
};

static int showq_timeout;

/* Fill al with the header of msg and recipients [from, to). */
static void
put_chunk(struct showq_state *st, const struct qlist_msg *msg, size_t from, size_t to)
{
    attr_list_reset(st->al);
    attr_put_str(st->al, "queue_name", msg->queue_name);
    attr_put_str(st->al, "queue_id", msg->queue_id);
    attr_put_int(st->al, "arrival_time", msg->arrival_time);
    attr_put_int(st->al, "message_size", msg->message_size);
    attr_put_str(st->al, "sender", msg->sender);
    attr_put_int(st->al, "rcpt_count", (long long) (to - from));
    for (size_t i = from; i < to; i++) {
        str_printf(st->name, "rcpt_%zu_address", i - from);
        attr_put_str(st->al, str_cstr(st->name), msg->rcpts[i].address);
        if (msg->rcpts[i].reason) {
            str_printf(st->name, "rcpt_%zu_reason", i - from);
            attr_put_str(st->al, str_cstr(st->name), msg->rcpts[i].reason);
        }
    }
    if (to < msg->rcpt_count)
        attr_put_str(st->al, "more", "1");
}

/* qlist callback: send one message; stop the walk when the client is gone. */
static int
send_message(const struct qlist_msg *msg, void *ctx)
{
    struct showq_state *st = ctx;
    size_t  from = 0;

    do {
        size_t  to = msg->rcpt_count - from > SHOWQ_RCPT_CHUNK
            ? from + SHOWQ_RCPT_CHUNK : msg->rcpt_count;

        put_chunk(st, msg, from, to);
        if (attr_write(st->client, st->al) != ATTR_OK) {
            st->failed = true;
            return -1;
        }
        from = to;
    } while (from < msg->rcpt_count);
    st->sent++;
    return 0;
}

static void
showq_service(stream_t *client, config_t *cfg)
{
    struct showq_state st = {.client = client};

    (void) cfg;
    stream_set_timeout(client, showq_timeout);
    if (attr_send_protocol(client, SHOWQ_PROTOCOL) != ATTR_OK) {
        log_warn("showq: cannot send greeting: %s", stream_strstatus(stream_status(client)));
        return;
    }
    st.al = attr_list_new();
    st.name = str_new(32);
    (void) qlist_walk(send_message, &st);
    if (!st.failed) {
        attr_list_reset(st.al);
        attr_put_int(st.al, "done", st.sent);
        st.failed = attr_write(client, st.al) != ATTR_OK;
    }
    if (st.failed)
        log_warn("showq: client went away after %lld messages: %s", st.sent,
                 stream_strstatus(stream_status(client)));
    attr_list_free(st.al);
    str_free(st.name);
}

static void
showq_post_init(config_t *cfg)
{
    showq_timeout = (int) config_time(cfg, "ipc_timeout");
    queue_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "showq",
        .post_init = showq_post_init,
        .service = showq_service,
    };

    single_server_main(argc, argv, &ops);
}
