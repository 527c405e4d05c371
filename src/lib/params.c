/*
 * params.c - the one table of main.cf parameters; see params.h.
 *
 * Every parameter that a Postern program reads is declared here once, with
 * its type, default, bounds and a one-line summary. The table must stay
 * sorted by name (param_lookup() does a binary search; test_params checks
 * the order). Run-time defaults (host name, directories of the running
 * installation) are computed by the def_fn functions below; their results are
 * stored in the config with config_intern() and used as is, without further
 * $name expansion.
 *
 * Value checking (param_check_value, param_parse_time) trusts nothing: values
 * come from main.cf and master.cf -o after expansion. It fails with an
 * explanation that names the value and the parameter.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mem.h"
#include "params.h"
#include "str.h"

#ifndef POSTERN_PREFIX
#error "POSTERN_PREFIX must be defined by the build (see Makefile)"
#endif

static const char *def_command_directory(struct config *cfg);
static const char *def_daemon_directory(struct config *cfg);
static const char *def_mydomain(struct config *cfg);
static const char *def_myhostname(struct config *cfg);

/* Shorthands that keep the table readable; fields not named are zero. */
#define P_STR(n, d, s)          {.name = n, .type = PARAM_STR, .def = d, .summary = s}
#define P_FN(n, f, s)           {.name = n, .type = PARAM_STR, .def_fn = f, .summary = s}
#define P_INT(n, d, lo, s)      {.name = n, .type = PARAM_INT, .def = d, .min = lo, .summary = s}
#define P_SIZE(n, d, lo, s)     {.name = n, .type = PARAM_SIZE, .def = d, .min = lo, .summary = s}
#define P_BOOL(n, d, s)         {.name = n, .type = PARAM_BOOL, .def = d, .summary = s}
#define P_TIME(n, d, u, lo, s)  {.name = n, .type = PARAM_TIME, .def = d, .unit = u, .min = lo, \
                                 .summary = s}

