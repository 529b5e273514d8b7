#!/usr/bin/env bash
# Puts the slipway binaries on PATH for the later steps of a slipway action.
#
# At a release tag (uses: slipwayci/slipway/actions/build@v1.2.3), or when
# slipway-version names one, it downloads that release's tarball and checks
# it against the release's SHA256SUMS before unpacking anything. Anywhere
# else (a branch, a commit, a local ./actions/build, act) there is no
# release to fetch, so it builds the binaries from the action's own source
# tree with the Go toolchain the job already has, once per job: the later
# slipway steps of the job find that build current.
#
# Environment (the action passes these through env:, never in the script):
#   SLIPWAY_ACTION_REF       the ref the action runs at (github.action_ref)
#   SLIPWAY_INSTALL_VERSION  a release to install instead, e.g. v1.2.3
#   SLIPWAY_RELEASE_URL      where releases are downloaded from, default
#                            https://github.com/slipwayci/slipway/releases/download
#   RUNNER_TEMP              parent of the install directory (default /tmp,
#                            where a source build is not shared)
#   GITHUB_PATH              the install directory is appended to it
set -euo pipefail

die() {
  echo "action-install: $*" >&2
  exit 1
}

# semver matches a full release tag, v1.2.3 or v1.2.3-rc.1; a floating
# major tag such as v1 does not name one release and builds from source.
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'

tag="${SLIPWAY_INSTALL_VERSION:-}"
if [ -n "$tag" ]; then
  case "$tag" in v*) ;; *) tag="v$tag" ;; esac
  [[ "$tag" =~ $semver ]] || die "slipway-version \"$SLIPWAY_INSTALL_VERSION\" is not a release version such as v1.2.3"
elif [[ "${SLIPWAY_ACTION_REF:-}" =~ $semver ]]; then
  tag="$SLIPWAY_ACTION_REF"
fi

# sha256 prints the SHA-256 of its input.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  else
    shasum -a 256 | cut -d' ' -f1
  fi
}

# sha256check verifies the files listed in a sha256sum-format file in the
# current directory; macOS runners have shasum rather than sha256sum.
sha256check() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum --check --strict "$1"
  else
    shasum -a 256 --check --strict "$1"
  fi
}

install_release() {
  local os arch version tarball base dl
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$os" in
    linux | darwin) ;;
    *) die "no slipway release for $os; use a Linux or macOS runner" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no slipway release for $(uname -m)" ;;
  esac
  version="${tag#v}"
  tarball="slipway_${version}_${os}_${arch}.tar.gz"
  base="${SLIPWAY_RELEASE_URL:-https://github.com/slipwayci/slipway/releases/download}"
  base="${base%/}/$tag"
  dl="$(mktemp -d "${RUNNER_TEMP:-/tmp}/slipway-dl.XXXXXX")"

  echo "action-install: downloading $base/$tarball" >&2
  curl --fail --silent --show-error --location --retry 3 -o "$dl/$tarball" "$base/$tarball" ||
    die "downloading $tarball failed"
  curl --fail --silent --show-error --location --retry 3 -o "$dl/SHA256SUMS" "$base/SHA256SUMS" ||
    die "downloading SHA256SUMS failed"

  # Check only the tarball's own line: a release lists every platform, and
  # a missing line must fail rather than verify nothing.
  awk -v f="$tarball" '$2 == f || $2 == "*" f' "$dl/SHA256SUMS" >"$dl/check"
  [ -s "$dl/check" ] || die "SHA256SUMS of $tag has no entry for $tarball"
  (cd "$dl" && sha256check check >&2) || die "checksum of $tarball does not match SHA256SUMS of $tag"

  bindir="$(mktemp -d "${RUNNER_TEMP:-/tmp}/slipway-bin.XXXXXX")"
  tar -xzf "$dl/$tarball" -C "$bindir"
  rm -rf "$dl"
}

install_source() {
  local root
  # This script sits in scripts/ of the tree the action was checked out
  # from, two levels above actions/<step>: that tree is what to build.
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  grep -q '^module github.com/slipwayci/slipway$' "$root/go.mod" 2>/dev/null ||
    die "$root is not slipway's source tree"
  command -v go >/dev/null 2>&1 ||
    die "building slipway from source (ref \"${SLIPWAY_ACTION_REF:-}\") needs Go on the runner; add actions/setup-go, or use the action at a release tag"
  # Every slipway step of a job installs slipway, from the same tree. In
  # the job's own RUNNER_TEMP the build goes to one directory per tree and
  # GOEXPERIMENT, where go build relinks only what is out of date: the
  # first step links, the later ones find its binaries current. Anywhere
  # else (no RUNNER_TEMP, a shared /tmp) each install gets a new directory.
  if [ -n "${RUNNER_TEMP:-}" ]; then
    bindir="$RUNNER_TEMP/slipway-src-$(printf '%s\n%s\n' "$root" "${GOEXPERIMENT:-}" | sha256 | cut -c1-16)"
    mkdir -p "$bindir"
  else
    bindir="$(mktemp -d /tmp/slipway-bin.XXXXXX)"
  fi
  echo "action-install: building slipway from $root" >&2
  # Built as a release is: -trimpath, and CGO_ENABLED=0 for a static
  # binary whatever C toolchain the runner has.
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$bindir/" ./cmd/...)
}

if [ -n "$tag" ]; then
  install_release
else
  install_source
fi

# Only binaries that run go on PATH.
for prog in slipway slipway-build; do
  [ -x "$bindir/$prog" ] || die "$prog missing from $bindir"
done
installed="$("$bindir/slipway-build" --version)" || die "$bindir/slipway-build does not run on this runner"
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$bindir" >>"$GITHUB_PATH"
fi
echo "action-install: $installed in $bindir" >&2
