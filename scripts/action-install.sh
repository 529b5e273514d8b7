#!/usr/bin/env bash
# Puts slipway on PATH for the steps of a slipway action, once per job.
#
# Which slipway, the first that applies:
#   1. slipway-version (SLIPWAY_INSTALL_VERSION): that release.
#   2. The tree of a release: the release workflow commits actions/RELEASE
#      (the release's tag, then its SHA256SUMS) and tags that commit
#      vX.Y.Z, vX.Y and vX. At one of those tags, or at a full commit SHA,
#      the release named there is installed, checked against the sums in
#      the tree: a floating tag resolves to one release with no API call.
#   3. A tag vX.Y.Z whose tree has no actions/RELEASE (older releases).
#   4. Anything else (a branch, another commit, a local ./actions/build):
#      slipway is built from the action's own source with the job's Go.
#
# Once per job: a slipway of the wanted version that is already on PATH
# (put there by an earlier step, or by the job itself) and runs every step
# in SLIPWAY_STEPS is used as it is; else a complete copy in the runner's
# tool cache (releases) or in RUNNER_TEMP (source builds); else it is
# downloaded or built, and put on PATH for the later steps.
#
# Verification of a release (SLIPWAY_VERIFY):
#   auto       (default) the tarball must match the sums: the tree's when
#              the action runs at the release, else the release's
#              SHA256SUMS. If cosign is on PATH and the release has a
#              Sigstore bundle for its sums (SHA256SUMS.sigstore.json), the
#              sums must also be signed by the release workflow's identity.
#   signature  as auto, but cosign and the bundle are required, so the
#              sums are trusted only with the release workflow's signature.
#   checksum   sums only; no signature is looked for.
#
# Environment (the actions pass these through env:, never in the script):
#   SLIPWAY_ACTION_REF         the ref the action runs at (github.action_ref)
#   SLIPWAY_INSTALL_VERSION    a release to install instead, e.g. v1.2.3
#   SLIPWAY_STEPS              the steps the action runs, e.g. "build image"
#   SLIPWAY_VERIFY             auto, signature or checksum (above)
#   SLIPWAY_RELEASE_URL        where releases are downloaded from, default
#                              https://github.com/slipwayci/slipway/releases/download
#   SLIPWAY_RELEASE_IDENTITY   the signer a bundle must name, default
#                              slipway's release workflow on main
#   SLIPWAY_RELEASE_ISSUER     its OIDC issuer, default GitHub Actions'
#   SLIPWAY_COSIGN             the cosign to verify with, default cosign on PATH
#   RUNNER_TOOL_CACHE          where releases are kept (default RUNNER_TEMP)
#   RUNNER_TEMP                where source builds are kept (default /tmp)
#   GITHUB_PATH                the install directory is appended to it
set -euo pipefail

die() {
  echo "action-install: $*" >&2
  exit 1
}
say() { echo "action-install: $*" >&2; }

# A release tag, v1.2.3 or v1.2.3-rc.1, as package-release.sh takes it.
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
commit='^[0-9a-f]{40}$'

# This script sits in scripts/ of the tree the action was checked out
# from, two levels above actions/<step>.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="${SLIPWAY_ACTION_REF:-}"
steps="${SLIPWAY_STEPS:-build}"
verify="${SLIPWAY_VERIFY:-auto}"
cosign="${SLIPWAY_COSIGN:-cosign}"
case "$verify" in
  auto | signature | checksum) ;;
  *) die "SLIPWAY_VERIFY \"$verify\" is not auto, signature or checksum" ;;
esac

# macOS runners have shasum rather than sha256sum.
sha256=(sha256sum)
command -v sha256sum >/dev/null 2>&1 || sha256=(shasum -a 256)

# Every temporary file of this run, and an install that did not finish,
# removed however it ends.
work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/slipway-install.XXXXXX")"
partial=""
trap 'rm -rf "$work" ${partial:+"$partial"}' EXIT

# floating_tags prints the tags a release tag is published under: itself,
# and for a release that is not a pre-release, vX.Y and vX.
floating_tags() {
  local t="$1" core
  echo "$t"
  case "$t" in *-* | *+*) return ;; esac
  core="${t#v}"
  echo "v${core%.*}"
  echo "v${core%%.*}"
}

