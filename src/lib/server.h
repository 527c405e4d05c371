/*
 * server.h - the skeletons every daemon's main() stands on.
 *
 * A daemon fills a struct server_ops and calls one skeleton; the skeleton does
 * everything that is the same for all daemons, in this order:
 *   1. parse master's arguments (see master_proto.h) and refuse to run
 *      without master;
 *   2. read main.cf from the config directory, apply "-o" overrides,
 *      validate (a bad configuration is fatal), set up logging;
 *   3. ops->pre_init (still privileged: open what needs root);
 *   4. drop privileges to mail_owner when started as root (unless master.cf
 *      says unpriv = n), after an optional chroot to queue_directory; a
 *      mail_owner that is root or missing is fatal;
 *   5. ops->post_init;
 *   6. serve clients until max_use clients were served, max_idle seconds
 *      passed without a client, or master went away / reloaded.
 * No client byte is read before step 4.
 *
 * single_server_main: one client at a time, plain blocking I/O with
 *   ops->service(stream) per connection; master is told "taken"/"available"
 *   around each run of clients (a client already waiting when one is done
 *   is served at once, without the two reports), so it can start more
 *   processes under load.
 * event_server_main: many clients in one process on an event loop; the
 *   daemon gets each new connection through ops->accept and calls
 *   server_client_done() when it closes one. A fifo service (and a unix
 *   service whose daemon has no accept callback) is a wake-up channel
 *   instead: its bytes go to ops->trigger (a fifo is read without
 *   blocking the loop, a unix client within one second), e.g. qmgr. With
 *   ops->persistent the process ignores max_idle and max_use: it runs
 *   until master goes away, reloads or stops it.
 * trigger_server_main: for fifo and unix services that only need to be
 *   woken up (pickup, qmgr-style wake-ups). Bytes written to the fifo, or
 *   sent by a client of the unix socket, are read (at most
 *   SERVER_TRIGGER_MAX per wake-up) and handed to ops->trigger; the sender
 *   gets no reply. One trigger counts as one use for max_use; max_idle
 *   counts from the last trigger. master's wakeup timer writes "W".
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "events.h"
#include "str.h"
#include "stream.h"

struct server_ops {
    const char *name;           /* program name for logging, e.g. "smtpd" */
    void    (*pre_init)(config_t *cfg, int argc, char **argv);  /* optional */
    void    (*post_init)(config_t *cfg);                        /* optional */
    /* single server: serve one client; the skeleton closes the stream. */
    void    (*service)(stream_t *client, config_t *cfg);
    /* event server: a new non-blocking client connection. */
    void    (*accept)(int fd, config_t *cfg);
    void    (*pre_exit)(void);                                   /* optional */
    /* trigger server: the wake-up bytes received (len >= 1). */
    void    (*trigger)(const char *buf, size_t len, config_t *cfg);
    /* event server: no exit for max_idle / max_use (qmgr) */
    bool    persistent;
    /*
     * single server, optional: no client came for SERVER_IDLE_MS since the
     * last one; called once per idle period, e.g. to give back connections
     * kept to other services (smtpd's cleanup connection).
     */
    void    (*idle)(void);
    /*
     * single server, optional: SIGTERM lets the client under way finish
     * (a delivery agent ends its request and replies) instead of ending
     * the process at once; the process then exits when ops->service
     * returns or asks server_take_another() for more. master's stop
     * grace period bounds the wait.
     */
    bool    finish_on_term;
    /*
     * event server, optional: SIGTERM calls this instead of ending the
     * process at once; the daemon starts no new work and calls
     * server_request_exit() when the work under way is done (qmgr waits
     * for the replies to the requests it sent).
     */
    void    (*on_term)(void);
};

#define SERVER_IDLE_MS  1000        /* quiet time before ops->idle runs */

#define SERVER_TRIGGER_MAX 1024     /* most wake-up bytes read per trigger */

/* The service name (master.cf first field) and type of this process. */
const char *server_service_name(void);
const char *server_service_type(void);
/* The event loop of an event server (NULL in a single server); exists from post_init on. */
event_loop_t *server_loop(void);
/* Event servers: a client connection was closed. */
void    server_client_done(void);

/*
 * For an event server's clients: send what is pending in out (without
 * waiting), drop what went, and watch fd for reading, and for writing too
 * while something is left, with fn(ctx). false when the client is gone
 * (the caller closes it).
 */
bool    server_client_flush(int fd, str_t *out, event_fd_fn fn, void *ctx);
/*
 * Single server: restart the daemon_timeout watchdog, which the skeleton
 * arms for each client; a service that carries many units of work over
 * one connection (cleanup: messages) restarts it for each unit.
 */
void    server_watchdog_restart(void);
/*
 * Single server, for a service that takes several requests over one
 * connection (a delivery agent): call before each one after the first.
 * Waits up to timeout_ms for the client to send (or close); then counts
 * the request towards max_use and restarts the watchdog. false when the
 * time passed, or the process should take no more (max_use reached,
 * master stopping it, which is noticed during the wait too).
 */
bool    server_take_another(stream_t *client, int timeout_ms);
/*
 * Single server: the address of the client being served, as accept()
 * returned it (len set), or NULL when unknown; valid during the service
 * call.
 */
const struct sockaddr *server_client_address(socklen_t *len);
/* Ask the skeleton to exit once the current client(s) are done. */
void    server_request_exit(void);

_Noreturn void single_server_main(int argc, char **argv, const struct server_ops *ops);
_Noreturn void event_server_main(int argc, char **argv, const struct server_ops *ops);
_Noreturn void trigger_server_main(int argc, char **argv, const struct server_ops *ops);

/*
 * Privilege drop shared with other programs: chroot to "root" when not
 * NULL, then setgid/setgroups/setuid to the named user. Fatal on failure;
 * verifies afterwards that root cannot be regained.
 */
void    server_drop_privileges(const char *user, const char *chroot_dir);

#endif
