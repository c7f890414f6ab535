# sluice: build, test, run. See README.md.
#   make            build build/sluice
#   make run        set up a fresh Debian 12 box (packages, private PostgreSQL, TLS cert)
#                   and serve the drain in the foreground
#   make test       the same set-up, then unit and end-to-end tests
#   make asan       unit and e2e tests under AddressSanitizer + UBSan (build-asan/)
#   make fuzz       every libFuzzer target for FUZZ_TIME seconds (clang; see the end)
#   make bench      benchmarks (figures for docs/benchmarks.md)
#   make bench-scale  search over a month of logs (100M lines, built once in var/bench-scale;
#                   docs/search.md "A month of logs (bench-scale)")
#   make format / lint

CC ?= cc
BUILD ?= build
PKGS := libevent_openssl libevent_pthreads libpq libpcre2-8 libcurl libcjson zlib openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -std=c11 -D_GNU_SOURCE -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla -Wcast-qual -Wwrite-strings -Wundef
HARDEN := -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL := $(WARN) $(HARDEN) $(OPT) $(SAN) -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS_ALL := $(PKG_LIBS) -lpthread -lm

# Every module of the server; main.c holds only the command dispatch.
DRAIN_SRC := $(filter-out drain/main.c,$(wildcard drain/*.c))
RULES_SRC := $(wildcard rules/*.c)
# The web viewer's files (drain/web/), embedded: $(BUILD)/gen/web_assets.c holds each
# file's bytes and the first 80 bits of its SHA-256 (its ETag); see include/sluice/web.h.
WEB_FILES := $(sort $(wildcard drain/web/*))
WEB_GEN := $(BUILD)/gen/web_assets.c
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(DRAIN_SRC) $(RULES_SRC)) $(BUILD)/obj/$(WEB_GEN:.c=.o)
MAIN_OBJ := $(BUILD)/obj/drain/main.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps run test unit e2e asan bench bench-quick bench-viewer format lint clean \
	container-check
all: $(BUILD)/sluice $(BUILD)/crash_parse

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(WEB_GEN): $(WEB_FILES) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated from drain/web/ by the Makefile: do not edit */'; \
	  echo '#include "sluice/web.h"'; i=0; \
	  for f in $(WEB_FILES); do echo "static const unsigned char f$$i[] = {"; \
	    od -An -v -tx1 $$f | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo "0};"; i=$$((i+1)); done; \
	  echo 'const struct sl_web_file sl_web_files[] = {'; i=0; \
	  for f in $(WEB_FILES); do echo "{\"/$$(basename $$f)\", \"$$(sha256sum $$f | cut -c1-20)\", f$$i, sizeof(f$$i) - 1},"; \
	    i=$$((i+1)); done; echo '{0, 0, 0, 0}};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/libsluice.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluice: $(MAIN_OBJ) $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) -o $@ $(MAIN_OBJ) $(BUILD)/libsluice.a $(LDLIBS_ALL)

# The crash assembler on stdin, one Sentry event per crash (the SDK oracle tests use it).
$(BUILD)/crash_parse: tests/tools/crash_parse.c $(BUILD)/libsluice.a
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libsluice.a $(LDLIBS_ALL)

# Unit tests link the archive, so each pulls in only the modules it uses.
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -o $@ $< $(BUILD)/libsluice.a \
		$(shell pkg-config --cflags --libs cmocka) $(LDLIBS_ALL)

# The PostgreSQL server module for compressed packs (drain/pg/sluice_pg.c; docs/search.md
# "Compressed packs"): built against the server's headers without sanitizers (postgres
# loads it, not sluice), and installed into the server's $libdir by `make pg-module`
# (deploy/pg-module.sh; run, test, asan and the benches do it). Without it packs stay
# arrays of rows.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PG_MODULE := build/sluice_pg.so
# It carries the search tokenizer (drain/tokens.c) for the packs' pair filters.
$(PG_MODULE): drain/pg/sluice_pg.c drain/tokens.c include/sluice/tokens.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -O2 -g -fPIC -shared -Wall -Wextra -Werror -Wno-unused-parameter -Wmissing-prototypes \
		-Iinclude -I$(shell $(PG_CONFIG) --includedir-server) -o $@ drain/pg/sluice_pg.c drain/tokens.c -lz

.PHONY: pg-module
pg-module: $(PG_MODULE)
	@PG_CONFIG=$(PG_CONFIG) deploy/pg-module.sh $(PG_MODULE)

# Installs the Debian packages sluice needs (apt-get update first, only what is missing).
deps:
	@deploy/deps.sh

run: deps
	@$(MAKE) --no-print-directory all pg-module
	@deploy/run.sh

unit: $(UNIT_BIN)
	@tests/run_unit.sh $(UNIT_BIN)

e2e: all pg-module
	@tests/run_e2e.sh

test: deps
	@$(MAKE) --no-print-directory all pg-module $(UNIT_BIN)
	@BUILD=$(BUILD) tests/run_all.sh $(UNIT_BIN)

asan: deps
	@$(MAKE) --no-print-directory pg-module
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/sluice \
		build-asan/crash_parse \
		$(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BIN))
	@BUILD=build-asan tests/run_asan.sh $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BIN))

