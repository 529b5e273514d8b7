# Slipway's two commands: `make demo` runs the pipeline on the sample app,
# `make test` installs what the tests need and runs them all.
GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

.PHONY: all build demo test test-deps vet unit clean

all: build

## build: compile every slipway binary into bin/
build:
	$(GO) build -o bin/ ./cmd/...

## demo: build the sample app (testdata/apps/hello) for three platforms
demo: build
	@scripts/demo.sh

## test: install test tools if missing, then vet and run every test, end to end included
test: test-deps
	$(GO) vet ./...
	SLIPWAY_E2E=1 $(GO) test -timeout 45m ./...

## test-deps: apt docker-registry runc umoci skopeo rsync, npm gitlab-ci-local, go install act
test-deps:
	@scripts/install-test-deps.sh

## unit: the fast tests only (end-to-end tests skip themselves)
unit:
	$(GO) test -short ./...

clean:
	rm -rf bin dist