const struct param_def param_table[] = {
    P_STR("2bounce_notice_recipient", "postmaster",
          "who gets a failure notice that cannot go to its sender (notify_classes \"2bounce\")"),
    P_STR("alias_database", "hash:/etc/aliases",
          "tables that \"postern newaliases\" rebuilds"),
    P_STR("alias_maps", "hash:/etc/aliases",
          "tables consulted by local delivery to expand aliases"),
    P_STR("allow_mail_to_commands", "alias, forward",
          "where local delivery accepts |command destinations: alias, forward, include"),
    P_STR("allow_mail_to_files", "alias, forward",
          "where local delivery accepts /file destinations: alias, forward, include"),
    P_BOOL("allow_percent_hack", "yes",
           "rewrite user%domain into user@domain"),
    P_STR("alternate_config_directories", "",
          "configuration directories that postdrop accepts from unprivileged users"),
    P_BOOL("always_add_missing_headers", "no",
           "add Message-ID:, Date:, From: and To: to mail from the network too, not only to local submissions"),
    P_TIME("anvil_rate_time_unit", "60s", 's', 1,
           "the time window over which anvil counts connection and message rates"),
    P_TIME("anvil_status_update_time", "600s", 's', 1,
           "how often anvil logs its peak usage statistics"),
    P_BOOL("append_at_myorigin", "yes",
           "qualify a bare local part with @$myorigin"),
    P_BOOL("append_dot_mydomain", "no",
           "qualify user@host with .$mydomain"),
    P_STR("authorized_submit_users", "static:anyone",
          "local users allowed to submit mail with sendmail (a list of names and tables)"),
    P_STR("bounce_notice_recipient", "postmaster",
          "who gets the postmaster copy of non-delivery notices (notify_classes \"bounce\")"),
    P_TIME("bounce_queue_lifetime", "5d", 'd', 0,
           "how long a bounce message may stay queued before it is given up"),
    P_SIZE("bounce_size_limit", "50000", 1,
           "most bytes of the original message returned in a delivery status notice"),
    P_STR("cleanup_service_name", "cleanup",
          "the name of the cleanup service in master.cf"),
    P_FN("command_directory", def_command_directory,
         "where the postern administrative commands are installed"),
    P_TIME("command_time_limit", "1000s", 's', 1,
           "time limit for delivery to an external command"),
    P_STR("config_directory", "/etc/postern",
          "directory holding main.cf and master.cf"),
    P_FN("daemon_directory", def_daemon_directory,
         "where the daemon programs started by master are installed"),
    P_TIME("daemon_timeout", "18000s", 's', 1,
           "a daemon that is busy with one request for longer than this is killed"),
    P_STR("data_directory", "/var/lib/postern",
          "directory for writable data such as caches and random seeds"),
    P_INT("debug_peer_level", "2", 1,
          "extra verbosity for peers listed in debug_peer_list"),
    P_INT("default_destination_concurrency_limit", "20", 1,
          "most parallel deliveries to one destination, per transport"),
    P_TIME("default_destination_rate_delay", "0s", 's', 0,
           "pause between two deliveries to the same destination (0 = none)"),
    P_INT("default_destination_recipient_limit", "50", 1,
          "most recipients per delivery request, per transport"),
    P_INT("default_extra_recipient_limit", "1000", 1,
          "extra in-memory recipient slots per transport beyond the recipient limit"),
    P_STR("default_privs", "nobody",
          "account for deliveries to files and commands when no owner applies"),
    P_INT("default_process_limit", "100", 1,
          "maxproc of a master.cf service whose maxproc field is \"-\""),
    P_INT("default_recipient_limit", "20000", 1,
          "most in-memory recipients per transport in the queue manager"),
    P_STR("default_transport", "smtp",
          "transport for destinations that are not local, virtual or relay"),
    P_STR("delay_notice_recipient", "postmaster",
          "who gets the postmaster copy of delay notices (notify_classes \"delay\")"),
    P_TIME("delay_warning_time", "0h", 'h', 0,
           "warn the sender after a message has been delayed this long (0 = never)"),
    P_BOOL("disable_vrfy_command", "no",
           "refuse the SMTP VRFY command"),
    P_STR("double_bounce_sender", "double-bounce",
          "sender of postmaster notices; failures of mail from it are dropped, ending bounce loops"),
    P_STR("empty_address_recipient", "MAILER-DAEMON",
          "where mail for the empty address goes"),
    P_BOOL("enable_original_recipient", "yes",
           "keep each recipient's original address in the queue file"),
    P_STR("export_environment", "TZ MAIL_CONFIG LANG",
          "environment variables passed on to external commands"),
    P_STR("forward_path", "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
          "the .forward files local delivery looks for, first found wins"),
    P_INT("hash_queue_depth", "1", 1,
          "levels of hashed subdirectories for the queues in hash_queue_names"),
    P_STR("hash_queue_names", "deferred, defer",
          "queues whose files are spread over hashed subdirectories"),
    P_SIZE("header_size_limit", "102400", 0,
           "most bytes of message headers kept; the rest is treated as body"),
    P_STR("home_mailbox", "",
          "mailbox path relative to the home directory (ending in / = Maildir); empty = mail_spool_directory"),
    P_INT("hopcount_limit", "50", 1,
          "most Received: headers a message may have before it is bounced as looping"),
    P_STR("import_environment", "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTERN_CONFIG",
          "environment variables that daemons keep or set"),
    P_STR("inet_interfaces", "all",
          "network addresses that inet services listen on"),
    P_STR("inet_protocols", "all",
          "IP versions to use: ipv4, ipv6 or all"),
    P_INT("initial_destination_concurrency", "5", 1,
          "parallel deliveries to a destination before it has proven itself"),
    P_TIME("ipc_idle", "5s", 's', 1,
           "an idle client closes an internal connection after this long"),
    P_TIME("ipc_timeout", "3600s", 's', 1,
           "time limit for one internal request or reply"),
    P_INT("line_length_limit", "2048", 80,
          "longer message lines are split into pieces of this size"),
    P_STR("local_header_rewrite_clients", "permit_inet_interfaces",
          "clients whose mail is treated as local: headers completed, local rewriting rule"),
    P_STR("local_recipient_maps", "unix:passwd.byname $alias_maps",
          "tables of the users of the local domains; empty accepts any local part"),
    P_STR("local_transport", "local:$myhostname",
          "transport for domains listed in mydestination"),
    P_STR("mail_name", "Postern",
          "the name the mail system uses for itself in banners and bounces"),
    P_STR("mail_owner", "postern",
          "unprivileged account that owns the queue and runs the daemons"),
    P_STR("mail_spool_directory", "/var/mail",
          "directory of the users' mbox files when home_mailbox is empty"),
    P_SIZE("mailbox_size_limit", "51200000", 0,
           "largest mailbox or file local delivery appends to, in bytes (0 = no limit)"),
    P_STR("maillog_file", "",
          "log to this file instead of syslog when not empty"),
    P_TIME("max_idle", "100s", 's', 1,
           "a daemon with no client for this long exits"),
    P_INT("max_use", "100", 1,
          "a daemon exits after serving this many clients"),
    P_TIME("maximal_backoff_time", "4000s", 's', 1,
           "longest wait between two delivery attempts of a deferred message"),
    P_TIME("maximal_queue_lifetime", "5d", 'd', 0,
           "a message that cannot be delivered for this long is returned"),
    P_SIZE("message_size_limit", "10240000", 0,
           "largest message accepted, in bytes (0 = no limit)"),
    P_TIME("minimal_backoff_time", "300s", 's', 1,
           "shortest wait between two delivery attempts of a deferred message"),
    P_STR("mydestination", "$myhostname, localhost.$mydomain, localhost",
          "domains delivered locally"),
    P_FN("mydomain", def_mydomain,
         "the local internet domain; by default $myhostname without its first label"),
    P_FN("myhostname", def_myhostname,
         "the fully qualified name of this host; by default the system host name"),
    P_STR("mynetworks", "127.0.0.0/8 [::1]/128",
          "client networks trusted to relay"),
    P_STR("myorigin", "$myhostname",
          "domain appended to locally posted mail"),
    P_STR("notify_classes", "resource, software",
          "problem classes reported to the postmaster (bounce, 2bounce, delay, resource, software, ...)"),
    P_STR("pickup_service_name", "pickup",
          "the name of the pickup service in master.cf"),
    P_STR("process_id_directory", "pid",
          "directory for lock and pid files, relative to queue_directory"),
    P_STR("proxy_interfaces", "",
          "addresses that reach this machine through a proxy or NAT (for local address literals)"),
    P_INT("qmgr_message_active_limit", "20000", 1,
          "most messages the queue manager holds in the active queue"),
    P_INT("qmgr_message_recipient_limit", "20000", 1,
          "most recipients the queue manager holds in memory"),
    P_STR("queue_directory", "/var/spool/postern",
          "root of the mail queue"),
    P_TIME("queue_run_delay", "300s", 's', 1,
           "how often the deferred queue is scanned"),
    P_STR("queue_service_name", "qmgr",
          "the name of the queue manager service in master.cf"),
    P_STR("recipient_delimiter", "",
          "characters that separate a user name from an address extension (user+ext)"),
    P_STR("relay_domains", "",
          "remote domains this host accepts mail for from anyone"),
    P_STR("relay_transport", "relay",
          "transport for domains listed in relay_domains"),
    P_STR("relayhost", "",
          "send all non-local mail through this host when not empty"),
    P_BOOL("resolve_dequoted_address", "yes",
           "resolve an address by its unquoted form, so \"user@x\"@y goes to x"),
    P_BOOL("resolve_null_domain", "no",
           "resolve user@ as if it were user@$myhostname instead of rejecting it"),
    P_STR("rewrite_service_name", "rewrite",
          "the name of the trivial-rewrite service in master.cf"),
    P_TIME("service_throttle_time", "60s", 's', 1,
           "master pauses a service this long when its program fails at once"),
    P_STR("setgid_group", "postdrop",
          "group of the setgid postdrop program and of the maildrop queue"),
    P_STR("smtpd_banner", "$myhostname ESMTP $mail_name",
          "text after the 220 code in the SMTP greeting"),
    P_INT("smtpd_client_connection_count_limit", "50", 0,
          "most simultaneous connections from one client (0 = no limit)"),
    P_TIME("smtpd_client_name_cache_time", "60s", 's', 0,
           "how long an smtpd process reuses a client's verified name for the same address (0 = look up at every connection)"),
    P_STR("smtpd_client_restrictions", "",
          "checks applied to the client address and name"),
    P_BOOL("smtpd_delay_open_until_valid_rcpt", "yes",
           "connect to cleanup (and create the queue file) at the first accepted recipient, not at MAIL FROM"),
    P_BOOL("smtpd_delay_reject", "yes",
           "apply client, HELO and sender restrictions at RCPT TO"),
    P_TIME("smtpd_error_sleep_time", "1s", 's', 0,
           "pause before replying to a client that has made smtpd_soft_error_limit errors"),
    P_BOOL("smtpd_forbid_bare_newline", "yes",
           "reject SMTP input lines that end in a bare newline"),
    P_INT("smtpd_hard_error_limit", "20", 1,
          "disconnect a client after this many errors"),
    P_BOOL("smtpd_helo_required", "no",
           "require HELO or EHLO before MAIL FROM"),
    P_STR("smtpd_helo_restrictions", "",
          "checks applied to the HELO/EHLO name"),
    P_INT("smtpd_junk_command_limit", "100", 1,
          "most NOOP, VRFY, RSET and unknown commands per session before they count as errors"),
    P_BOOL("smtpd_peername_lookup", "yes",
           "look up the client's host name in DNS (no: always \"unknown\")"),
    P_INT("smtpd_recipient_limit", "1000", 1,
          "most recipients accepted per message"),
    P_STR("smtpd_recipient_restrictions", "",
          "checks applied at RCPT TO, after the relay restrictions"),
    P_BOOL("smtpd_reject_unlisted_recipient", "yes",
           "reject recipients in the local and virtual domains that no table lists"),
    P_BOOL("smtpd_reject_unlisted_sender", "no",
           "reject senders in the local and virtual domains that no table lists"),
    P_STR("smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination",
          "checks at RCPT TO that decide whether relaying is allowed"),
    P_STR("smtpd_sender_restrictions", "",
          "checks applied to the MAIL FROM address"),
    P_INT("smtpd_soft_error_limit", "10", 1,
          "slow down a client after this many errors"),
    P_TIME("smtpd_timeout", "300s", 's', 1,
           "time limit for a client to send a command or data, and to read a reply"),
    P_BOOL("swap_bangpath", "no",
           "rewrite host!user into user@host"),
    P_STR("syslog_facility", "mail",
          "syslog facility for log lines"),
    P_STR("syslog_name", "postern",
          "first part of the program name in log lines"),
    P_STR("transport_maps", "",
          "tables mapping a recipient or domain to transport:nexthop"),
    P_TIME("transport_retry_time", "60s", 's', 1,
           "how long the queue manager waits before it tries a transport that failed again"),
    P_STR("undisclosed_recipients_header", "To: undisclosed-recipients:;",
          "header cleanup adds to local mail that has no To: or Cc: header (empty = none)"),
    P_INT("unknown_local_recipient_reject_code", "550", 400,
          "SMTP reply code for a recipient not found in local_recipient_maps"),
    P_STR("virtual_alias_domains", "$virtual_alias_maps",
          "domains whose every address is an alias to another"),
    P_STR("virtual_alias_maps", "",
          "tables that map an address to one or more other addresses"),
    P_STR("virtual_gid_maps", "",
          "tables giving the group ID of each virtual mailbox (static:N for all)"),
    P_STR("virtual_mailbox_base", "",
          "directory that the mailbox paths of virtual_mailbox_maps are relative to"),
    P_STR("virtual_mailbox_domains", "$virtual_mailbox_maps",
          "domains delivered by the virtual transport"),
    P_SIZE("virtual_mailbox_limit", "51200000", 0,
           "largest size in bytes of a virtual mailbox file or Maildir message (0 = no limit)"),
    P_STR("virtual_mailbox_maps", "",
          "tables of the mailboxes of the virtual domains"),
    P_INT("virtual_minimum_uid", "100", 1,
          "smallest user ID that the virtual agent delivers as"),
    P_STR("virtual_transport", "virtual",
          "transport for domains listed in virtual_mailbox_domains"),
    P_STR("virtual_uid_maps", "",
          "tables giving the user ID of each virtual mailbox (static:N for all)"),
};

