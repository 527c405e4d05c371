/*
 * postern.h - the "postern" administration command (internal interfaces).
 *
 * postern.c          option parsing and dispatch
 * postern_init.c     "init": create an instance
 * postern_control.c  "start", "start-fg", "stop", "reload", "status", "check"
 * postern_conf.c     "conf": print and edit main.cf parameters
 * postern_map.c      "map": build and query indexed lookup tables (like postmap)
 * postern_cat.c      "cat": print a queue file (like postcat -q)
 * postern_queue.c    "queue": list the queue, flush it (like mailq / postqueue)
 * postern_super.c    "super": delete, hold, release, requeue, repair (like postsuper)
 */
#ifndef POSTERN_CMD_POSTERN_H
#define POSTERN_CMD_POSTERN_H

#include <stdbool.h>

/* Exit codes of the command. */
#define POSTERN_EXIT_OK      0
#define POSTERN_EXIT_FAIL    1      /* the requested action failed / not running */
#define POSTERN_EXIT_USAGE   2

int     postern_init(int argc, char **argv);
int     postern_start(const char *dir, bool foreground);
int     postern_stop(const char *dir);
int     postern_reload(const char *dir);
int     postern_status(const char *dir);
int     postern_check(const char *dir);
int     postern_conf(const char *dir, int argc, char **argv);
/* argv[0] is the subcommand name; argc counts it. */
int     postern_map(const char *dir, int argc, char **argv);
int     postern_cat(const char *dir, int argc, char **argv);
int     postern_queue(const char *dir, int argc, char **argv);
int     postern_super(const char *dir, int argc, char **argv);

/*
 * postern_queue.c: read DIR/main.cf for the queue commands and call
 * queue_init(). Returns the config (caller frees), or NULL after printing
 * why main.cf cannot be read.
 */
struct config;
struct config *postern_queue_config(const char *dir);

#endif