# Resolve what to run: tag (a release) or nothing (build from source);
# sums is the file its tarball is checked against, if the tree holds it.
tag="" sums="" why=""
release_file="$root/actions/RELEASE"
if [ -n "${SLIPWAY_INSTALL_VERSION:-}" ]; then
  tag="$SLIPWAY_INSTALL_VERSION"
  case "$tag" in v*) ;; *) tag="v$tag" ;; esac
  [[ "$tag" =~ $semver ]] || die "slipway-version \"$SLIPWAY_INSTALL_VERSION\" is not a release version such as v1.2.3"
  why="slipway-version $tag"
elif [ -n "$ref" ] && [ -f "$release_file" ]; then
  read -r named <"$release_file" || true
  [[ "${named:-}" =~ $semver ]] || die "$release_file does not start with a release tag"
  if [[ "$ref" =~ $commit ]] || floating_tags "$named" | grep -qxF -- "$ref"; then
    tag="$named" why="release $named, named by the action's tree at $ref"
    sums="$work/RELEASE.sums"
    tail -n +2 "$release_file" >"$sums"
  fi
fi
if [ -z "$tag" ] && [[ "$ref" =~ $semver ]]; then
  tag="$ref" why="release $ref, the action's ref"
fi

if [ -n "$tag" ]; then
  want="${tag#v}"
else
  # A source build is known by its content: the same tree in two steps
  # (or two actions of one ref) is one build.
  grep -q '^module github.com/slipwayci/slipway$' "$root/go.mod" 2>/dev/null ||
    die "$root is not slipway's source tree"
  tree="$(cd "$root" && find go.mod go.sum cmd internal -type f ! -name '*_test.go' ! -path '*/testdata/*' -print0 |
    LC_ALL=C sort -z | xargs -0 "${sha256[@]}" | "${sha256[@]}")"
  want="devel-${tree:0:12}"
fi

# on_path reports whether the slipway on PATH is version want and runs
# every step this action needs.
on_path() {
  local got step
  command -v slipway >/dev/null 2>&1 || return 1
  got="$(slipway --version 2>/dev/null)" || return 1
  [ "$got" = "slipway $want" ] || [ "$got" = "slipway v$want" ] || return 1
  for step in $steps; do
    got="$(slipway "$step" --version 2>/dev/null)" || return 1
    [ "$got" = "slipway-$step $want" ] || [ "$got" = "slipway-$step v$want" ] || return 1
  done
}

# use puts dir on PATH for the later steps of the job, after checking that
# what it holds is the version wanted.
use() {
  local dir="$1" got
  got="$("$dir/slipway" --version 2>/dev/null)" || die "$dir/slipway does not run on this runner"
  [ "$got" = "slipway $want" ] || die "$dir/slipway is \"$got\", not slipway $want"
  if [ -n "${GITHUB_PATH:-}" ]; then
    echo "$dir" >>"$GITHUB_PATH"
  fi
  export PATH="$dir:$PATH"
}

if on_path; then
  say "slipway $want ($steps) already on PATH at $(dirname "$(command -v slipway)"); not installing"
  exit 0
fi

# verify_signature checks that the sums file was signed by the release
# workflow, as a keyless Sigstore bundle, when it can or must be. cosign
# is the verifier today; slipway's own (once it verifies bundles) slots in
# here, as long as it is not the binary being verified.
verify_signature() {
  local sums="$1" base="$2" dl="$3"
  [ "$verify" = checksum ] && return 0
  if ! command -v "$cosign" >/dev/null 2>&1; then
    [ "$verify" = signature ] && die "SLIPWAY_VERIFY=signature needs cosign on PATH to check $tag's signature"
    return 0
  fi
  if ! curl --fail --silent --show-error --location --retry 3 -o "$dl/SHA256SUMS.sigstore.json" "$base/SHA256SUMS.sigstore.json"; then
    [ "$verify" = signature ] && die "$tag has no signature bundle (SHA256SUMS.sigstore.json) and SLIPWAY_VERIFY=signature"
    say "$tag has no signature bundle; checked against its sums only"
    return 0
  fi
  "$cosign" verify-blob \
    --bundle "$dl/SHA256SUMS.sigstore.json" \
    --certificate-identity "${SLIPWAY_RELEASE_IDENTITY:-https://github.com/slipwayci/slipway/.github/workflows/release.yml@refs/heads/main}" \
    --certificate-oidc-issuer "${SLIPWAY_RELEASE_ISSUER:-https://token.actions.githubusercontent.com}" \
    "$sums" >&2 || die "the sums of $tag are not signed by slipway's release workflow"
  say "the sums of $tag are signed by slipway's release workflow"
}

