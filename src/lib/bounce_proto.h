/*
 * bounce_proto.h - per-message delivery logs and the bounce service.
 *
 * Logs. qmgr appends one block per recipient result to a log file named
 * like the message, in queue_directory/bounce/ (permanent failures),
 * defer/ (temporary ones, newest reason per recipient wins when read) or
 * trace/ (successes that the sender asked to hear about: NOTIFY=SUCCESS).
 * The files live in hashed subdirectories like the queues (queue_path()).
 * A block is "name=value" lines, ended by an empty line:
 *     recipient=ADDR          (required) internal form
 *     orig_rcpt=ADDR          as received, when it differs
 *     dsn_orcpt=TYPE;ADDR     DSN ORCPT
 *     dsn_notify=N            DSN_NOTIFY_* mask
 *     offset=N                the R record's offset in the queue file
 *     status=X.Y.Z            enhanced status code
 *     action=failed|delayed|delivered|relayed|expanded   (RFC 3464)
 *     reason=TEXT             diagnostic, one line
 *     relay=NAME              who said so (e.g. "local", "none")
 *     time=SECONDS            when
 * Values hold no newline or NUL (writers replace them by spaces). Readers
 * ignore names they do not know and skip a malformed block with a warning.
 * bounce_log.h has the writer and the reader.
 *
 * The bounce service (private/bounce, a single-client daemon): after
 * {protocol = "bounce"} from the server, the client sends one request:
 *   request    = "flush"   (failures: a non-delivery notice, then the log is
 *                           removed) | "warn" (a delay notice from defer/) |
 *                "trace"   (a success notice from trace/, then removed)
 *   queue_name, queue_id   the original message
 *   sender                 its envelope sender ("" = <>: no notice, except a
 *                          failure, which goes to 2bounce_notice_recipient
 *                          when notify_classes has "2bounce")
 *   dsn_envid, dsn_ret     from the original's A records
 * and gets {status = 0, queue_id = ID of the notice or ""} when the notice
 * was queued (or none was due), non-zero with {reason} otherwise (qmgr
 * then keeps the log and tries again later). Notices are RFC 3464
 * multipart/report; report-type=delivery-status messages from
 * MAILER-DAEMON, submitted through cleanup with sender <>.
 */
#ifndef POSTERN_BOUNCE_PROTO_H
#define POSTERN_BOUNCE_PROTO_H

#define BOUNCE_PROTOCOL     "bounce"
#define BOUNCE_SERVICE      "bounce"

#define BOUNCE_LOG_BOUNCE   "bounce"    /* queue_directory subdirectory names */
#define BOUNCE_LOG_DEFER    "defer"
#define BOUNCE_LOG_TRACE    "trace"

#define BOUNCE_REQ_FLUSH    "flush"
#define BOUNCE_REQ_WARN     "warn"
#define BOUNCE_REQ_TRACE    "trace"

#endif
