# The README's two commands: `go run ./examples/quickstart` and `make test`.
# `make test` brings up what the tests need (scripts/deps.sh), then tests every
# Go module of the repository with the race detector.

SHELL := /bin/bash
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 30s
BENCHTIME ?= 1s

.PHONY: test deps lint bench fuzz loadtest

test: deps
	@scripts/each-module.sh go test -race -count=1 ./...

deps:
	@scripts/deps.sh

lint:
	@scripts/lint.sh $(STATICCHECK)

bench:
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) .

# Each fuzz target of the root package for FUZZTIME.
fuzz:
	@set -e; for f in $$(go test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== $$f ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) . ; \
	done

loadtest:
	@bench/load.sh
