#!/usr/bin/env bash
# Installs the trivy, govulncheck and gosec commands, at the versions slipway
# links (read from go.mod), into one directory, for the agreement test and
# the benchmark:
#
#   bench/scan/install-clis.sh [DIR]    # default $TMPDIR/slipway-scan-clis
#   SLIPWAY_SCAN_CLIS=DIR GOEXPERIMENT=jsonv2 go test ./internal/scan/trivy -run Agrees
#
# Each is built in a scratch module that starts from slipway's own go.mod,
# so the packages it shares with slipway-scan resolve to the same versions,
# and with the flags make test and the end-to-end tests build slipway with
# (-trimpath, CGO_ENABLED=0, GOEXPERIMENT=jsonv2): on a cold machine
# trivy's several thousand packages, and most of gosec's and govulncheck's,
# then compile once, not twice. Each command is its own release's code, at
# the version slipway links; only modules a command needs beyond slipway's
# are added, at the versions its go.mod names. gosec's command imports an
# AI "autofix" whose dependency github.com/pb33f/go-yaml v0.1.1 the proxy
# does not serve: that one module is replaced by go.yaml.in/yaml/v3, the
# API it forks; the scanning code is gosec's own.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-${TMPDIR:-/tmp}/slipway-scan-clis}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

version() {
  awk -v m="$1" '$1 == m { print $2; exit }' "$root/go.mod"
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

yamlv3="$(cd "$root" && go mod download -json go.yaml.in/yaml/v3@v3.0.5 | awk -F'"' '$2 == "Dir" { print $4 }')"
cp -r "$yamlv3" "$scratch/goyaml"
chmod -R u+w "$scratch/goyaml"
printf 'module github.com/pb33f/go-yaml\n\ngo 1.16\n' >"$scratch/goyaml/go.mod"

work="$scratch/build"
mkdir "$work"
sed 's#^module .*#module scratch#' "$root/go.mod" >"$work/go.mod"
printf '\nreplace github.com/pb33f/go-yaml => ../goyaml\n' >>"$work/go.mod"
cp "$root/go.sum" "$work/go.sum"

# build MODULE PACKAGE builds PACKAGE of MODULE, at go.mod's version, into
# $dir.
build() {
  echo "install-clis: $(basename "$2") $(version "$1") (slipway's module graph)" >&2
  (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOEXPERIMENT=jsonv2 go build -trimpath -o "$dir/" "$2")
}

build github.com/aquasecurity/trivy github.com/aquasecurity/trivy/cmd/trivy
build golang.org/x/vuln golang.org/x/vuln/cmd/govulncheck
build github.com/securego/gosec/v2 github.com/securego/gosec/v2/cmd/gosec

ls -l "$dir"
