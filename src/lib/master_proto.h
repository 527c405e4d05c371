/*
 * master_proto.h - what master hands to every child it starts.
 *
 * Descriptors (fixed numbers, set up by master before exec):
 *   MASTER_STATUS_FD   write end of the service's status pipe: the child
 *                      reports "available" / "taken" with a struct
 *                      master_status (smaller than PIPE_BUF, so atomic).
 *   MASTER_WATCH_FD    read end of a pipe whose write end only master holds,
 *                      one per service generation. EOF on it means master
 *                      died or reloaded: the child finishes its current client
 *                      and exits.
 *   MASTER_LISTEN_FD.. the service's listening sockets (count given by -s),
 *                      non-blocking, so that children can share them.
 *
 * Arguments: command -c CONFIG_DIR -n SERVICE -t TYPE -s NSOCKETS [-P] [-R]
 *            [-w WAKEUP] [-o name=value ...] [master.cf arguments ...]
 *   -P  privileged: do not drop to mail_owner (master.cf unpriv = n)
 *   -R  chroot to queue_directory (master.cf chroot = y)
 */
#ifndef POSTERN_MASTER_PROTO_H
#define POSTERN_MASTER_PROTO_H

#include <stdint.h>

#define MASTER_STATUS_FD  3
#define MASTER_WATCH_FD   4
#define MASTER_LISTEN_FD  5
#define MASTER_MAX_LISTEN 64

enum master_avail {
    MASTER_STAT_TAKEN = 0,      /* serving a client */
    MASTER_STAT_AVAIL = 1,      /* waiting for a client */
};

struct master_status {
    int32_t pid;
    int32_t avail;              /* enum master_avail */
};

#endif