bench: deps all pg-module
	@tests/bench/run.sh full

# The web viewer's first paint and first results in headless Chromium (docs/viewer.md).
bench-viewer: deps all pg-module
	@tests/bench/viewer.sh

bench-quick: deps all pg-module
	@tests/bench/run.sh quick

# Search at a month's scale (docs/search.md "A month of logs (bench-scale)"): SCALE_LINES,
# SCALE_DIR, SCALE_REBUILD=1 ... as tests/bench/scale_bench.sh says. Not part of `make test`.
.PHONY: bench-scale
bench-scale: deps all pg-module
	@tests/bench/scale_bench.sh

format:
	clang-format -i drain/*.c rules/*.c include/sluice/*.h tests/unit/*.c 2>/dev/null || true

lint:
	cppcheck --quiet --enable=warning,performance,portability --std=c11 -Iinclude drain rules

clean:
	rm -rf build build-asan

-include $(shell find $(sort build build-asan $(BUILD)) -type f -name '*.d' -not -path '*/bench/*' 2>/dev/null)

# libFuzzer targets: tests/fuzz/fuzz_<name>.c with seeds in tests/fuzz/seeds/<name>/,
# linked with drain/<name>.c drain/util.c unless FUZZ_SRC_<name> says otherwise. Each
# runs FUZZ_TIME seconds; new inputs go to build-fuzz/corpus/<name>/, crashes to
# build-fuzz/. `make fuzz FUZZ_TIME=600` for a longer run.
FUZZ_CC ?= clang
FUZZ_TIME ?= 30
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRC_syslog := drain/rfc5424.c drain/util.c
FUZZ_SRC_ruleset := rules/ruleset.c drain/enc.c drain/util.c drain/fields.c drain/tokens.c drain/utf8.c
FUZZ_LIBS_ruleset := -lcjson -lpcre2-8 -lcrypto
FUZZ_SRC_query := drain/query.c drain/query_sql.c drain/pcre2pg.c drain/tokens.c drain/utf8.c drain/util.c \
	rules/match.c drain/fields.c
FUZZ_SRC_fields := drain/fields.c drain/tokens.c drain/utf8.c drain/util.c
FUZZ_LIBS_query := -lpcre2-8
FUZZ_SRC_crash := drain/crash.c drain/enc.c drain/digest.c drain/utf8.c drain/util.c
FUZZ_LIBS_crash := -lcjson -lcrypto
fuzz_src = $(if $(FUZZ_SRC_$(1)),$(FUZZ_SRC_$(1)),drain/$(1).c drain/util.c)

define FUZZ_RULE
build-fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(call fuzz_src,$(1)) $(wildcard include/sluice/*.h drain/*.h)
	@mkdir -p build-fuzz
	$$(FUZZ_CC) $$(FUZZ_FLAGS) -o $$@ $$< $(call fuzz_src,$(1)) $(FUZZ_LIBS_$(1)) -lm
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call FUZZ_RULE,$(n))))

.PHONY: fuzz
# Every target runs its time even when an earlier one failed to build or crashed (CI
# wants the whole picture); a target passes when it built and ran FUZZ_TIME seconds
# without a crash. Last line: `fuzz: N passed, N failed`; exit status 1 if any failed.
fuzz: deps
	@passed=0; failed=0; bad=""; \
	for n in $(FUZZ_NAMES); do \
		mkdir -p build-fuzz/corpus/$$n; \
		echo "fuzz_$$n: $(FUZZ_TIME) s"; \
		if $(MAKE) --no-print-directory build-fuzz/fuzz_$$n && \
			(cd build-fuzz && ./fuzz_$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
				corpus/$$n ../tests/fuzz/seeds/$$n); then \
			passed=$$((passed + 1)); \
		else \
			failed=$$((failed + 1)); bad="$$bad fuzz_$$n"; \
			echo "fuzz: fuzz_$$n FAILED (crash inputs, if any, are in build-fuzz/)" >&2; \
		fi; \
	done; \
	[ -z "$$bad" ] || echo "fuzz: failed:$$bad" >&2; \
	echo "fuzz: $$passed passed, $$failed failed"; \
	[ "$$failed" -eq 0 ] && [ "$$passed" -gt 0 ]

# Builds deploy/Dockerfile with Debian's podman and runs it against a private PostgreSQL
# (minutes; not part of `make test`). Needs podman, runc, debootstrap.
container-check:
	deploy/container-check.sh