install_release() {
  local dir="$1" os arch tarball base dl="$work"
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
  tarball="slipway_${want}_${os}_${arch}.tar.gz"
  base="${SLIPWAY_RELEASE_URL:-https://github.com/slipwayci/slipway/releases/download}"
  base="${base%/}/$tag"

  say "downloading $base/$tarball ($why)"
  curl --fail --silent --show-error --location --retry 3 -o "$dl/$tarball" "$base/$tarball" ||
    die "downloading $tarball failed"
  if [ -z "$sums" ]; then
    curl --fail --silent --show-error --location --retry 3 -o "$dl/SHA256SUMS" "$base/SHA256SUMS" ||
      die "downloading SHA256SUMS failed"
    sums="$dl/SHA256SUMS"
  fi
  verify_signature "$sums" "$base" "$dl"

  # Check only the tarball's own line: a release lists every platform, and
  # a missing line must fail rather than verify nothing.
  awk -v f="$tarball" '$2 == f || $2 == "*" f' "$sums" >"$dl/check"
  [ -s "$dl/check" ] || die "the sums of $tag have no entry for $tarball"
  (cd "$dl" && "${sha256[@]}" --check --strict check >&2) || die "checksum of $tarball does not match the sums of $tag"

  tar -xzf "$dl/$tarball" -C "$dir"
}

install_source() {
  local dir="$1" experiment="${GOEXPERIMENT:-}"
  command -v go >/dev/null 2>&1 ||
    die "building slipway from source (ref \"$ref\") needs Go on the runner; add actions/setup-go, or use the action at a release tag"
  say "building slipway $want from source in $root: ref \"$ref\" is no release (branches, commits and local paths build from source; a release tag such as @v1, or slipway-version, installs released binaries)"
  # As the release builds it: static, stamped, and with the JSON
  # experiment trivy (linked into slipway-scan) needs.
  [[ ",$experiment," == *,jsonv2,* ]] || experiment="${experiment:+$experiment,}jsonv2"
  (cd "$root" && CGO_ENABLED=0 GOEXPERIMENT="$experiment" go build -trimpath \
    -ldflags "-s -w -X github.com/slipwayci/slipway/internal/version.stamped=$want" \
    -o "$dir/" ./cmd/...) || die "building slipway from $root failed"
}

# Each install goes into a directory of its own, and a marker names the
# one that finished: two jobs installing at once on one runner (a shared
# tool cache) each get a whole copy, and neither removes the other's.
if [ -n "$tag" ]; then
  base="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/slipway/$want"
  what="$why, from the tool cache"
else
  base="${RUNNER_TEMP:-/tmp}/slipway-source/$want"
  what="built from source earlier in this job"
fi
marker="$base/$(uname -m).complete"
cache=""
if [ -f "$marker" ]; then
  read -r cache <"$marker" || true
fi
if [ -n "$cache" ] && [ -x "$cache/slipway" ]; then
  say "slipway $want ($what) at $cache"
else
  mkdir -p "$base"
  cache="$(mktemp -d "$base/$(uname -m).XXXXXX")"
  partial="$cache"
  if [ -n "$tag" ]; then
    install_release "$cache"
  else
    install_source "$cache"
  fi
  chmod 755 "$cache"
  echo "$cache" >"$marker.$$"
  mv -f "$marker.$$" "$marker"
  partial=""
fi

use "$cache"
on_path || die "slipway $want in $cache does not run every step of this action ($steps)"
say "slipway $want in $cache"