const size_t param_table_size = sizeof(param_table) / sizeof(param_table[0]);

/*
 * Per-service parameter suffixes and the generic parameter each one stands
 * for. Longer suffixes first, so that "_destination_recipient_limit" is
 * preferred over "_recipient_limit" when both would match.
 */
static const struct service_suffix {
    const char *suffix;
    const char *generic;
} service_suffixes[] = {
    {"_destination_concurrency_limit", "default_destination_concurrency_limit"},
    {"_destination_recipient_limit", "default_destination_recipient_limit"},
    {"_initial_destination_concurrency", "initial_destination_concurrency"},
    {"_destination_rate_delay", "default_destination_rate_delay"},
    {"_extra_recipient_limit", "default_extra_recipient_limit"},
    {"_recipient_limit", "default_recipient_limit"},
    {"_time_limit", "command_time_limit"},
};

static int
compare_name(const void *key, const void *elem)
{
    return strcmp((const char *) key, ((const struct param_def *) elem)->name);
}

const struct param_def *
param_lookup(const char *name)
{
    return bsearch(name, param_table, param_table_size, sizeof(param_table[0]), compare_name);
}

/*
 * Find the generic definition for "<service><suffix>". Each suffix is tried,
 * and the remaining prefix must be one of "services" exactly. Returns NULL
 * when services is NULL or nothing matches.
 */
