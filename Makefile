# Slipway's two commands: `make demo` runs the pipeline on the sample app,
# `make test` installs what the tests need and runs them all.
GO       ?= go
# Where go install (and make test-deps) put the test tools: GOBIN, or else
# the bin of GOPATH's first entry.
GOPATH1  := $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))
TOOLBIN  := $(or $(shell $(GO) env GOBIN),$(GOPATH1)/bin)
export PATH := $(TOOLBIN):$(PATH)

.PHONY: all build demo test test-deps vet unit clean bench transcripts

all: build

# slipway-scan links trivy, which needs GOEXPERIMENT=jsonv2. Only that
# binary and the scan packages get it: the experiment changes encoding/json
# for everything it touches, and the other steps should not carry that.
JSONV2 := GOEXPERIMENT=jsonv2
# Where make test-deps puts the scanners' CLIs for the agreement test.
export SLIPWAY_SCAN_CLIS ?= $(GOPATH1)/slipway-scan-clis

## build: compile every slipway binary into bin/
# As slipway build and the release build them: -trimpath, static. The
# end-to-end tests build with the same flags, so make demo under TestDemo
# finds every package compiled.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ $(filter-out %/slipway-scan,$(shell $(GO) list ./cmd/...))
	CGO_ENABLED=0 $(JSONV2) $(GO) build -trimpath -o bin/ ./cmd/slipway-scan

## demo: build the sample app (testdata/apps/hello) for three platforms
demo: build
	@scripts/demo.sh

# Every compile of make test uses the flags of the end-to-end tests' own
# builds of slipway, of the actions' source installs and of the trivy CLI
# (bench/scan/install-clis.sh): -trimpath, CGO_ENABLED=0. The build cache
# keys then match, and on a cold machine trivy and its dependencies
# compile once instead of three times.
TESTENV   := CGO_ENABLED=0
TESTFLAGS := -trimpath

## test: install test tools if missing, then vet and run every test, end to end included
# The end-to-end tests run in parallel, as many at once as the machine has
# CPUs; each has a deadline of its own (internal/e2e/deadline_test.go), so a
# hang fails that test; the package's -timeout is only the backstop, with
# room for a cold build cache on a busy machine.
test: test-deps
	$(TESTENV) $(GO) vet $(TESTFLAGS) ./...
	$(TESTENV) $(JSONV2) $(GO) vet $(TESTFLAGS) ./internal/scan/... ./cmd/slipway-scan
	SLIPWAY_E2E=1 $(TESTENV) $(GO) test $(TESTFLAGS) -timeout 75m ./...
	SLIPWAY_E2E=1 $(TESTENV) $(JSONV2) $(GO) test $(TESTFLAGS) -timeout 20m ./internal/scan/...

## test-deps: apt docker-registry runc umoci skopeo rsync, npm gitlab-ci-local, go install act, kustomize, cosign, fulcio, timestamp-server and rekor-tiles, the scanner CLIs
test-deps:
	@scripts/install-test-deps.sh

## unit: the fast tests only (end-to-end tests skip themselves)
unit:
	$(GO) test -short ./...

## transcripts: rewrite cmd/slipway/testdata/transcripts (every step's --help and bad inputs) after an intended change to a message, flag or exit code; review the diff
transcripts:
	$(GO) test ./cmd/slipway -run TestTranscripts -update

clean:
	rm -rf bin dist

## bench: install the pinned peers (ko, crane, the scanners' CLIs) and measure every step against them into bench/RESULTS.md; BENCH_ROUNDS=N (default 5); not part of make test
bench:
	$(GO) run ./bench/cmd/bench $(if $(BENCH_ROUNDS),-rounds $(BENCH_ROUNDS)) $(if $(BENCH_COLD_ROUNDS),-cold-rounds $(BENCH_COLD_ROUNDS))
