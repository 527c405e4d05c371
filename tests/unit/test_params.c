/*
 * test_params.c - unit tests for params.c: the table itself, lookups,
 * per-service names, time parsing, value checking and computed defaults.
 */
#include <sys/stat.h>

#include "config.h"
#include "mem.h"
#include "params.h"
#include "str.h"
#include "unit.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

TEST(table_sorted_unique_and_complete)
{
    CHECK(param_table_size > 0);
    for (size_t i = 1; i < param_table_size; i++) {
        if (strcmp(param_table[i - 1].name, param_table[i].name) >= 0) {
            fprintf(stderr, "  table out of order or duplicate at %s, %s\n",
                    param_table[i - 1].name, param_table[i].name);
            CHECK(!"table sorted and unique");
        }
    }
    for (size_t i = 0; i < param_table_size; i++) {
        const struct param_def *d = &param_table[i];

        /* Exactly one of def and def_fn; a summary; a sensible unit. */
        CHECK((d->def == NULL) != (d->def_fn == NULL));
        CHECK(d->summary != NULL && *d->summary);
        CHECK(d->max == 0 || d->max >= d->min);
        if (d->type == PARAM_TIME)
            CHECK(strchr("smhdw", d->unit) != NULL && d->unit != 0);
        /* Constant defaults of typed parameters must pass their own checks. */
        if (d->def && d->type != PARAM_STR) {
            str_t  *why = str_new(0);
            bool    ok = param_check_value(d, d->def, NULL, why);

            if (!ok)
                fprintf(stderr, "  default of %s rejected: %s\n", d->name, str_cstr(why));
            CHECK(ok);
            str_free(why);
        }
        CHECK(param_lookup(d->name) == d);
    }
}

TEST(lookup_known_and_unknown)
{
    static const struct {
        const char *name;
        bool    found;
        enum param_type type;
    } cases[] = {
        {"alias_database", true, PARAM_STR}, {"syslog_name", true, PARAM_STR},
        {"max_idle", true, PARAM_TIME}, {"max_use", true, PARAM_INT},
        {"message_size_limit", true, PARAM_SIZE}, {"disable_vrfy_command", true, PARAM_BOOL},
        {"command_time_limit", true, PARAM_TIME}, {"default_recipient_limit", true, PARAM_INT},
        {"", false, 0}, {"max", false, 0}, {"max_idle_", false, 0}, {"MAX_IDLE", false, 0},
        {"zzz", false, 0}, {"aaa", false, 0},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        const struct param_def *d = param_lookup(cases[i].name);

        CHECK((d != NULL) == cases[i].found);
        if (d && cases[i].found)
            CHECK_INTEQ(d->type, cases[i].type);
    }
}

TEST(per_service_names)
{
    static const char *const services[] = {"smtp", "relay", "local", "smtp_destination", NULL};
    static const struct {
        const char *name;
        const char *generic;        /* NULL: not a per-service name */
    } cases[] = {
        {"smtp_destination_concurrency_limit", "default_destination_concurrency_limit"},
        {"relay_destination_recipient_limit", "default_destination_recipient_limit"},
        {"local_initial_destination_concurrency", "initial_destination_concurrency"},
        {"smtp_destination_rate_delay", "default_destination_rate_delay"},
        {"local_recipient_limit", "default_recipient_limit"},
        {"relay_extra_recipient_limit", "default_extra_recipient_limit"},
        {"local_time_limit", "command_time_limit"},
        /* "smtp_destination" is also a service: the longer suffix wins. */
        {"smtp_destination_recipient_limit", "default_destination_recipient_limit"},
        {"pipe_time_limit", NULL},          /* not a service here */
        {"smtp_time_limits", NULL},
        {"smtp_", NULL},
        {"_time_limit", NULL},
        {"time_limit", NULL},
        {"smtp_bogus_limit", NULL},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        const struct param_def *d = param_lookup_service(cases[i].name, services);

        if (cases[i].generic == NULL) {
            CHECK(d == NULL);
        } else {
            CHECK(d != NULL);
            if (d)
                CHECK_STREQ(d->name, cases[i].generic);
        }
    }
    CHECK(param_lookup_service("smtp_time_limit", NULL) == NULL);
    /* Every generic parameter the suffixes point to exists in the table. */
    CHECK(param_lookup("initial_destination_concurrency") != NULL);
    CHECK(param_lookup("default_destination_rate_delay") != NULL);
    CHECK(param_lookup("default_extra_recipient_limit") != NULL);
}

