/*
 * cleanup_proto.h - how smtpd, pickup (and later qmqpd, bounce) hand a
 * message to the cleanup service, private/cleanup.
 *
 * A connection carries one message or more, one after another:
 *   1. cleanup -> client  attr {protocol = "cleanup"}
 * then for each message steps 2 to 5:
 *   2. client  -> cleanup attr {flags = CLEANUP_FLAG_* mask}
 *   3. cleanup -> client  attr {queue_id = ID}  (the file exists from now on,
 *                         in incoming/ under a name nobody else reads)
 *   4. client  -> cleanup records (rec.h), in this order:
 *        T (arrival time), F (optional), S, A*, then per recipient
 *        O? N? R, then M, the content as N/L records (smtpd's Received:
 *        header first; lines without their CRLF, dot-unstuffed), X, E.
 *      The client may stop sending at any point by closing the connection;
 *      cleanup then removes the file and nothing reaches the queue.
 *   5. cleanup -> client  attr {status = CLEANUP_STAT_* mask, reason = text}
 *      status 0 means: the file is complete, fsync'ed and renamed into
 *      incoming/, and qmgr was woken. Anything else means nothing was queued;
 *      reason then starts with an enhanced status code ("4.3.0 ...",
 *      "5.3.4 message file too big") that smtpd may show the client.
 *      After this reply the client may start the next message (step 2)
 *      on the same connection, or close it. A message that was not read
 *      to its E (client gone, protocol error) ends the connection.
 *   With CLEANUP_FLAG_MORE in a message's flags, steps 2 and 3 of the next
 *   message swap: right after the reply (5), cleanup creates the next file
 *   and sends its {queue_id} unasked; the client reads it when it starts
 *   that message and then sends {flags} and the records without waiting.
 *   That saves a round trip per message. A client that closes instead
 *   makes cleanup remove the file it made in advance.
 * A client that keeps a connection between messages must expect cleanup
 * to have closed it meanwhile (ipc_timeout, a restart): it may connect
 * again and repeat step 2, since nothing was queued for the new message.
 * Limits cleanup enforces: record length (line_length_limit for content,
 * a small fixed limit for envelope records), message_size_limit on the
 * content, header_size_limit, hopcount_limit, and the record order.
 */
#ifndef POSTERN_CLEANUP_PROTO_H
#define POSTERN_CLEANUP_PROTO_H

#define CLEANUP_PROTOCOL        "cleanup"
#define CLEANUP_SERVICE         "cleanup"

/* Request flags (attribute "flags"). */
#define CLEANUP_FLAG_NONE       0
#define CLEANUP_FLAG_LOCAL      (1 << 0)    /* local submission: add From:, Date:, ... as for sendmail */
#define CLEANUP_FLAG_EXTRACT    (1 << 1)    /* sendmail -t: take recipients from To/Cc/Bcc */
#define CLEANUP_FLAG_HOLD       (1 << 2)    /* put the message into hold/ instead of incoming/ */
#define CLEANUP_FLAG_DISCARD    (1 << 3)    /* read everything, queue nothing, reply OK */
#define CLEANUP_FLAG_MORE       (1 << 4)    /* another message follows on this connection */
#define CLEANUP_FLAG_MASK       0x1f

/* Reply status bits (attribute "status"); 0 is success. */
#define CLEANUP_STAT_OK         0
#define CLEANUP_STAT_BAD        (1 << 0)    /* internal protocol error */
#define CLEANUP_STAT_WRITE      (1 << 1)    /* error writing the queue file */
#define CLEANUP_STAT_SIZE       (1 << 2)    /* message too large */
#define CLEANUP_STAT_CONT       (1 << 3)    /* content rejected */
#define CLEANUP_STAT_HOPS       (1 << 4)    /* too many Received: headers */
#define CLEANUP_STAT_RCPT       (1 << 5)    /* no recipients */
#define CLEANUP_STAT_DEFER      (1 << 6)    /* temporary failure of another kind */

/* True when the status should be reported to an SMTP client as permanent (5xx). */
#define CLEANUP_STAT_PERMANENT(s) \
    (((s) & (CLEANUP_STAT_SIZE | CLEANUP_STAT_CONT | CLEANUP_STAT_HOPS | CLEANUP_STAT_RCPT)) != 0 \
     && ((s) & (CLEANUP_STAT_WRITE | CLEANUP_STAT_BAD | CLEANUP_STAT_DEFER)) == 0)

#endif
