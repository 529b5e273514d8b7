#!/usr/bin/env bash
# Pins the base images slipway's own images are made from by digest, in
# the Dockerfile (ARG *_IMAGE=…) and the release workflow (base: …):
#
#   scripts/pin-images.sh [FILE...]          resolve each tag to its digest
#                                            now, write NAME:TAG@sha256:DIGEST
#   scripts/pin-images.sh --check [FILE...]  fail, naming them, if any is not
#                                            pinned
#
# The tag stays beside the digest, so a reader sees which release of the
# base it is and the next run knows what to resolve again. Resolving needs
# the registries; it uses crane (CRANE, default go run of the crane that
# matches go.mod's go-containerregistry). The release workflow runs
# --check before it builds anything.
set -euo pipefail
export LC_ALL=C

die() {
  echo "pin-images: $*" >&2
  exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=false
if [ "${1:-}" = --check ]; then
  check=true
  shift
fi
case "${1:-}" in -*) die "usage: pin-images.sh [--check] [FILE...]" ;; esac
files=("$@")
[ "${#files[@]}" -gt 0 ] || files=("$root/Dockerfile" "$root/.github/workflows/release.yml")

# refs prints each image reference a file names as a base, one a line.
refs() {
  sed -nE 's/^ARG [A-Z_]+_IMAGE=([^[:space:]]+)$/\1/p; s/^[[:space:]]+base: ([^[:space:]#]+).*$/\1/p' "$1" |
    grep -vxE 'static|scratch|oci:.*' || true
}

if $check; then
  bad=()
  for f in "${files[@]}"; do
    while read -r ref; do
      [ -n "$ref" ] || continue
      [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]] || bad+=("${f#"$root"/}: $ref")
    done < <(refs "$f")
  done
  [ "${#bad[@]}" -eq 0 ] || die "not pinned by digest (run scripts/pin-images.sh): ${bad[*]}"
  exit 0
fi

crane() {
  if [ -n "${CRANE:-}" ]; then
    "$CRANE" "$@"
  else
    local v
    v="$(cd "$root" && go list -m -f '{{.Version}}' github.com/google/go-containerregistry)"
    go run "github.com/google/go-containerregistry/cmd/crane@$v" "$@"
  fi
}

for f in "${files[@]}"; do
  while read -r ref; do
    [ -n "$ref" ] || continue
    tagged="${ref%@sha256:*}"
    digest="$(crane digest "$tagged")" || die "resolving $tagged failed"
    [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "crane gave \"$digest\" for $tagged"
    awk -v from="$ref" -v to="$tagged@$digest" '{
      i = index($0, from)
      if (i > 0 && substr($0, i + length(from), 1) ~ /^($|[[:space:]#])/) {
        $0 = substr($0, 1, i - 1) to substr($0, i + length(from))
      }
      print
    }' "$f" >"$f.new"
    mv "$f.new" "$f"
    echo "pin-images: ${f#"$root"/}: $tagged@$digest" >&2
  done < <(refs "$f")
done