TEST(parse_time_values)
{
    static const struct {
        const char *in;
        char    unit;
        bool    ok;
        long    secs;
    } cases[] = {
        {"100s", 's', true, 100}, {"100", 's', true, 100}, {"0", 's', true, 0},
        {"5m", 's', true, 300}, {"5M", 's', true, 300}, {"2h", 's', true, 7200},
        {"1d", 's', true, 86400}, {"1D", 's', true, 86400}, {"2w", 's', true, 1209600},
        {"3", 'd', true, 3 * 86400}, {"3", 'h', true, 3 * 3600}, {"3s", 'd', true, 3},
        {"7", 0, true, 7}, {"007", 's', true, 7},
        {"banana", 's', false, 0}, {"10x", 's', false, 0}, {"", 's', false, 0},
        {"-5", 's', false, 0}, {"+5", 's', false, 0}, {" 5", 's', false, 0}, {"5 ", 's', false, 0},
        {"5 s", 's', false, 0}, {"5ss", 's', false, 0}, {"s", 's', false, 0}, {"1.5h", 's', false, 0},
        {"99999999999999999999", 's', false, 0}, {"9223372036854775807", 's', true, 9223372036854775807L},
        {"9223372036854775807m", 's', false, 0}, {"100000000000000000w", 's', false, 0},
        {"5", 'x', false, 0},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        long    secs = -1;
        bool    ok = param_parse_time(cases[i].in, cases[i].unit, &secs);

        if (ok != cases[i].ok)
            fprintf(stderr, "  case %zu \"%s\"\n", i, cases[i].in);
        CHECK(ok == cases[i].ok);
        if (ok && cases[i].ok)
            CHECK_INTEQ(secs, cases[i].secs);
    }
}

