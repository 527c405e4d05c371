/*
 * smtpd_main.c - the Postern SMTP server: sessions and the command loop.
 *
 * SECURITY: runs as mail_owner (the skeleton dropped root before the first
 * accept), optionally chrooted. Everything the client sends is untrusted:
 * lines are bounded by line_length_limit, NUL bytes and bare <LF> line
 * endings are refused, every read and write has the smtpd_timeout deadline,
 * and the soft/hard error limits end abusive sessions.
 *
 * This is the session layer: greeting, the command loop, limits and
 * logging. Commands are in smtpd_cmd.c, message content in smtpd_data.c,
 * the hand-off to cleanup in smtpd_cleanup.c, the restrictions in
 * smtpd_check.c (whose tables are opened once, in post_init).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"
#include "server.h"
#include "smtpd.h"

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    va_list ap;
    str_t  *text = str_new(128);

    va_start(ap, fmt);
    str_append_vprintf(text, fmt, ap);
    va_end(ap);
    /* Multi-line: "250-first\n250-second\n250 last" is written with CRLF. */
    for (const char *p = str_cstr(text); *p;) {
        const char *nl = strchr(p, '\n');
        size_t  n = nl ? (size_t) (nl - p) : strlen(p);

        stream_write(s->client, p, n);
        stream_write(s->client, "\r\n", 2);
        p += n + (nl != NULL);
    }
    str_free(text);
    if (stream_pending(s->client) == 0)    /* pipelining: flush only when input is drained */
        stream_flush(s->client);
}

/*
 * The 421 after a read timeout: the stream's error state is sticky, so the
 * line goes straight to the socket. The output buffer is empty here (replies
 * are flushed before the server waits for input) and the line is short, so
 * this cannot block on a full socket buffer.
 */
void
smtpd_reply_timeout(struct smtpd_session *s)
{
    str_t  *text = str_new(128);

    str_printf(text, "421 4.4.2 %s Error: timeout exceeded\r\n", config_str(s->cfg, "myhostname"));
    if (fd_write_all(stream_fd(s->client), text->data, text->len) < 0)
        log_warn_errno("write timeout reply to %s[%s]", s->name, s->addr);
    str_free(text);
}

/* Bounded copy that truncates silently (names and addresses fit by design). */
static void
copy_text(char *dst, size_t size, const char *src)
{
    size_t  n = strnlen(src, size - 1);

    memcpy(dst, src, n);
    dst[n] = 0;
}

/*
 * The client's name, accepted only when it resolves back to the address:
 * 1 with the name in out, 0 when there is none (no reverse name, or one
 * that does not lead back), -1 when a lookup failed for now.
 */
static int
verified_name(const struct sockaddr_storage *ss, socklen_t len, const char *addr, char *out,
              size_t size)
{
    char    host[NI_MAXHOST];
    struct addrinfo hints = {.ai_family = ss->ss_family, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int     err, found = 0;

    if ((err = getnameinfo((const struct sockaddr *) ss, len, host, sizeof(host), NULL, 0,
                           NI_NAMEREQD)) != 0)
        return err == EAI_NONAME ? 0 : -1;
    if ((err = getaddrinfo(host, NULL, &hints, &res)) != 0) {
#ifdef EAI_NODATA
        if (err == EAI_NODATA)
            return 0;
#endif
        return err == EAI_NONAME ? 0 : -1;
    }
    for (struct addrinfo *ai = res; ai && !found; ai = ai->ai_next) {
        char    back[NI_MAXHOST];

        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, back, sizeof(back), NULL, 0,
                        NI_NUMERICHOST) != 0)
            continue;
        /* An IPv4-mapped client was logged (addr) as plain IPv4. */
        if (strcmp(back, addr) == 0
            || (strncmp(back, "::ffff:", 7) == 0 && strcmp(back + 7, addr) == 0)) {
            copy_text(out, size, host);
            found = 1;
        }
    }
    freeaddrinfo(res);
    return found;
}

/*
 * Answers of verified_name(), kept per process for
 * smtpd_client_name_cache_time: a client that comes back soon (the next
 * message of a relay or a list server) costs no new pair of lookups. Only
 * answers are kept, a name or a definite "none"; a lookup that failed for
 * now is made again at the next connection. A full table gives up the
 * entry that expires first.
 */
#define NAME_CACHE_SLOTS 16

static struct name_cache_slot {
    char    addr[INET6_ADDRSTRLEN];
    char    name[SMTPD_NAME_MAX];       /* "unknown": no verified name */
    int64_t expires;                    /* clock_mono_ms(); 0: unused */
} name_cache[NAME_CACHE_SLOTS];

