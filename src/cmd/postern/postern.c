/*
 * postern.c - the administration command: dispatch.
 *
 *     postern [-c DIR] COMMAND [ARGS]
 *
 * SECURITY: an ordinary program, never setuid. Commands that change a
 * system instance (start, stop, init as root) need the privileges of the
 * user who runs them; nothing here raises them. It may be installed setgid
 * to setgid_group (like Postfix's postqueue) so that ordinary users can
 * reach public/showq and public/qmgr: that group is then dropped at once
 * for every command but "queue", which drops it as soon as it has
 * connected (postern_queue.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "instance.h"
#include "log.h"
#include "postern.h"
#include "version.h"

static int
usage(void)
{
    fprintf(stderr,
            "usage: postern [-c config_dir] command [arguments]\n"
            "commands:\n"
            "  init DIR [--listen ADDR:PORT] [-o name=value]...  create an instance\n"
            "  start | start-fg | stop | reload | status | check\n"
            "  conf [-n|-d] [-h] [-x] [name...]                  print parameters\n"
            "  conf -e 'name = value'...                         edit main.cf\n"
            "  map [-a] [-f] [-r] [-q key|-] [type:]file...      build or query tables\n"
            "  cat [-h] [-b] [-e] ID...                          print queue files\n"
            "  queue -p | -j                                     list the queue\n"
            "  queue -f | -s site | -i queue_id                  deliver deferred mail now\n"
            "  super [-s] [-d|-h|-H|-r queue_id|ALL|-]... [queue...]  delete, hold, release, requeue, repair\n"
            "  version\n");
    return POSTERN_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    const char *opt_dir = NULL;
    const char *cmd;
    const char *dir;
    int     i = 1;

    log_init("postern");
    log_set_stderr(true, false);
    /* Find the command first: only "queue" may keep a setgid group. */
    for (int j = 1; j < argc; j++) {
        if (strcmp(argv[j], "-c") == 0) {
            j++;
            continue;
        }
        if (strcmp(argv[j], "queue") != 0 && getegid() != getgid()
            && setresgid(getgid(), getgid(), getgid()) != 0)
            log_fatal_errno("cannot drop the setgid group");
        break;
    }
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            opt_dir = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return POSTERN_EXIT_OK;
        } else {
            return usage();
        }
    }
    if (i >= argc)
        return usage();
    cmd = argv[i];
    dir = instance_config_dir(opt_dir);
    if (strcmp(cmd, "init") == 0)
        return postern_init(argc - i, argv + i);
    if (strcmp(cmd, "start") == 0 && i + 1 == argc)
        return postern_start(dir, false);
    if (strcmp(cmd, "start-fg") == 0 && i + 1 == argc)
        return postern_start(dir, true);
    if (strcmp(cmd, "stop") == 0 && i + 1 == argc)
        return postern_stop(dir);
    if (strcmp(cmd, "reload") == 0 && i + 1 == argc)
        return postern_reload(dir);
    if (strcmp(cmd, "status") == 0 && i + 1 == argc)
        return postern_status(dir);
    if (strcmp(cmd, "check") == 0 && i + 1 == argc)
        return postern_check(dir);
    if (strcmp(cmd, "conf") == 0)
        return postern_conf(dir, argc - i, argv + i);
    if (strcmp(cmd, "map") == 0)
        return postern_map(dir, argc - i, argv + i);
    if (strcmp(cmd, "cat") == 0)
        return postern_cat(dir, argc - i, argv + i);
    if (strcmp(cmd, "queue") == 0)
        return postern_queue(dir, argc - i, argv + i);
    if (strcmp(cmd, "super") == 0)
        return postern_super(dir, argc - i, argv + i);
    if (strcmp(cmd, "version") == 0) {
        printf("postern %s\n", POSTERN_VERSION);
        return POSTERN_EXIT_OK;
    }
    return usage();
}
