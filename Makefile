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

# slipway-scan links trivy, whose Go API needs GOEXPERIMENT=jsonv2. Every
# command is built with it, as the release, the Dockerfile and the actions'
# source installs build them: one build of the dependencies serves all.
JSONV2 := GOEXPERIMENT=jsonv2
# Where make test-deps puts the scanners' CLIs for the agreement test.
export SLIPWAY_SCAN_CLIS ?= $(GOPATH1)/slipway-scan-clis

## build: compile every slipway binary into bin/
# As slipway build and the release build them: -trimpath, static. The
# end-to-end tests build with the same flags, so make demo under TestDemo
# finds every package compiled.
build:
	CGO_ENABLED=0 $(JSONV2) $(GO) build -trimpath -o bin/ ./cmd/...

## demo: build the sample app (testdata/apps/hello) for three platforms
demo: build
	@scripts/demo.sh

# Every compile of make test uses the flags of what ships and of the
# end-to-end tests' own builds of slipway, the actions' source installs and
# the trivy CLI (bench/scan/install-clis.sh): -trimpath, CGO_ENABLED=0,
# GOEXPERIMENT=jsonv2. The build cache keys then match, and on a cold
# machine the dependencies, trivy's included, compile once rather than once
# per set of flags. (The experiment changes the build ID of every package,
# the standard library's too.)
TESTENV   := CGO_ENABLED=0 $(JSONV2)
TESTFLAGS := -trimpath

## test: install test tools if missing, then vet and run every test, end to end included
# The end-to-end tests run in parallel, as many at once as the machine has
# CPUs; each has a deadline of its own (internal/e2e/deadline_test.go), so a
# hang fails that test; the package's -timeout is only the backstop, with
# room for a cold build cache on a busy machine. go vet runs every analyzer,
# a superset of those go test runs, over the same packages and test files:
# go test -vet=off does not repeat that pass over the whole dependency tree.
# Without the experiment, trivy's adapter compiles to a stub that says so
# (internal/scan/trivy/stub.go); make unit tests that build.
test: test-deps
	$(TESTENV) $(GO) vet $(TESTFLAGS) ./...
	SLIPWAY_E2E=1 $(TESTENV) $(GO) test $(TESTFLAGS) -vet=off -timeout 75m ./...

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
