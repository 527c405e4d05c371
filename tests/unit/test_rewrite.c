/*
 * test_rewrite.c - golden-file tests of address rewriting and resolving
 * (src/lib/rewrite.c), plus a few direct checks.
 *
 * tests/unit/golden/rewrite.in holds commands, one per line:
 *     # comment                  copied to the output
 *     reset                      forget all settings
 *     set NAME = VALUE           a main.cf line (the context is rebuilt)
 *     rewrite local|remote ADDR  canonicalize
 *     resolve ADDR               resolve
 * ADDR is the internal form; "<>" stands for the empty address. Each
 * command and its result are written to the output, which must equal
 * tests/unit/golden/rewrite.ref. On a mismatch the actual output is left in
 * /tmp/test_rewrite.out for diffing. POSTERN_GOLDEN_UPDATE=1 rewrites the
 * .ref file instead (review the diff before committing it).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "mem.h"
#include "rewrite.h"
#include "str.h"
#include "unit.h"

#define GOLDEN_MAX  (1024 * 1024)

static const char *
golden_dir(void)
{
    static char dir[512];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');

    snprintf(dir, sizeof(dir), "%.*sgolden", slash ? (int) (slash - file + 1) : 0, file);
    return dir;
}

static void
flag_names(str_t *out, int flags)
{
    static const struct {
        int     bit;
        const char *name;
    } names[] = {
        {RESOLVE_CLASS_LOCAL, "local"}, {RESOLVE_CLASS_ALIAS, "alias"},
        {RESOLVE_CLASS_VIRTUAL, "virtual"}, {RESOLVE_CLASS_RELAY, "relay"},
        {RESOLVE_CLASS_DEFAULT, "default"}, {RESOLVE_FLAG_ROUTED, "routed"},
        {RESOLVE_FLAG_ERROR, "error"}, {RESOLVE_FLAG_FAIL, "fail"},
    };

    str_reset(out);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].bit) {
            if (str_len(out))
                str_putc(out, ',');
            str_append_cstr(out, names[i].name);
        }
    }
    if (str_len(out) == 0)
        str_putc(out, '0');
}

struct golden {
    str_t  *settings;           /* main.cf text so far */
    rewrite_ctx_t *ctx;         /* built on demand */
    str_t  *out;
};

static bool
golden_ctx(struct golden *g)
{
    config_t *cfg;
    diag_list_t diags = {0};
    str_t  *err;

    if (g->ctx)
        return true;
    cfg = config_new();
    config_read_string(cfg, "rewrite.in", str_cstr(g->settings), str_len(g->settings), &diags);
    err = str_new(0);
    g->ctx = rewrite_ctx_new(cfg, err);
    if (g->ctx == NULL)
        str_append_printf(g->out, "  context error: %s\n", str_cstr(err));
    str_free(err);
    diag_free(&diags);
    config_free(cfg);
    return g->ctx != NULL;
}

static void
golden_line(struct golden *g, char *line)
{
    str_t  *res = str_new(64), *fl = str_new(16);
    char   *arg;

    if (*line == 0 || *line == '#') {
        str_append_printf(g->out, "%s\n", line);
    } else if (strcmp(line, "reset") == 0) {
        str_reset(g->settings);
        rewrite_ctx_free(g->ctx);
        g->ctx = NULL;
        str_append_printf(g->out, "%s\n", line);
    } else if (strncmp(line, "set ", 4) == 0) {
        str_append_printf(g->settings, "%s\n", line + 4);
        rewrite_ctx_free(g->ctx);
        g->ctx = NULL;
        str_append_printf(g->out, "%s\n", line);
    } else if (strncmp(line, "rewrite ", 8) == 0 && (arg = strchr(line + 8, ' ')) != NULL) {
        *arg++ = 0;
        if (golden_ctx(g)) {
            int     flags = rewrite_address(g->ctx, line + 8, strcmp(arg, "<>") ? arg : "", res);

            flag_names(fl, flags);
            str_append_printf(g->out, "rewrite %s %s -> %s flags=%s\n", line + 8, arg,
                              str_len(res) ? str_cstr(res) : "<>", str_cstr(fl));
        }
    } else if (strncmp(line, "resolve ", 8) == 0) {
        arg = line + 8;
        if (golden_ctx(g)) {
            struct resolve_reply r;

            resolve_reply_init(&r);
            resolve_address(g->ctx, "sender@example.org", strcmp(arg, "<>") ? arg : "", &r);
            flag_names(fl, r.flags);
            str_append_printf(g->out, "resolve %s -> flags=%s transport=%s nexthop=%s recipient=%s\n",
                              arg, str_cstr(fl), str_cstr(r.transport), str_cstr(r.nexthop),
                              str_cstr(r.recipient));
            resolve_reply_free(&r);
        }
    } else {
        str_append_printf(g->out, "?? unknown command: %s\n", line);
    }
    str_free(res);
    str_free(fl);
}

