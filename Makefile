# The README's two commands: `go run ./examples/quickstart` and `make test`.
# `make test` brings up what the tests need (scripts/deps.sh), then tests every
# Go module of the repository with the race detector.

SHELL := /bin/bash
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 30s
BENCHTIME ?= 1s
# The version `make release-check` publishes the modules at.
VERSION ?= v1.0.0-rc.0

.PHONY: test deps lint release-check bench bench-compare fuzz loadtest soak peers proxy-image

test: deps
	@scripts/each-module.sh go test -race -count=1 ./...

deps:
	@scripts/deps.sh

lint:
	@scripts/lint.sh $(STATICCHECK)

# Publishes the library modules of the working tree at VERSION into a module
# proxy in a temporary directory, then builds a new consumer of each with plain
# `go get` and no replace (RELEASING.md).
release-check:
	@scripts/release-check.sh "$(VERSION)"

bench:
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) .

# The micro-benchmarks of the working tree against those of REF (default
# HEAD), COUNT rounds each, as a benchstat table: REF=main~1 BENCH=BenchmarkMiddleware.
REF ?= HEAD
BENCH ?= BenchmarkMiddleware
COUNT ?= 10
bench-compare:
	@BENCHTIME=$(BENCHTIME) scripts/bench-compare.sh "$(REF)" "$(BENCH)" "$(COUNT)"

# Each fuzz target of the root package for FUZZTIME.
fuzz:
	@set -e; for f in $$(go test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== $$f ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) . ; \
	done

loadtest:
	@bench/load.sh

# 10 minutes at a steady rate against an AS failing 5 % of calls (DURATION=30s for a short check).
soak:
	@bench/soak.sh

# In-process comparison with zitadel-go and Ory Oathkeeper. Its own module pulls in
# several hundred modules, so `make test` and `make lint` leave it out.
peers:
	cd bench/peers && go test -race -count=1 ./... && go test -run '^$$' -bench . -benchmem -count 6 .

# The introspect-proxy image (cmd/introspect-proxy/Dockerfile), where docker
# works; elsewhere it says so and builds nothing. Not part of `make test`.
PROXY_IMAGE ?= introspect-proxy:dev
proxy-image:
	@if docker info >/dev/null 2>&1; then \
		docker build -f cmd/introspect-proxy/Dockerfile -t $(PROXY_IMAGE) . ; \
	else \
		echo "proxy-image: docker is not available here (docker info fails): no image built"; \
	fi
