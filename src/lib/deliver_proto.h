/*
 * deliver_proto.h - how qmgr hands recipients to a delivery agent (local,
 * virtual, pipe, error, discard, retry, and later smtp/lmtp).
 *
 * qmgr connects to private/TRANSPORT (the master.cf service named like the
 * transport of the recipients):
 *   agent -> qmgr   {protocol = "delivery"}
 *   qmgr  -> agent  a request (attribute names below)
 *   agent -> qmgr   its reply
 * and then either closes the connection or, after a reply, sends the next
 * request on it; the recipients and nexthop may differ from one request to
 * the next. qmgr keeps a connection it is not using for at most
 * DELIVER_POOL_IDLE_MS, and the agent waits DELIVER_IDLE_S for a next
 * request, and stops taking them at max_use or when master stops or
 * reloads it; either side may close an idle connection at any time. A kept connection saves the connect, the
 * greeting and the agent's two status reports to master per delivery.
 * qmgr watches a kept connection while it is idle (one the agent closes is
 * closed at once), and sends a request again over a new connection when a
 * kept one ends before any byte of its reply (the agent closed it while
 * idle, as the request went out).
 *
 * The agent reads the message itself from the queue file (queue_name/
 * queue_id, relative to queue_directory), starting at content_offset (the
 * first record after M), and must not write to the queue file: qmgr marks
 * recipients done and writes the logs.
 *
 * Request:
 *   queue_name, queue_id     where the file is (e.g. "active", ID)
 *   content_offset           byte offset of the first content record
 *   message_size             content size (as in the C record)
 *   arrival_time             seconds since the epoch (T record)
 *   active_time              when qmgr moved it to active/ (for delays=)
 *   sender                   envelope sender, internal form ("" for <>)
 *   transport, nexthop       from trivial-rewrite (nexthop may be "")
 *   encoding, smtputf8, dsn_envid, dsn_ret, client_name, client_address,
 *   helo_name, protocol      copied from the A records when present
 *   flags                    DELIVER_FLAG_* mask
 *   rcpt_count               N, 1 .. DELIVER_MAX_RCPT
 *   rcpt_I_address           recipient I (0 <= I < N), internal form
 *   rcpt_I_orig              the address as received, before rewriting
 *   rcpt_I_offset            offset of its R record (an opaque handle for
 *                            the agent: it only echoes it back)
 *   rcpt_I_orcpt             DSN ORCPT ("" if none)
 *   rcpt_I_notify            DSN NOTIFY mask (0 if none)
 *
 * Reply:
 *   status                   0: every recipient has a result below;
 *                            otherwise the request failed as a whole and
 *                            qmgr defers all its recipients with "reason"
 *   reason                   text when status != 0
 *   rcpt_I_result            "sent", "deferred" or "bounced"
 *   rcpt_I_dsn               enhanced status code, e.g. "2.0.0", "4.2.2", "5.1.1"
 *   rcpt_I_reason            human text, e.g. "delivered to maildir"
 *   rcpt_I_relay             what the log's relay= field says (e.g. "local",
 *                            "virtual", "none")
 *
 * The agent logs one line per recipient, as Postfix does:
 *   ID: to=<rcpt>, [orig_to=<orig>, ]relay=RELAY, delay=D, delays=a/b/c/d,
 *       dsn=X.Y.Z, status=sent|deferred|bounced (reason)
 * with delay = now - arrival_time and delays = arrival->active /
 * active->request / request->connected / delivery (seconds, one decimal).
 */
#ifndef POSTERN_DELIVER_PROTO_H
#define POSTERN_DELIVER_PROTO_H

#define DELIVER_PROTOCOL        "delivery"
#define DELIVER_MAX_RCPT        200     /* recipients per request (attribute limit) */
#define DELIVER_IDLE_S          10      /* agent: wait this long for a next request */
#define DELIVER_POOL_IDLE_MS    2000    /* qmgr: close a connection idle this long */

#define DELIVER_FLAG_NONE       0
#define DELIVER_FLAG_BOUNCE     (1 << 0)    /* the message is a bounce (sender <>) */
#define DELIVER_FLAG_VERIFY     (1 << 1)    /* address probe: do not really deliver */

#define DELIVER_RESULT_SENT     "sent"
#define DELIVER_RESULT_DEFER    "deferred"
#define DELIVER_RESULT_BOUNCE   "bounced"

#endif
