#!/usr/bin/env bash
# Installs what the end-to-end tests need, only where it is missing, so a
# fresh machine (and CI) gets the same tools a developer has.
set -euo pipefail

ACT_VERSION=v0.2.89
KUSTOMIZE_VERSION=v5.7.1
GITLAB_CI_LOCAL_VERSION=4.60.1
# Sigstore: the cosign CLI that must verify what slipway signs, and the
# services internal/sigstoretest runs locally (Fulcio, the timestamp
# authority, Rekor v2). Each takes minutes to compile on a cold cache.
COSIGN_VERSION=v3.1.3
FULCIO_VERSION=v1.8.5
TSA_VERSION=v2.1.3
REKOR_TILES_VERSION=v2.3.0

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

need_apt=()
for pair in docker-registry:docker-registry runc:runc umoci:umoci skopeo:skopeo rsync:rsync git:git; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts the registry as a service on :5000; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then
    $sudo_cmd systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

if ! command -v act >/dev/null 2>&1 || ! act --version 2>/dev/null | grep -q "${ACT_VERSION#v}"; then
  echo "install-test-deps: go install github.com/nektos/act@${ACT_VERSION}"
  go install "github.com/nektos/act@${ACT_VERSION}"
fi

if ! command -v kustomize >/dev/null 2>&1 || ! kustomize version 2>/dev/null | grep -q "${KUSTOMIZE_VERSION}"; then
  echo "install-test-deps: go install sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
  go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"
fi

if ! command -v gitlab-ci-local >/dev/null 2>&1 || [ "$(gitlab-ci-local --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
  echo "install-test-deps: npm install -g gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}"
  npm install -g --no-audit --no-fund "gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}" >/dev/null
fi

# go_install_pinned BIN PACKAGE VERSION [NAME] installs PACKAGE@VERSION
# as GOBIN/NAME (default BIN) unless the binary there was built from that
# module version, as `go version -m` reads it.
go_install_pinned() {
  local bin=$1 pkg=$2 version=$3 name=${4:-$1}
  if [ -x "$gobin/$name" ] && go version -m "$gobin/$name" 2>/dev/null | grep -qE "^\s+mod\s.*\s${version}(\s|$)"; then
    return
  fi
  echo "install-test-deps: go install ${pkg}@${version}"
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$gobin"
  GOBIN="$tmp" go install "${pkg}@${version}"
  mv "$tmp/$bin" "$gobin/$name"
  rmdir "$tmp"
}
go_install_pinned cosign github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN_VERSION"
go_install_pinned fulcio github.com/sigstore/fulcio "$FULCIO_VERSION"
go_install_pinned timestamp-server github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server "$TSA_VERSION"
# rekor-tiles' POSIX-storage server; its package is named posix.
go_install_pinned posix github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix "$REKOR_TILES_VERSION" rekor-server-posix

# The scanners' own CLIs, at the versions slipway links, for the test that
# checks slipway's findings agree with theirs (and for make bench).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scan_clis="${SLIPWAY_SCAN_CLIS:-$(go env GOPATH)/slipway-scan-clis}"
want="$(grep -E '^\s*(github.com/aquasecurity/trivy|golang.org/x/vuln|github.com/securego/gosec/v2) ' "$root/go.mod" | tr -s ' \t' ' ')"
if [ "$(cat "$scan_clis/versions" 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: trivy, govulncheck and gosec CLIs into $scan_clis"
  bash "$root/bench/scan/install-clis.sh" "$scan_clis" >/dev/null
  printf '%s\n' "$want" >"$scan_clis/versions"
fi
