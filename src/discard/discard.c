/*
 * discard.c - the discard pseudo delivery agent.
 *
 * master.cf:  discard unix - - n - - discard
 *
 * Every recipient of a request is reported delivered (dsn 2.0.0, relay
 * none) without being delivered anywhere. The reason logged is the
 * request's nexthop (transport_maps "discard:text"), or "discarded".
 *
 * SECURITY: runs as mail_owner; reads only the request (checked by
 * deliver_request_read) and writes nothing but the reply and log lines.
 */
#include "deliver.h"
#include "log.h"
#include "queue.h"
#include "server.h"
#include "str.h"

static void
discard_deliver(struct deliver_request *rq, void *ctx)
{
    for (size_t i = 0; i < rq->nrcpt; i++)
        deliver_sent(rq, i, "none", "2.0.0", "%s", *rq->nexthop ? rq->nexthop : "discarded");
}

static void
discard_service(stream_t *client, config_t *cfg)
{
    deliver_serve(client, discard_deliver, NULL);
}

static void
discard_post_init(config_t *cfg)
{
    queue_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "discard",
        .post_init = discard_post_init,
        .service = discard_service,
        .finish_on_term = true,     /* end the request under way at a stop */
    };

    single_server_main(argc, argv, &ops);
}
