/*
 * instance.h - one Postern instance: where it is, its configuration, its
 * directories and whether its master runs.
 *
 * An instance is a config directory holding main.cf and master.cf. Commands
 * find it by "-c DIR", else $POSTERN_CONFIG, else /etc/postern.
 */
#ifndef POSTERN_INSTANCE_H
#define POSTERN_INSTANCE_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "diag.h"
#include "mastercf.h"

#define INSTANCE_DEFAULT_DIR "/etc/postern"

/* The config directory: opt if not NULL, else $POSTERN_CONFIG, else the default. */
const char *instance_config_dir(const char *opt);

/*
 * Read and check DIR/main.cf and DIR/master.cf: syntax, parameter names and
 * values, every master.cf command present and executable in
 * daemon_directory. Problems go to diags. *cfg and *mc are always set (free
 * them with config_free/mastercf_free). Returns the number of errors.
 */
size_t  instance_load(const char *dir, config_t **cfg, struct mastercf *mc, diag_list_t *diags);

/*
 * Create the queue directory tree with its owners and modes (when root):
 * queue_directory itself, pid/ (root), private/, public/, and the mail
 * queues. fix: also repair owners and modes of existing directories.
 * Returns false (with diags) on failure.
 */
bool    instance_make_dirs(config_t *cfg, diag_list_t *diags);
/* Check the same tree without changing it (for "check"). */
void    instance_check_dirs(config_t *cfg, diag_list_t *diags);

/* Path of the master lock/pid file: queue_directory/pid/master.pid. */
void    instance_pid_path(config_t *cfg, str_t *out);
/* The pid of the running master (the holder of the lock), or 0. */
pid_t   instance_master_pid(config_t *cfg);

/* mail_owner and setgid_group as ids; false with an explanation if missing. */
bool    instance_owner_ids(config_t *cfg, uid_t *uid, gid_t *gid, gid_t *setgid_gid, str_t *why);

#endif
