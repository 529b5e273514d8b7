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

die() {
  echo "install-test-deps: $*" >&2
  exit 1
}

# writable reports whether path, or the nearest directory above it that
# exists, can be written.
writable() {
  if [ -e "$1" ]; then [ -w "$1" ]; else writable "$(dirname "$1")"; fi
}

# go install puts commands in GOBIN, or else the bin of GOPATH's first
# entry; that is where the Makefile looks for them too.
gopath="$(go env GOPATH)"
gopath="${gopath%%:*}"
gobin="$(go env GOBIN)"
gobin="${gobin:-$gopath/bin}"
mkdir -p "$gobin"
export PATH="$gobin:$PATH"

need_gitlab_ci_local=false
if ! command -v gitlab-ci-local >/dev/null 2>&1 || [ "$(gitlab-ci-local --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
  need_gitlab_ci_local=true
fi

need_apt=()
tools=(docker-registry:docker-registry runc:runc umoci:umoci skopeo:skopeo rsync:rsync git:git curl:curl)
# gitlab-ci-local needs re2, a native module that npm compiles (node-gyp:
# python3, make, g++) where it cannot download a prebuilt one.
$need_gitlab_ci_local && tools+=(npm:npm python3:python3 make:make g++:g++)
for pair in "${tools[@]}"; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "missing ${need_apt[*]}, and no apt-get to install them with; install them (Debian's package names) and run make test again"
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "installing ${need_apt[*]} needs root, and there is no sudo; install them as root"
    # sudo drops the caller's environment: DEBIAN_FRONTEND goes through env.
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts the registry as a service on :5000; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true
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

if $need_gitlab_ci_local; then
  # A global install where npm's global prefix is writable (root, or a
  # user's own prefix); Debian's npm has /usr, root's, so a user gets it
  # under GOPATH instead.
  npm_prefix="$(npm prefix -g)"
  if ! writable "$npm_prefix/lib/node_modules" || ! writable "$npm_prefix/bin"; then
    npm_prefix="$gopath/slipway-npm"
  fi
  echo "install-test-deps: npm install -g --prefix $npm_prefix gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}"
  npm install -g --prefix "$npm_prefix" --no-audit --no-fund "gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}" >/dev/null
  # Where npm's bin directory is not on PATH, or an older one comes first,
  # the Go bin directory (first on PATH here and in the Makefile) gets a link.
  hash -r
  if [ "$(gitlab-ci-local --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
    ln -sf "$npm_prefix/bin/gitlab-ci-local" "$gobin/gitlab-ci-local"
    hash -r
  fi
  [ "$(gitlab-ci-local --version 2>/dev/null)" = "$GITLAB_CI_LOCAL_VERSION" ] ||
    die "installed gitlab-ci-local $GITLAB_CI_LOCAL_VERSION into $npm_prefix, but it does not run"
fi

# The Go tools below are built one after the other. Side by side (the
# Sigstore programs beside the scanner CLIs) they took a fifth longer on a
# 2-core machine: each build is CPU-bound already.

# The four Sigstore programs are built together, in one scratch module
# that requires the four pinned versions: they share most of their
# dependencies (gRPC, protobuf, the cloud KMS SDKs, sigstore/sigstore), and
# built one by one each compiled its own versions of them, about ten
# minutes on a cold 2-core machine. In one module the shared ones resolve
# to the highest version any of the four asks for, as Go's minimal version
# selection does for any program built with another, and compile once.
# Each program's own code is exactly its release's; cosign keeps the
# sigstore-go its release names (only it requires one), so its checks stay
# independent of slipway's. A binary is rebuilt only when `go version -m`
# says it is not the pinned version.
sigstore_tools=(
  "cosign github.com/sigstore/cosign/v3 $COSIGN_VERSION github.com/sigstore/cosign/v3/cmd/cosign cosign"
  "fulcio github.com/sigstore/fulcio $FULCIO_VERSION github.com/sigstore/fulcio fulcio"
  "timestamp-server github.com/sigstore/timestamp-authority/v2 $TSA_VERSION github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server timestamp-server"
  # rekor-tiles' POSIX-storage server; its package is named posix.
  "posix github.com/sigstore/rekor-tiles/v2 $REKOR_TILES_VERSION github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix rekor-server-posix"
)
# pinned NAME MODULE VERSION reports whether GOBIN/NAME was built from
# MODULE at VERSION, as its main module (go install) or a dependency (the
# scratch module).
pinned() {
  [ -x "$gobin/$1" ] && go version -m "$gobin/$1" 2>/dev/null | grep -qE "^\s+(mod|dep)\s+$2\s+$3(\s|$)"
}
stale=()
for tool in "${sigstore_tools[@]}"; do
  read -r bin mod version pkg name <<<"$tool"
  pinned "$name" "$mod" "$version" || stale+=("$tool")
done
if [ ${#stale[@]} -gt 0 ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  {
    printf 'module slipway-test-tools\n\ngo 1.26\n\nrequire (\n'
    for tool in "${sigstore_tools[@]}"; do
      read -r bin mod version pkg name <<<"$tool"
      printf '\t%s %s\n' "$mod" "$version"
    done
    printf ')\n'
  } >"$work/go.mod"
  pkgs=()
  for tool in "${stale[@]}"; do
    read -r bin mod version pkg name <<<"$tool"
    pkgs+=("$pkg")
  done
  echo "install-test-deps: go build ${pkgs[*]} (one module: $COSIGN_VERSION $FULCIO_VERSION $TSA_VERSION $REKOR_TILES_VERSION)"
  mkdir -p "$work/bin"
  (cd "$work" && GOFLAGS=-mod=mod go build -o "$work/bin/" "${pkgs[@]}")
  for tool in "${stale[@]}"; do
    read -r bin mod version pkg name <<<"$tool"
    mv "$work/bin/$bin" "$gobin/$name"
    pinned "$name" "$mod" "$version" || die "built $name, but go version -m does not say $mod $version"
  done
  rm -rf "$work"
  trap - EXIT
fi

# The scanners' own CLIs, at the versions slipway links, for the test that
# checks slipway's findings agree with theirs (and for make bench).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scan_clis="${SLIPWAY_SCAN_CLIS:-$gopath/slipway-scan-clis}"
want="$(grep -E '^\s*(github.com/aquasecurity/trivy|golang.org/x/vuln|github.com/securego/gosec/v2) ' "$root/go.mod" | tr -s ' \t' ' ')"
if [ "$(cat "$scan_clis/versions" 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: trivy, govulncheck and gosec CLIs into $scan_clis"
  bash "$root/bench/scan/install-clis.sh" "$scan_clis" >/dev/null
  printf '%s\n' "$want" >"$scan_clis/versions"
fi
