# The README's two commands are `make run` and `make test`; everything else is a helper.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

DATA := .data
PG := .ci/pgcluster
REDIS := .ci/rediscluster
PGB := .ci/pgbouncer
BIN := $(DATA)/people
GO ?= go
export GOFLAGS ?= -buildvcs=false

# The server builds with .ci/gqlgen.patch laid over gqlgen: a workspace made under $(DATA) by
# .ci/gqlgen-patch, named with GOWORK by the targets that build it (README, "gqlgen, patched").
GQLGEN_WORK = $(abspath $(DATA))/gqlgen/go.work
WITH_PATCH = GOWORK=$(GQLGEN_WORK)

# The development database: DATABASE_URL when set, else the private cluster under .data/pg.
DEV_DB = $${DATABASE_URL:-$$($(PG) start $(DATA)/pg)}

.PHONY: run build stop demo migrate gen test stress check bench bench-import clean-data token chromium

build: $(GQLGEN_WORK)
	$(WITH_PATCH) $(GO) build -o $(BIN) .

$(GQLGEN_WORK): .ci/gqlgen.patch .ci/gqlgen-patch go.mod go.sum
	@bash .ci/gqlgen-patch $(DATA)/gqlgen

## run: start PostgreSQL (unless DATABASE_URL is set), migrate, load demo data once, serve on
##      127.0.0.1:8071 with the development OpenID provider at /dev-oidc (loopback only: see README)
run: build
	@url=$(DEV_DB); export DATABASE_URL="$$url" ENVIRONMENT="$${ENVIRONMENT:-development}" \
		LISTEN_ADDR="$${LISTEN_ADDR:-127.0.0.1:8071}"; \
	$(BIN) demo --once && exec $(BIN) serve

## token: print an access token that partner service SP (docs, meet) holds for the user whose
##        email is USER, from the development provider of a running make run
token:
	@if [ "$(origin USER)" != "command line" ] || [ -z "$(SP)" ]; then \
		echo "usage: make token USER=<email> SP=<client id>, e.g. USER=e2e.team-owner@example.com SP=docs" >&2; exit 2; fi
	@curl -sS --fail-with-body --data-urlencode "user=$(USER)" --data-urlencode "client_id=$(SP)" \
		"$${PUBLIC_URL:-http://localhost:8071}/dev-oidc/dev/token"

## stop: stop the private PostgreSQL cluster of make run
stop:
	@$(PG) stop $(DATA)/pg

## demo: reload the demo data (deterministic, idempotent)
demo: build
	@url=$(DEV_DB); DATABASE_URL="$$url" $(BIN) demo

## migrate: apply pending migrations
migrate: build
	@url=$(DEV_DB); DATABASE_URL="$$url" $(BIN) migrate

## gen: regenerate the GraphQL code from schema.graphqls and gqlgen.yml
gen:
	$(GO) tool gqlgen generate

## check: generated code, go.mod, formatting and vet are clean; .ci/gqlgen.patch applies to the
##        gqlgen go.sum records, and gqlgen's own tests pass with it
check:
	@cp -r graph $(DATA)/graph.before 2>/dev/null || { mkdir -p $(DATA) && cp -r graph $(DATA)/graph.before; }
	$(GO) tool gqlgen generate
	@if ! diff -r $(DATA)/graph.before graph >/dev/null; then \
		diff -ru $(DATA)/graph.before graph | head -40; rm -rf $(DATA)/graph.before; \
		echo "check: 'go tool gqlgen generate' changed graph/: run make gen and commit the result" >&2; exit 1; fi
	@rm -rf $(DATA)/graph.before
	$(GO) mod tidy -diff || { echo "check: go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './$(DATA)/*')); if [ -n "$$out" ]; then \
		echo "check: gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	bash .ci/gqlgen-patch --check

## chromium: install Debian's Chromium for the browser test (browser_test.go) when missing;
##           only root can, so anyone else is told which package to install
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || { \
		echo "make test: the browser test needs Debian's package chromium: install it as root (apt-get install chromium)" >&2; exit 1; }

## test: the whole suite against a throw-away PostgreSQL cluster, PgBouncer in transaction mode
##       in front of it (DATABASE_POOLER's tests) and a Redis server, plus make check
test: chromium check $(GQLGEN_WORK)
	@.ci/with-services env $(WITH_PATCH) $(GO) test -race -count=1 -timeout 20m $(TESTFLAGS) ./...

## stress: what races most, twenty times over under the race detector: the store, auth and the
##         webhook sender (flaky tests are defects: this is how they are found)
stress: $(GQLGEN_WORK)
	@.ci/with-services env $(WITH_PATCH) $(GO) test -race -count=20 -timeout 60m ./store/... ./auth/... ./webhook/...
	@.ci/with-services env $(WITH_PATCH) $(GO) test -race -count=20 -timeout 60m -run 'Webhook' .

## bench: the benchmark of the README (bench/): the big demo data set in a throw-away PostgreSQL
##        cluster, the real server against the floor, W1–W4 at 16 and 64 connections, directly,
##        behind PgBouncer in transaction mode (BENCH_POOLER=none: not) and with its rate limits
##        on in Redis (BENCH_REDIS=none: not); prints the
##        table. BENCHFLAGS passes flags to go run ./bench (-profile, -v, -duration 20s...)
bench: $(GQLGEN_WORK)
	@dir=$$(mktemp -d /tmp/people-bench.XXXXXX); chmod 755 $$dir; \
	trap '$(REDIS) destroy $$dir/redis >/dev/null 2>&1 || true; $(PGB) destroy $$dir/pgbouncer >/dev/null 2>&1 || true; $(PG) destroy $$dir/pg >/dev/null 2>&1 || true; rm -rf $$dir' EXIT; \
	url=$$($(PG) start $$dir/pg --ephemeral); \
	pooler=; if [ "$${BENCH_POOLER:-transaction}" != none ]; then pooler=$$($(PGB) start $$dir/pgbouncer "$$url"); fi; \
	redis=; if [ "$${BENCH_REDIS:-on}" != none ]; then redis=$$($(REDIS) start $$dir/redis); fi; \
	$(WITH_PATCH) $(GO) run ./bench -database-url "$$url" -pgcluster $$dir/pg -pooler-url "$$pooler" -redis-url "$$redis" -work $$dir/work $(BENCHFLAGS)

## bench-import: people import-people's benchmark (bench/importbench): a generated People database of
##        100,000 users, 20,000 teams, 300,000 accesses and 200,000 contacts in a throw-away
##        PostgreSQL cluster, imported into a migrated one; prints the time (target: under 2 minutes)
bench-import:
	@dir=$$(mktemp -d /tmp/people-bench-import.XXXXXX); chmod 755 $$dir; \
	trap '$(PG) destroy $$dir/pg >/dev/null 2>&1 || true; rm -rf $$dir' EXIT; \
	url=$${BENCH_DATABASE_URL:-$$($(PG) start $$dir/pg --ephemeral)}; \
	$(GO) run ./bench/importbench -database-url "$$url" $(BENCHFLAGS)

clean-data: stop
	rm -rf $(DATA)