TEST(check_values)
{
    static const struct {
        const char *name;
        const char *value;
        bool    ok;
        long    num;
        const char *why;            /* exact explanation when !ok */
    } cases[] = {
        {"max_idle", "100s", true, 100, NULL},
        {"max_idle", "2m", true, 120, NULL},
        {"max_idle", "banana", false, 0, "bad time value \"banana\" for parameter max_idle"},
        {"max_idle", "10x", false, 0, "bad time value \"10x\" for parameter max_idle"},
        {"max_idle", "", false, 0, "bad time value \"\" for parameter max_idle"},
        {"max_idle", "-1", false, 0, "bad time value \"-1\" for parameter max_idle"},
        {"max_idle", "0", false, 0, "value 0s for parameter max_idle is below the minimum 1s"},
        {"maximal_queue_lifetime", "0", true, 0, NULL},
        {"maximal_queue_lifetime", "3", true, 3 * 86400, NULL},
        {"delay_warning_time", "4", true, 4 * 3600, NULL},
        {"default_destination_rate_delay", "0", true, 0, NULL},
        {"max_use", "7", true, 7, NULL},
        {"max_use", "0", false, 0, "value 0 for parameter max_use is below the minimum 1"},
        {"max_use", "-3", false, 0, "value -3 for parameter max_use is below the minimum 1"},
        {"max_use", "12abc", false, 0, "bad numerical value \"12abc\" for parameter max_use"},
        {"max_use", "+5", false, 0, "bad numerical value \"+5\" for parameter max_use"},
        {"max_use", "", false, 0, "bad numerical value \"\" for parameter max_use"},
        {"max_use", "99999999999999999999", false, 0,
         "bad numerical value \"99999999999999999999\" for parameter max_use"},
        {"line_length_limit", "80", true, 80, NULL},
        {"line_length_limit", "79", false, 0,
         "value 79 for parameter line_length_limit is below the minimum 80"},
        {"message_size_limit", "0", true, 0, NULL},
        {"message_size_limit", "-1", false, 0,
         "value -1 for parameter message_size_limit is below the minimum 0"},
        {"header_size_limit", "1048576", true, 1048576, NULL},
        {"disable_vrfy_command", "yes", true, 1, NULL},
        {"disable_vrfy_command", "NO", true, 0, NULL},
        {"disable_vrfy_command", "maybe", false, 0,
         "bad boolean value \"maybe\" for parameter disable_vrfy_command: need yes or no"},
        {"myorigin", "anything at all $x", true, -1, NULL},
    };
    str_t  *why = str_new(0);

    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        const struct param_def *d = param_lookup(cases[i].name);
        long    num = -1;
        bool    ok;

        CHECK(d != NULL);
        if (d == NULL)
            continue;
        str_reset(why);
        ok = param_check_value(d, cases[i].value, &num, why);
        CHECK(ok == cases[i].ok);
        if (ok && cases[i].ok)
            CHECK_INTEQ(num, cases[i].num);
        if (!ok && !cases[i].ok)
            CHECK_STREQ(str_cstr(why), cases[i].why);
        /* why may be NULL. */
        CHECK(param_check_value(d, cases[i].value, NULL, NULL) == cases[i].ok);
    }
    /* An upper bound is reported too. */
    struct param_def bounded = {.name = "test_bounded", .type = PARAM_INT, .def = "1", .min = 1, .max = 10};

    CHECK(!param_check_value(&bounded, "11", NULL, why));
    CHECK_STREQ(str_cstr(why), "value 11 for parameter test_bounded is above the maximum 10");
    CHECK(param_check_value(&bounded, "10", NULL, why));
    str_free(why);
}

TEST(constant_and_computed_defaults)
{
    config_t *cfg = config_new();
    const char *host = param_default(param_lookup("myhostname"), cfg);
    const char *ddir = param_default(param_lookup("daemon_directory"), cfg);
    const char *cdir = param_default(param_lookup("command_directory"), cfg);
    struct stat sb;

    CHECK_STREQ(param_default(param_lookup("mail_name"), cfg), "Postern");
    CHECK_STREQ(param_default(param_lookup("mydestination"), NULL),
                "$myhostname, localhost.$mydomain, localhost");
    CHECK(host != NULL && strchr(host, '.') != NULL);
    /* Calling a def_fn again returns the same interned copy. */
    CHECK(param_default(param_lookup("myhostname"), cfg) == host);
    /* daemon_directory: next to the executable if that exists, else the installed path. */
    CHECK(strcmp(ddir, POSTERN_PREFIX "/libexec/postern") == 0
          || (strlen(ddir) > 16 && strcmp(ddir + strlen(ddir) - 16, "/libexec/postern") == 0
              && stat(ddir, &sb) == 0 && S_ISDIR(sb.st_mode)));
    /* The test binary has no "postern" beside it: the installed path. */
    CHECK_STREQ(cdir, POSTERN_PREFIX "/sbin");
    config_free(cfg);
}

TEST(mydomain_follows_myhostname)
{
    static const struct {
        const char *host;
        const char *domain;
    } cases[] = {
        {"mail.example.com", "example.com"}, {"a.b", "b"}, {"host", "localdomain"},
        {"host.", "localdomain"}, {"", "localdomain"}, {"x.y.z.example", "y.z.example"},
    };
    for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
        config_t *cfg = config_new();

        config_set(cfg, "myhostname", cases[i].host);
        CHECK_STREQ(param_default(param_lookup("mydomain"), cfg), cases[i].domain);
        CHECK_STREQ(config_str(cfg, "mydomain"), cases[i].domain);
        config_free(cfg);
    }
}