const struct param_def *
param_lookup_service(const char *name, const char *const *services)
{
    size_t  nlen = strlen(name);

    if (services == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(service_suffixes) / sizeof(service_suffixes[0]); i++) {
        const struct service_suffix *s = &service_suffixes[i];
        size_t  slen = strlen(s->suffix);

        if (nlen <= slen || strcmp(name + nlen - slen, s->suffix) != 0)
            continue;
        for (const char *const *svc = services; *svc; svc++) {
            if (strlen(*svc) == nlen - slen && strncmp(*svc, name, nlen - slen) == 0) {
                const struct param_def *def = param_lookup(s->generic);

                if (def == NULL)
                    log_panic("param_lookup_service: generic parameter %s missing", s->generic);
                return def;
            }
        }
    }
    return NULL;
}

/*
 * Parse a time value: decimal digits, then at most one unit letter (s, m, h,
 * d, w, either case). Without a letter default_unit applies (0 means 's').
 * Signs, blanks, empty input, other letters and overflow are rejected.
 */
bool
param_parse_time(const char *value, char default_unit, long *seconds)
{
    const char *p = value;
    long    n = 0, mult;
    char    unit;

    if (!isdigit((unsigned char) *p))
        return false;
    for (; isdigit((unsigned char) *p); p++) {
        int     d = *p - '0';

        if (n > (LONG_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    if (*p == 0)
        unit = default_unit ? default_unit : 's';
    else if (p[1] == 0)
        unit = *p;
    else
        return false;
    switch (tolower((unsigned char) unit)) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 7 * 86400;
        break;
    default:
        return false;
    }
    if (n > LONG_MAX / mult)
        return false;
    *seconds = n * mult;
    return true;
}

/* Decimal integer with an optional leading '-', no blanks, no overflow. */
static bool
parse_integer(const char *value, long *out)
{
    const char *p = value;

    if (*p == '-')
        p++;
    if (!isdigit((unsigned char) *p))
        return false;
    return cstr_parse_long(value, out) == 0;
}

/* Check n against [def->min, def->max]; "suffix" is the unit shown ("s" for TIME). */
static bool
check_bounds(const struct param_def *def, long n, const char *suffix, str_t *why)
{
    if (n < def->min) {
        if (why)
            str_printf(why, "value %ld%s for parameter %s is below the minimum %ld%s",
                       n, suffix, def->name, def->min, suffix);
        return false;
    }
    if (def->max != 0 && n > def->max) {
        if (why)
            str_printf(why, "value %ld%s for parameter %s is above the maximum %ld%s",
                       n, suffix, def->name, def->max, suffix);
        return false;
    }
    return true;
}

/*
 * Check an expanded value against its definition; see params.h. "why" may
 * be NULL when the caller only wants the verdict. STR values are always
 * accepted and leave *num alone.
 */
bool
param_check_value(const struct param_def *def, const char *value, long *num, str_t *why)
{
    long    n = 0;

    switch (def->type) {
    case PARAM_STR:
        return true;
    case PARAM_BOOL:
        if (strcasecmp(value, "yes") == 0)
            n = 1;
        else if (strcasecmp(value, "no") == 0)
            n = 0;
        else {
            if (why)
                str_printf(why, "bad boolean value \"%s\" for parameter %s: need yes or no",
                           value, def->name);
            return false;
        }
        break;
    case PARAM_INT:
    case PARAM_SIZE:
        if (!parse_integer(value, &n)) {
            if (why)
                str_printf(why, "bad numerical value \"%s\" for parameter %s", value, def->name);
            return false;
        }
        if (!check_bounds(def, n, "", why))
            return false;
        break;
    case PARAM_TIME:
        if (!param_parse_time(value, def->unit, &n)) {
            if (why)
                str_printf(why, "bad time value \"%s\" for parameter %s", value, def->name);
            return false;
        }
        if (!check_bounds(def, n, "s", why))
            return false;
        break;
    default:
        log_panic("param_check_value: parameter %s has bad type %d", def->name, (int) def->type);
    }
    if (num)
        *num = n;
    return true;
}

/*
 * The default text of a parameter. For a computed default, cfg must not be
 * NULL: the result is stored in (and owned by) the config.
 */
const char *
param_default(const struct param_def *def, struct config *cfg)
{
    if (def->def)
        return def->def;
    if (def->def_fn == NULL)
        log_panic("parameter %s has neither a default nor a default function", def->name);
    if (cfg == NULL)
        log_panic("param_default(%s): a computed default needs a config", def->name);
    return def->def_fn(cfg);
}

/*
 * The directory of the running executable, from /proc/self/exe, into out.
 * Returns false (out unchanged) when it cannot be determined.
 */
static bool
exe_directory(str_t *out)
{
    char    buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char   *slash;

    if (n <= 0 || (size_t) n >= sizeof(buf) - 1)
        return false;
    buf[n] = 0;
    if ((slash = strrchr(buf, '/')) == NULL)
        return false;
    if (slash == buf)
        slash[1] = 0;               /* the executable is in "/" */
    else
        *slash = 0;
    str_set_cstr(out, buf);
    return true;
}

/*
 * The first of the directories "exe_dir/rel" (for rel in rels) that holds
 * the file "probe"; NULL when none does.  Used to find the other programs
 * of an uninstalled build tree as well as of an installed one.
 */
static const char *
sibling_directory(struct config *cfg, const char *const *rels, const char *probe)
{
    str_t  *dir = str_new(0);
    str_t  *path = str_new(0);
    const char *result = NULL;

    if (exe_directory(dir)) {
        for (const char *const *rel = rels; *rel != NULL && result == NULL; rel++) {
            char   *real;
            struct stat sb;

            str_printf(path, "%s/%s/%s", str_cstr(dir), *rel, probe);
            if (stat(str_cstr(path), &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            str_printf(path, "%s/%s", str_cstr(dir), *rel);
            if ((real = realpath(str_cstr(path), NULL)) != NULL) {
                result = config_intern(cfg, real);
                free(real);
            }
        }
    }
    str_free(path);
    str_free(dir);
    return result;
}

/* Where "master" lives next to the running program (itself a daemon or a command); else the installed path. */
static const char *
def_daemon_directory(struct config *cfg)
{
    static const char *const rels[] = {".", "../libexec/postern", NULL};
    const char *dir = sibling_directory(cfg, rels, "master");

    return dir ? dir : POSTERN_PREFIX "/libexec/postern";
}

/* Where the "postern" command lives next to the running program; else the installed path. */
static const char *
def_command_directory(struct config *cfg)
{
    static const char *const rels[] = {".", "../../bin", "../../sbin", "../sbin", NULL};
    const char *dir = sibling_directory(cfg, rels, "postern");

    return dir ? dir : POSTERN_PREFIX "/sbin";
}

/* gethostname(), made fully qualified with ".localdomain" when it has no dot. */
static const char *
def_myhostname(struct config *cfg)
{
    char    buf[256];
    str_t  *name = str_new(0);
    const char *result;

    if (gethostname(buf, sizeof(buf)) != 0) {
        log_warn_errno("gethostname");
        buf[0] = 0;
    }
    buf[sizeof(buf) - 1] = 0;
    str_set_cstr(name, *buf ? buf : "localhost");
    if (strchr(str_cstr(name), '.') == NULL)
        str_append_cstr(name, ".localdomain");
    result = config_intern(cfg, str_cstr(name));
    str_free(name);
    return result;
}

/*
 * $myhostname without its first label, or "localdomain" when nothing is
 * left. When myhostname cannot be expanded (a loop through mydomain), the
 * nested config_expand() has recorded the error in the config, which the
 * caller reports; the fallback returned here is then not used.
 */
static const char *
def_mydomain(struct config *cfg)
{
    str_t  *host = str_new(0);
    str_t  *err = str_new(0);
    const char *result = "localdomain";

    if (config_expand(cfg, "$myhostname", host, err)) {
        const char *dot = strchr(str_cstr(host), '.');

        if (dot && dot[1])
            result = config_intern(cfg, dot + 1);
    }
    str_free(host);
    str_free(err);
    return result;
}
