/*
 * error.c - the error and retry pseudo delivery agents.
 *
 * master.cf:  error unix - - n - - error
 *             retry unix - - n - - error
 *
 * Every recipient of a request fails without any delivery attempt. The
 * reason is the request's nexthop (transport_maps "error:text"), which may
 * start with an enhanced status code ("5.1.1 no such user here"):
 *   error  bounces with that code, default 5.0.0 (a 4.x.y code defers);
 *   retry  defers, always with a 4.x.y code, default 4.0.0.
 * Which of the two this process is comes from its master.cf service name
 * or, failing that, from the program name it was started under.
 *
 * SECURITY: runs as mail_owner; reads only the request (checked by
 * deliver_request_read) and writes nothing but the reply and log lines.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "queue.h"
#include "server.h"
#include "str.h"

static bool retry_mode;

/*
 * Split "X.Y.Z text" into a status code and a reason. code gets the code
 * (or def when text does not start with one); the reason is the rest, or
 * fallback when empty.
 */
static const char *
split_dsn(const char *text, const char *def, char *code, size_t code_size, const char *fallback)
{
    const char *p = text;
    size_t  n;

    snprintf(code, code_size, "%s", def);
    if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.') {
        const char *q = p + 2;
        int     d1 = 0, d2 = 0;

        while (isdigit((unsigned char) *q) && d1 < 3)
            q++, d1++;
        if (d1 > 0 && *q == '.') {
            q++;
            while (isdigit((unsigned char) *q) && d2 < 3)
                q++, d2++;
            if (d2 > 0 && (*q == 0 || *q == ' ' || *q == '\t')) {
                n = (size_t) (q - p);
                if (n < code_size) {
                    memcpy(code, p, n);
                    code[n] = 0;
                }
                p = q;
            }
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    return *p ? p : fallback;
}

static void
error_deliver(struct deliver_request *rq, void *ctx)
{
    char    code[16];
    const char *reason;

    if (retry_mode) {
        reason = split_dsn(rq->nexthop, "4.0.0", code, sizeof(code), "delivery temporarily suspended");
        code[0] = '4';
    } else {
        reason = split_dsn(rq->nexthop, "5.0.0", code, sizeof(code), "delivery refused");
        if (code[0] == '2')
            code[0] = '5';
    }
    for (size_t i = 0; i < rq->nrcpt; i++) {
        if (code[0] == '4')
            deliver_defer(rq, i, "none", code, "%s", reason);
        else
            deliver_bounce(rq, i, "none", code, "%s", reason);
    }
}

static void
error_service(stream_t *client, config_t *cfg)
{
    deliver_serve(client, error_deliver, NULL);
}

static void
error_post_init(config_t *cfg)
{
    queue_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "error",
        .post_init = error_post_init,
        .service = error_service,
        .finish_on_term = true,     /* end the request under way at a stop */
    };
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

    /* The service name ("-n retry") wins over the program name. */
    retry_mode = strcmp(prog, "retry") == 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-n") == 0) {
            retry_mode = strcmp(argv[i + 1], "retry") == 0;
            break;
        }
    }
    single_server_main(argc, argv, &ops);
}