static void
client_name(struct smtpd_session *s, const struct sockaddr_storage *ss, socklen_t len)
{
    long    ttl = config_time(s->cfg, "smtpd_client_name_cache_time");
    int64_t now = clock_mono_ms();
    struct name_cache_slot *slot = &name_cache[0];
    int     rc;

    for (size_t i = 0; ttl > 0 && i < NAME_CACHE_SLOTS; i++) {
        struct name_cache_slot *c = &name_cache[i];

        if (c->expires > now && strcmp(c->addr, s->addr) == 0) {
            copy_text(s->name, sizeof(s->name), c->name);
            return;
        }
        if (c->expires < slot->expires)
            slot = c;
    }
    if ((rc = verified_name(ss, len, s->addr, s->name, sizeof(s->name))) != 1)
        copy_text(s->name, sizeof(s->name), "unknown");
    if (ttl > 0 && rc >= 0 && strcmp(s->addr, "unknown") != 0) {
        copy_text(slot->addr, sizeof(slot->addr), s->addr);
        copy_text(slot->name, sizeof(slot->name), s->name);
        slot->expires = now + (int64_t) ttl * 1000;
    }
}

/* Find the client's address and a verified name ("unknown" when none). */
static void
identify_client(struct smtpd_session *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const struct sockaddr *peer;
    char    host[NI_MAXHOST], serv[NI_MAXSERV];

    snprintf(s->addr, sizeof(s->addr), "unknown");
    snprintf(s->name, sizeof(s->name), "unknown");
    /* The address accept() gave the skeleton, else ask the socket. */
    if ((peer = server_client_address(&len)) != NULL) {
        memcpy(&ss, peer, len);
    } else {
        len = sizeof(ss);
        if (getpeername(stream_fd(s->client), (struct sockaddr *) &ss, &len) != 0)
            return;
    }
    if (ss.ss_family == AF_UNIX) {
        snprintf(s->addr, sizeof(s->addr), "127.0.0.1");
        snprintf(s->name, sizeof(s->name), "localhost");
        return;
    }
    if (getnameinfo((struct sockaddr *) &ss, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        /* IPv4-mapped IPv6 is logged as plain IPv4, as Postfix does. */
        long    port = 0;

        copy_text(s->addr, sizeof(s->addr),
                  strncmp(host, "::ffff:", 7) == 0 && strchr(host, '.') ? host + 7 : host);
        if (cstr_parse_long(serv, &port) == 0)
            s->port = (int) port;
    }
    if (config_bool(s->cfg, "smtpd_peername_lookup"))
        client_name(s, &ss, len);
}

static struct smtpd_counter *
counter_for(struct smtpd_session *s, const char *name)
{
    for (size_t i = 0; i < s->ncounters; i++)
        if (strcmp(s->counters[i].name, name) == 0)
            return &s->counters[i];
    size_t  cap = s->ncounters;

    s->counters = mem_grow_array(s->counters, &cap, s->ncounters + 1, sizeof(*s->counters));
    s->counters[s->ncounters] = (struct smtpd_counter) {.name = name};
    return &s->counters[s->ncounters++];
}

/* "disconnect from name[addr] ehlo=1 mail=0/1 quit=1 commands=2/3" */
static void
log_disconnect(struct smtpd_session *s)
{
    str_t  *line = str_new(128);
    int     total = 0, ok = 0;

    for (size_t i = 0; i < s->ncounters; i++) {
        struct smtpd_counter *c = &s->counters[i];

        if (c->ok == c->total)
            str_append_printf(line, " %s=%d", c->name, c->ok);
        else
            str_append_printf(line, " %s=%d/%d", c->name, c->ok, c->total);
        total += c->total;
        ok += c->ok;
    }
    if (ok == total)
        str_append_printf(line, " commands=%d", ok);
    else
        str_append_printf(line, " commands=%d/%d", ok, total);
    log_info("disconnect from %s[%s]%s", s->name, s->addr, str_cstr(line));
    str_free(line);
}

/* Count an error; true when the session must end (hard limit). */
static bool
too_many_errors(struct smtpd_session *s)
{
    s->errors++;
    if (s->errors >= config_int(s->cfg, "smtpd_hard_error_limit")) {
        log_warn("hard error limit exceeded for %s[%s]", s->name, s->addr);
        smtpd_reply(s, "421 4.7.0 %s Error: too many errors", config_str(s->cfg, "myhostname"));
        return true;
    }
    return false;
}

/* Read one command; returns false when the session is over. */
static bool
read_command(struct smtpd_session *s)
{
    size_t  limit = (size_t) config_int(s->cfg, "line_length_limit");
    int     rc;

  again:
    rc = stream_read_line(s->client, s->line, limit);
    if (rc == STREAM_TOOLONG) {
        /* Discard the rest of the line, bounded by the same deadline. */
        str_t  *rest = str_new(0);

        while ((rc = stream_read_line(s->client, rest, limit)) == STREAM_TOOLONG)
            ;
        str_free(rest);
        if (rc != STREAM_OK)
            goto lost;
        smtpd_reply(s, "500 5.5.2 Error: line too long");
        if (too_many_errors(s))
            return false;
        goto again;                 /* the error limits bound this loop */
    }
    if (rc != STREAM_OK)
        goto lost;
    if (str_len(s->line) == 0 || s->line->data[str_len(s->line) - 1] != '\n'
        || str_len(s->line) < 2 || s->line->data[str_len(s->line) - 2] != '\r') {
        if (str_len(s->line) > 0 && s->line->data[str_len(s->line) - 1] == '\n'
            && config_bool(s->cfg, "smtpd_forbid_bare_newline")) {
            log_info("disconnect: bare <LF> received from %s[%s]", s->name, s->addr);
            smtpd_reply(s, "521 5.5.2 %s Error: bare <LF> received",
                        config_str(s->cfg, "myhostname"));
            return false;
        }
        if (str_len(s->line) == 0 || s->line->data[str_len(s->line) - 1] != '\n')
            goto lost;              /* input ended in the middle of a line */
    }
    str_chomp(s->line);
    return true;
  lost:
    if (rc == STREAM_TIMEOUT) {
        log_info("timeout after %s from %s[%s]", s->verb[0] ? s->verb : "CONNECT", s->name,
                 s->addr);
        smtpd_reply_timeout(s);
    } else {
        log_info("lost connection after %s from %s[%s]", s->verb[0] ? s->verb : "CONNECT",
                 s->name, s->addr);
    }
    return false;
}

/* Split the verb off, find its handler, run it, count the result. */
static void
dispatch(struct smtpd_session *s)
{
    const char *line = str_cstr(s->line);
    size_t  vlen = strcspn(line, " ");
    const char *args = line + vlen;
    const struct smtpd_command *cmd;

    while (*args == ' ')
        args++;
    if (memchr(line, 0, str_len(s->line)) != NULL) {
        smtpd_reply(s, "500 5.5.2 Error: NUL character in command");
        s->quit = too_many_errors(s);
        return;
    }
    for (cmd = smtpd_commands; cmd->verb; cmd++)
        if (strlen(cmd->verb) == vlen && strncasecmp(cmd->verb, line, vlen) == 0)
            break;
    snprintf(s->verb, sizeof(s->verb), "%s", cmd->verb ? cmd->verb : "UNKNOWN");
    for (char *v = s->verb; *v; v++)
        *v = (char) toupper((unsigned char) *v);
    if (cmd->verb == NULL) {
        struct smtpd_counter *c = counter_for(s, "unknown");

        c->total++;
        smtpd_reply(s, "502 5.5.2 Error: command not recognized");
        s->quit = too_many_errors(s);
        return;
    }
    struct smtpd_counter *c = counter_for(s, cmd->verb);

    c->total++;
    if (cmd->fn(s, args))
        c->ok++;
    else if (!s->quit)
        s->quit = too_many_errors(s);
}

static void
smtpd_service(stream_t *client, config_t *cfg)
{
    struct smtpd_session s = {.client = client, .cfg = cfg};

    stream_set_timeout(client, (int) config_time(cfg, "smtpd_timeout"));
    s.line = str_new(512);
    identify_client(&s);
    log_info("connect from %s[%s]", s.name, s.addr);
    smtpd_reply(&s, "220 %s", config_str(cfg, "smtpd_banner"));
    while (!s.quit && stream_status(client) == STREAM_OK && read_command(&s)) {
        dispatch(&s);
        if (!s.quit && s.errors >= config_int(cfg, "smtpd_soft_error_limit"))
            sleep(1);               /* tarpit: slow down a client that keeps failing */
    }
    smtpd_xact_reset(&s);           /* an unfinished message is dropped by cleanup */
    stream_flush(client);
    log_disconnect(&s);
    mem_free(s.helo);
    mem_free(s.counters);
    str_free(s.line);
}

/* After the privilege drop: parse the restrictions, open their tables once. */
static void
smtpd_post_init(config_t *cfg)
{
    smtpd_check_init(cfg);
}

int
main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .name = "smtpd",
        .post_init = smtpd_post_init,
        .service = smtpd_service,
        .idle = smtpd_cleanup_release,
    };

    single_server_main(argc, argv, &ops);
}
