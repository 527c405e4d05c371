# Postern — top-level, non-recursive Makefile.
#
# Layout it discovers by itself (add files, not rules):
#   src/lib/*.c            -> $(BUILD)/lib/libpostern.a
#   src/cmd/NAME/*.c       -> $(BUILD)/bin/NAME          (user and admin commands)
#   src/NAME/*.c           -> $(BUILD)/libexec/postern/NAME   (daemons, incl. master)
#   tests/unit/test_X.c    -> $(BUILD)/tests/test_X      (unit tests, linked with the library)
#   tests/fuzz/fuzz_X.c    -> $(BUILD)/fuzz/fuzz_X       (libFuzzer harnesses, clang only)
#
# make            build everything into build/
# make SAN=1      the same with AddressSanitizer + UBSan, into build-san/
# make test       install missing packages, build, run unit + e2e tests + fuzz corpora
# make run        install missing packages, build, start a demo instance in ./run/
# make fuzz       run every fuzz harness for FUZZ_SECONDS (default 60) each
# make install    PREFIX=/usr/local DESTDIR=

CC       ?= cc
FUZZ_CC  ?= clang
PREFIX   ?= /usr/local
DESTDIR  ?=
FUZZ_SECONDS ?= 60

ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD    ?= build
SANFLAGS :=
endif

OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter
CPPFLAGS += -Isrc/lib -D_GNU_SOURCE \
            -DPOSTERN_PREFIX='"$(PREFIX)"'
ALL_CFLAGS = -std=c17 $(WARN) $(OPT) $(SANFLAGS) $(CFLAGS) -MMD -MP
LDLIBS   += -llmdb -lpcre2-8 -lm

.DEFAULT_GOAL := all

LIB_SRC  := $(wildcard src/lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_A    := $(BUILD)/lib/libpostern.a

CMD_DIRS    := $(sort $(dir $(wildcard src/cmd/*/*.c)))
CMD_NAMES   := $(notdir $(patsubst %/,%,$(CMD_DIRS)))
DAEMON_DIRS := $(filter-out src/lib/ src/cmd/,$(sort $(dir $(wildcard src/*/*.c))))
DAEMON_NAMES:= $(notdir $(patsubst %/,%,$(DAEMON_DIRS)))

CMD_BINS    := $(CMD_NAMES:%=$(BUILD)/bin/%)
DAEMON_BINS := $(DAEMON_NAMES:%=$(BUILD)/libexec/postern/%)
# Multi-call names: mailq and newaliases are the sendmail binary (as in Postfix).
ALIAS_LINKS := $(if $(filter sendmail,$(CMD_NAMES)),$(BUILD)/bin/mailq $(BUILD)/bin/newaliases)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS:= $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS:= $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps test run fuzz fuzz-build install clean bench unit e2e docs
all: $(CMD_BINS) $(DAEMON_BINS) $(ALIAS_LINKS) $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define program_template
$(1): $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(wildcard $(2)*.c)) $$(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach n,$(CMD_NAMES),$(eval $(call program_template,$(BUILD)/bin/$(n),src/cmd/$(n)/)))
$(foreach n,$(DAEMON_NAMES),$(eval $(call program_template,$(BUILD)/libexec/postern/$(n),src/$(n)/)))

$(BUILD)/bin/mailq $(BUILD)/bin/newaliases: $(BUILD)/bin/sendmail
	ln -sf sendmail $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz harnesses always build with clang's libFuzzer plus ASan/UBSan, from the
# library sources directly (so they do not depend on how $(BUILD) was built).
# The library is compiled once for all harnesses (instrumented, not linked
# with libFuzzer's main), each harness then links against that archive.
FUZZ_BASE  := -std=c17 -g -O1 -fno-sanitize-recover=undefined \
              -Isrc/lib -D_GNU_SOURCE -DPOSTERN_PREFIX='"$(PREFIX)"'
FUZZ_FLAGS := $(FUZZ_BASE) -fsanitize=fuzzer,address,undefined
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
FUZZ_LIB_A   := $(BUILD)/fuzzobj/libpostern-fuzz.a
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_BASE) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c -o $@ $<
$(FUZZ_LIB_A): $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB_A)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB_A) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

deps:
	@sh scripts/install-deps.sh

unit: all
	@BUILD=$(BUILD) sh tests/run-unit.sh

test: deps
	$(MAKE) $(if $(findstring j,$(MAKEFLAGS)),,-j2) all fuzz-build
	@BUILD=$(abspath $(BUILD)) sh tests/run-all.sh

fuzz: deps
	$(MAKE) fuzz-build
	@for f in $(FUZZ_BINS); do \
	    n=$${f##*/}; c=tests/fuzz/corpus/$${n#fuzz_}; mkdir -p $$c; \
	    echo "== $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -artifact_prefix=$(BUILD)/fuzz/$$n- $$c tests/fuzz/seeds/$${n#fuzz_} || exit 1; \
	done

run: deps
	$(MAKE) all
	@sh scripts/run-demo.sh $(BUILD)

bench: deps
	$(MAKE) all
	@sh bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/postern $(DESTDIR)$(PREFIX)/share/man/man1 \
	           $(DESTDIR)$(PREFIX)/share/doc/postern
	for b in $(CMD_BINS); do install -m 0755 $$b $(DESTDIR)$(PREFIX)/sbin/; done
	for b in $(DAEMON_BINS); do install -m 0755 $$b $(DESTDIR)$(PREFIX)/libexec/postern/; done
	if [ -f $(BUILD)/bin/sendmail ]; then \
	    ln -sf sendmail $(DESTDIR)$(PREFIX)/sbin/mailq; ln -sf sendmail $(DESTDIR)$(PREFIX)/sbin/newaliases; fi
	# postdrop is setgid postdrop (never setuid); the group exists once "postern init" ran as root.
	if [ -f $(DESTDIR)$(PREFIX)/sbin/postdrop ]; then \
	    if getent group postdrop >/dev/null; then chgrp postdrop $(DESTDIR)$(PREFIX)/sbin/postdrop; \
	    else echo "install: group postdrop missing: run 'chgrp postdrop $(PREFIX)/sbin/postdrop' after creating it"; fi; \
	    chmod 2755 $(DESTDIR)$(PREFIX)/sbin/postdrop; fi
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/postern/
	if ls man/*.1 >/dev/null 2>&1; then install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi

# docs/parameters.md is generated from the parameter table (a test checks it).
docs: all
	$(BUILD)/bin/postern conf --markdown > docs/parameters.md

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)
.SECONDARY:
