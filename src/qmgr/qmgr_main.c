/*
 * qmgr_main.c - the queue manager: moves mail from incoming/ and deferred/
 * into active/, and hands it to the delivery agents.
 *
 * master.cf:  qmgr  fifo  n  -  n  300  1  qmgr
 * An event server on the fifo public/qmgr (persistent: it does not exit
 * when idle). Wake-ups:
 *   'W'  new mail in incoming/ (cleanup, master's wakeup timer)
 *   'A'  scan deferred/ now (respecting each message's next attempt time)
 *   'F'  flush: every deferred message now, dead transports revived
 * Besides, incoming/ is scanned every QMGR_INCOMING_SCAN_S seconds and
 * deferred/ every queue_run_delay. At start, active/ is read again: a crash
 * or a stop left it there.
 *
 * SECURITY: runs as mail_owner (never root), in queue_directory. It reads
 * queue files (checked by the strict reader), talks to trivial-rewrite,
 * the delivery agents and the bounce service over private/ sockets, and
 * writes only queue-file done marks, modes and times, the per-message logs,
 * and renames between queues. Wake-up bytes from the public fifo are only
 * compared with the letters above.
 */
#include <string.h>

#include "clock.h"
#include "ipc.h"
#include "log.h"
#include "qmgr.h"
#include "queue.h"
#include "rewrite_clnt.h"
#include "server.h"

#define QMGR_TICK_MS            1000    /* housekeeping period */
#define QMGR_INCOMING_SCAN_S    5       /* incoming/ even without a wake-up */
#define QMGR_STOP_WAIT_MS       5000    /* for replies at a stop; master waits 10 s */

struct qmgr_state qmgr;

static int64_t next_incoming_scan_ms;

/* Periodic work: timeouts, revived transports, scans that are due. */
static void
tick(void *ctx)
{
    int64_t now = clock_mono_ms();

    if (qmgr.stopping) {
        if (now >= qmgr.stop_deadline_ms) {
            log_info("stop: %zu request(s) without a reply; their mail stays in active/",
                     qmgr_deliver_count() + qmgr.bounce_calls);
            server_request_exit();
        }
        event_timer_add(server_loop(), QMGR_TICK_MS, tick, NULL);
        return;
    }
    qmgr_deliver_tick();
    qmgr_sched_revive(false);
    if (now >= next_incoming_scan_ms || qmgr.scan_incoming) {
        next_incoming_scan_ms = now + QMGR_INCOMING_SCAN_S * 1000;
        if (!qmgr_active_full())
            qmgr_active_scan(QUEUE_INCOMING, false);
    }
    if (now >= qmgr.next_deferred_scan_ms || qmgr.scan_deferred) {
        qmgr.next_deferred_scan_ms = now + (int64_t) qmgr.queue_run_delay * 1000;
        if (!qmgr_active_full())
            qmgr_active_scan(QUEUE_DEFERRED, qmgr.flush_deferred);
    }
    qmgr_sched_run();
    event_timer_add(server_loop(), QMGR_TICK_MS, tick, NULL);
}

/* Wake-up bytes from the fifo. */
static void
qmgr_trigger(const char *buf, size_t len, config_t *cfg)
{
    bool    incoming = false, deferred = false, flush = false;

    if (qmgr.stopping)
        return;
    for (size_t i = 0; i < len; i++) {
        switch (buf[i]) {
        case IPC_TRIGGER_WAKEUP:
            incoming = true;
            break;
        case IPC_TRIGGER_SCAN:
            deferred = true;
            break;
        case IPC_TRIGGER_FLUSH:
            deferred = flush = true;
            break;
        default:
            break;                  /* unknown wake-ups are ignored */
        }
    }
    if (flush)
        qmgr_sched_revive(true);
    if (incoming)
        qmgr_active_scan(QUEUE_INCOMING, false);
    if (deferred) {
        qmgr.next_deferred_scan_ms = clock_mono_ms() + (int64_t) qmgr.queue_run_delay * 1000;
        qmgr_active_scan(QUEUE_DEFERRED, flush);
    }
    qmgr_sched_run();
}

void
qmgr_stop_if_idle(void)
{
    if (qmgr.stopping && qmgr_deliver_count() == 0 && qmgr.bounce_calls == 0)
        server_request_exit();
}

/*
 * SIGTERM: start nothing new and wait (QMGR_STOP_WAIT_MS at most) for the
 * replies to the requests already sent (to the agents and to the bounce
 * service): the agents finish those before they
 * exit, so what was delivered is marked done and is not delivered again
 * after the restart, and nothing is deferred only because of the stop.
 */
static void
qmgr_on_term(void)
{
    if (qmgr.stopping)
        return;
    qmgr.stopping = true;
    qmgr.stop_deadline_ms = clock_mono_ms() + QMGR_STOP_WAIT_MS;
    qmgr_deliver_stop();
}

static void
qmgr_post_init(config_t *cfg)
{
    qmgr.cfg = cfg;
    qmgr.active_limit = config_int(cfg, "qmgr_message_active_limit");
    qmgr.rcpt_limit = config_int(cfg, "qmgr_message_recipient_limit");
    qmgr.min_backoff = config_time(cfg, "minimal_backoff_time");
    qmgr.max_backoff = config_time(cfg, "maximal_backoff_time");
    if (qmgr.max_backoff < qmgr.min_backoff)
        qmgr.max_backoff = qmgr.min_backoff;
    qmgr.max_lifetime = config_time(cfg, "maximal_queue_lifetime");
    qmgr.bounce_lifetime = config_time(cfg, "bounce_queue_lifetime");
    if (qmgr.bounce_lifetime > qmgr.max_lifetime)
        qmgr.bounce_lifetime = qmgr.max_lifetime;
    qmgr.warn_time = config_time(cfg, "delay_warning_time");
    qmgr.queue_run_delay = config_time(cfg, "queue_run_delay");
    qmgr.transport_retry = config_time(cfg, "transport_retry_time");
    qmgr.daemon_timeout = config_time(cfg, "daemon_timeout");
    queue_init(cfg);
    rewrite_clnt_set_service(config_str(cfg, "rewrite_service_name"));
    qmgr_sched_init(cfg);

    /* Whatever a crash left in active/ first, then the queues. */
    qmgr_active_recover();
    qmgr.scan_incoming = true;
    qmgr.next_deferred_scan_ms = clock_mono_ms();
    event_timer_add(server_loop(), 0, tick, NULL);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "qmgr",
        .post_init = qmgr_post_init,
        .trigger = qmgr_trigger,
        .persistent = true,
        .on_term = qmgr_on_term,
    };

    event_server_main(argc, argv, &ops);
}