static bool
write_file(const char *path, const str_t *s)
{
    int     fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool    ok = fd >= 0 && write(fd, str_cstr(s), str_len(s)) == (ssize_t) str_len(s);

    if (fd >= 0 && close(fd) != 0)
        ok = false;
    return ok;
}

TEST(golden_rewrite_resolve)
{
    str_t  *in = str_new(0), *ref = str_new(0), *err = str_new(0), *path = str_new(0);
    struct golden g = {.settings = str_new(0), .out = str_new(4096)};

    str_printf(path, "%s/rewrite.in", golden_dir());
    if (!config_read_text(str_cstr(path), GOLDEN_MAX, in, err)) {
        fprintf(stderr, "  %s\n", str_cstr(err));
        CHECK(false);
        goto out;
    }
    for (char *line = in->data, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = 0;
        golden_line(&g, line);
    }
    str_printf(path, "%s/rewrite.ref", golden_dir());
    if (getenv("POSTERN_GOLDEN_UPDATE")) {
        CHECK(write_file(str_cstr(path), g.out));
        goto out;
    }
    if (!config_read_text(str_cstr(path), GOLDEN_MAX, ref, err)) {
        fprintf(stderr, "  %s\n", str_cstr(err));
        CHECK(false);
        goto out;
    }
    if (!str_eq_cstr(g.out, str_cstr(ref))) {
        write_file("/tmp/test_rewrite.out", g.out);
        fprintf(stderr, "  output differs from %s: diff it with /tmp/test_rewrite.out\n",
                str_cstr(path));
        CHECK(false);
    }
out:
    rewrite_ctx_free(g.ctx);
    str_free(g.settings);
    str_free(g.out);
    str_free(in);
    str_free(ref);
    str_free(err);
    str_free(path);
}

/* A table that cannot be opened stops the context, naming the parameter. */
TEST(context_errors)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {"transport_maps = nosuchtype:/x\n", "transport_maps: unsupported dictionary type: nosuchtype"},
        {"relay_domains = /nonexistent/relay_domains\n", "relay_domains: "},
        {"mydestination = !\n", "mydestination: empty entry after \"!\""},
        {"virtual_alias_domains = inline:{ a }\n", "virtual_alias_domains: "},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        config_t *cfg = config_new();
        diag_list_t diags = {0};
        str_t  *err = str_new(0);
        rewrite_ctx_t *ctx;

        config_read_string(cfg, "t", cases[i].text, strlen(cases[i].text), &diags);
        config_set(cfg, "myhostname", "mail.example.com");
        config_set(cfg, "mydomain", "example.com");
        ctx = rewrite_ctx_new(cfg, err);
        CHECK(ctx == NULL);
        if (strncmp(str_cstr(err), cases[i].expect, strlen(cases[i].expect)) != 0) {
            fprintf(stderr, "  case %zu: error \"%s\", expected \"%s...\"\n", i, str_cstr(err),
                    cases[i].expect);
            CHECK(false);
        }
        rewrite_ctx_free(ctx);
        str_free(err);
        diag_free(&diags);
        config_free(cfg);
    }
}
