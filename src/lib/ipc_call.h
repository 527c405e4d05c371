/*
 * ipc_call.h - one request to another Postern service from an event loop,
 * without blocking it.
 *
 * ipc_call_start() connects to CLASS/SERVICE (relative to the working
 * directory, queue_directory for daemons), checks the {protocol = PROTO}
 * greeting, sends the request and reads one reply, all as the loop allows.
 * The callback runs exactly once, from the loop: with the reply, or with
 * NULL and the reason (connection refused or dropped, wrong protocol,
 * malformed reply, timeout_s passed). The call is gone when the callback
 * runs; the callback may start new calls.
 *
 * Trust: the reply is peer data; it is decoded with attr_decode's limits and
 * the callback checks what it uses.
 */
#ifndef POSTERN_IPC_CALL_H
#define POSTERN_IPC_CALL_H

#include "attr.h"
#include "events.h"

typedef void (*ipc_call_fn)(void *ctx, attr_list_t *reply, const char *why);

struct ipc_call;

/*
 * Start a call. NULL when it cannot even start (the socket cannot be
 * connected to at once: no such service, refused, its backlog full); then
 * the callback is not called and why says what happened.
 */
struct ipc_call *ipc_call_start(event_loop_t *loop, const char *class, const char *service,
                                const char *proto, const attr_list_t *request, int timeout_s,
                                ipc_call_fn fn, void *ctx, str_t *why);

/* Give up a call; its callback is not called. */
void    ipc_call_cancel(struct ipc_call *call);

#endif
