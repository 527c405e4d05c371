/*
 * showq_proto.h - the queue listing service (public/showq).
 *
 * Ordinary users cannot read the queue directories; they reach the
 * listing through the showq daemon (running as mail_owner) over
 * public/showq. The client sends nothing. After {protocol = "showq"} the
 * server sends, for every message in qlist.h order, one attribute list:
 *   queue_name         incoming | active | deferred | hold | maildrop
 *   queue_id           the message's queue ID
 *   arrival_time       seconds since the epoch
 *   message_size       content bytes
 *   sender             envelope sender ("" for <>)
 *   rcpt_count         N, the recipients in this list (0..SHOWQ_RCPT_CHUNK)
 *   rcpt_I_address     recipient I (0 <= I < N), not yet delivered
 *   rcpt_I_reason      its last delay reason, when one is known
 *   more               (optional) "1": the message has more recipients;
 *                      the next list continues it (same queue_name and
 *                      queue_id and header values, further recipients)
 * and then an end marker, a list holding only
 *   done               the number of messages sent
 * A listing without the end marker, or whose count differs, is incomplete
 * and the client says so. Lists stay far below the codec's default limits
 * because a message's recipients are split into chunks.
 */
#ifndef POSTERN_SHOWQ_PROTO_H
#define POSTERN_SHOWQ_PROTO_H

#define SHOWQ_PROTOCOL      "showq"
#define SHOWQ_SERVICE       "showq"
#define SHOWQ_CLASS         "public"
#define SHOWQ_RCPT_CHUNK    200     /* recipients per attribute list */

#endif
