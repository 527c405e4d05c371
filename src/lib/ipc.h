/*
 * ipc.h - connecting to another Postern service and waking one up.
 *
 * Services live under queue_directory in "private/" (mail_owner only) or
 * "public/" (everyone, e.g. pickup, qmgr, showq). Paths here are relative to
 * the working directory, which for daemons is queue_directory; commands pass
 * the absolute queue_directory as "qdir" (or NULL when already there).
 */
#ifndef POSTERN_IPC_H
#define POSTERN_IPC_H

#include "str.h"
#include "stream.h"

/* The path of qdir/class/service (class/service when qdir is NULL). */
void    ipc_path(str_t *out, const char *qdir, const char *class, const char *service);

/*
 * Connect to the UNIX-domain stream socket qdir/class/service, give the
 * stream a timeout of timeout_s seconds per operation, and check the
 * server's {protocol = proto} greeting (proto NULL: no greeting expected).
 * Returns the stream, or NULL with err saying why (the service's name and
 * the reason, ready to log).
 */
stream_t *ipc_connect(const char *qdir, const char *class, const char *service,
                      const char *proto, int timeout_s, str_t *err);

/*
 * Send a one-byte wake-up to the fifo or unix socket qdir/class/service,
 * without blocking. Returns 0, or -1 when nobody listens (not an error for
 * callers that only want to hurry things up). A FIFO stays open for a
 * second, for the next wake-up of the same one.
 */
int     ipc_trigger(const char *qdir, const char *class, const char *service, char what);

/* Wake-up codes understood by trigger services. */
#define IPC_TRIGGER_WAKEUP  'W'     /* look for new work */
#define IPC_TRIGGER_SCAN    'A'     /* qmgr: scan the deferred queue now */
#define IPC_TRIGGER_FLUSH   'F'     /* qmgr: ignore back-off, try deferred mail now */

#endif
