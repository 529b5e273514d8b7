#!/usr/bin/env bash
# Installs the trivy, govulncheck and gosec commands, at the versions slipway
# links (read from go.mod), into one directory, for the agreement test and
# the benchmark:
#
#   bench/scan/install-clis.sh [DIR]    # default $TMPDIR/slipway-scan-clis
#   SLIPWAY_SCAN_CLIS=DIR GOEXPERIMENT=jsonv2 go test ./internal/scan/trivy -run Agrees
#
# trivy is built in a scratch module that starts from slipway's own go.mod,
# so the trivy packages it shares with slipway-scan resolve to the same
# versions, and with the flags make test and the end-to-end tests build
# slipway-scan with (-trimpath, CGO_ENABLED=0, GOEXPERIMENT=jsonv2): on a
# cold machine trivy's several thousand packages then compile once, not
# twice. The command is trivy's, at the version slipway links; only
# modules trivy needs beyond slipway's are added, at the versions trivy's
# go.mod names.
#
# govulncheck and gosec are each built in a scratch module that requires
# only it, so they get the dependencies their own go.mod names (as go install cmd@version would; that
# needs the proxy's version list, which is not always served). gosec's
# command imports an AI "autofix" whose dependency github.com/pb33f/go-yaml
# v0.1.1 the proxy does not serve: in its scratch module that one module is
# replaced by go.yaml.in/yaml/v3, the API it forks; the scanning code is
# gosec's own.
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

# build MODULE PACKAGE [GOEXPERIMENT] builds PACKAGE of MODULE at go.mod's
# version into $dir.
build() {
  local mod="$1" pkg="$2" exp="${3:-}" work
  work="$(mktemp -d "$scratch/build.XXXXXX")"
  printf 'module scratch\n\ngo 1.26\n\nrequire %s %s\n' "$mod" "$(version "$mod")" >"$work/go.mod"
  echo "install-clis: $(basename "$pkg") $(version "$mod")" >&2
  (cd "$work" && GOFLAGS=-mod=mod GOEXPERIMENT="$exp" go build -o "$dir/" "$pkg")
}

build golang.org/x/vuln golang.org/x/vuln/cmd/govulncheck

echo "install-clis: trivy $(version github.com/aquasecurity/trivy) (slipway's module graph)" >&2
trivy_work="$(mktemp -d "$scratch/trivy.XXXXXX")"
sed 's#^module .*#module scratch#' "$root/go.mod" >"$trivy_work/go.mod"
cp "$root/go.sum" "$trivy_work/go.sum"
(cd "$trivy_work" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOEXPERIMENT=jsonv2 go build -trimpath -o "$dir/" github.com/aquasecurity/trivy/cmd/trivy)

gosec="$(version github.com/securego/gosec/v2)"
echo "install-clis: gosec $gosec" >&2
yamlv3="$(cd "$root" && go mod download -json go.yaml.in/yaml/v3@v3.0.5 | awk -F'"' '$2 == "Dir" { print $4 }')"
cp -r "$yamlv3" "$scratch/goyaml"
chmod -R u+w "$scratch/goyaml"
printf 'module github.com/pb33f/go-yaml\n\ngo 1.16\n' >"$scratch/goyaml/go.mod"
cat >"$scratch/go.mod" <<MOD
module gosecbuild

go 1.26

require github.com/securego/gosec/v2 $gosec

replace github.com/pb33f/go-yaml => ./goyaml
MOD
(cd "$scratch" && GOFLAGS=-mod=mod GOBIN="$dir" go install github.com/securego/gosec/v2/cmd/gosec)

ls -l "$dir"
