/*
 * queue.h - queue names, queue IDs and queue file paths.
 *
 * Every path here is relative to queue_directory: daemons run with it as
 * their working directory (server.c chdirs there, or chroots to it), and
 * commands chdir there before they touch the queue.
 *
 * Queue IDs are unique over time: the arrival time in microseconds and the
 * inode number of the file, in a base-51 alphabet of digits and consonants,
 * with 'z' between the two parts (e.g. "4bKj7Pq2RtzM3x"). A queue ID is a
 * file name, so every program that takes one from outside checks it with
 * queue_id_ok() before it builds a path.
 *
 * Queues named in hash_queue_names are spread over hash_queue_depth levels
 * of one-character subdirectories taken from the time part of the ID, so no
 * directory grows hot.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include "config.h"
#include "str.h"

#define QUEUE_MAILDROP  "maildrop"
#define QUEUE_INCOMING  "incoming"
#define QUEUE_ACTIVE    "active"
#define QUEUE_DEFERRED  "deferred"
#define QUEUE_HOLD      "hold"
#define QUEUE_CORRUPT   "corrupt"
#define QUEUE_BOUNCE    "bounce"    /* per-message logs, not messages */
#define QUEUE_DEFER     "defer"
#define QUEUE_TRACE     "trace"
#define QUEUE_SAVED     "saved"
#define QUEUE_SPARE     "spare"     /* finished queue files kept for reuse, not messages */
#define QUEUE_SPARE_SLOTS 256       /* at most this many spare files */

#define QUEUE_ID_MAX    32          /* longest valid queue ID */

/* Reads hash_queue_names and hash_queue_depth; call once before queue_path(). */
void    queue_init(config_t *cfg);

/* True when name is one of the queue directories above. */
bool    queue_name_ok(const char *name);

/* True when id has the form of a queue ID (so it is safe in a path). */
bool    queue_id_ok(const char *id);

/* Make the ID for a file with inode "ino" that arrived at "tv". */
void    queue_id_make(str_t *out, const struct timeval *tv, ino_t ino);

/* "queue/[h/[h/]]id" for that queue, creating no directories. */
void    queue_path(str_t *out, const char *queue_name, const char *id);

/* Like queue_path() but for the directory that holds it. */
void    queue_dir_path(str_t *out, const char *queue_name, const char *id);

/*
 * Move a queue file by rename(2) from one queue to another, creating the
 * hashed subdirectory on demand. Returns 0, or -1 with errno set.
 */
int     queue_move(const char *from_queue, const char *to_queue, const char *id);

/*
 * Spare queue files. A finished message's file is not unlinked but kept in
 * spare/ (QUEUE_SPARE_SLOTS names, "spare/0" ...), and cleanup takes one
 * for its next message instead of creating a file. Creating and removing a
 * file per message costs the file system an inode allocation and release
 * each time, and on ext4 without a journal every new inode is searched
 * for past those released in the last minutes. A spare file is no message
 * (no queue reader looks in spare/), but it keeps the bytes of a finished
 * one until cleanup takes it: cleanup empties it then, ahead of the next
 * message, since emptying frees its blocks, which can mean a synchronous
 * discard on the disk, and qmgr's event loop must not wait for that. Both
 * calls are atomic renames, safe between any number of processes.
 *
 * queue_spare_put: move the file at path to a free slot; when none is free
 * (or anything fails) remove it instead. After finding no free slot it
 * removes without trying for 100 ms. Returns 0 when path is gone, -1 with
 * errno when it could be neither moved nor removed.
 * queue_spare_take: move a spare file to path (which must not exist).
 * Returns 0, or -1 when no spare file was found. Keeps spare/ open
 * between calls (one directory per process: the working directory's);
 * after finding it empty it does not look again for 100 ms.
 */
int     queue_spare_put(const char *path);
int     queue_spare_take(const char *path);

/*
 * Walk every file of a queue (into its hashed subdirectories). The callback
 * gets the queue ID (file name); names that are not queue IDs are skipped.
 * Returns the number of files seen, or -1 when the queue cannot be opened.
 */
typedef void (*queue_walk_fn)(const char *queue_name, const char *id, void *ctx);
long    queue_walk(const char *queue_name, queue_walk_fn fn, void *ctx);

#endif
