/*
 * log.h - Postfix-style logging with graded severities.
 *
 * A line looks like
 *     Nov 22 10:00:00 host postern/smtpd[123]: warning: text
 * and goes to maillog_file when one is configured, else to syslog (facility
 * mail). Commands may also echo to stderr as "postern: warning: text".
 *
 * Severities: log_info (no prefix), log_warn ("warning: "), log_error
 * ("error: "), log_fatal ("fatal: ", then exit(1): a problem of the
 * environment or configuration), log_panic ("panic: ", then abort(): a broken
 * invariant in our own code). The _errno variants append ": strerror(errno)".
 *
 * Logging never fails the caller: if the log file cannot be written, the line
 * goes to stderr.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* The program part of the tag: "smtpd" in "postern/smtpd[123]". */
void    log_init(const char *program);
/*
 * Where lines go. syslog_name is the first part of the tag ("postern"); a
 * NULL or empty maillog_file means syslog. hostname may be NULL (gethostname).
 * The log file is opened here, so call this before dropping privileges.
 */
void    log_configure(const char *syslog_name, const char *maillog_file, const char *hostname);
/* Also write every line to stderr: full format (true) or "program: text". */
void    log_set_stderr(bool enabled, bool full_format);
/* Count of warnings and errors logged so far (for "check"). */
unsigned log_problem_count(void);
const char *log_program(void);

void    log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void    log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void    log_warn_errno(const char *fmt, ...) LOG_PRINTF(1, 2);
void    log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_fatal_errno(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void log_panic(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Hook run before log_fatal exits (e.g. to remove a temporary file). */
void    log_set_fatal_hook(void (*hook)(void));

#endif
