#!/usr/bin/env bash
# Packages a slipway build of ./cmd/... as the release assets that
# scripts/action-install.sh downloads: one tarball per platform,
#
#   slipway_<version>_<os>_<arch>[_<variant>].tar.gz
#
# holding that platform's binaries at the top level (slipway, slipway-build,
# … with .exe on windows), and one SHA256SUMS over the tarballs.
#
#   scripts/package-release.sh TAG DIST OUT
#
# TAG is the release tag (v1.2.3) and must be the version the build stamped:
# a shallow clone or a dirty tree gives a pseudo-version, and its assets
# would have names the install script never asks for. DIST is the build's
# output; its binaries are checked against its SHA256SUMS before any is
# packaged. OUT must be empty or missing.
#
# The tarballs are reproducible: names sorted, owner 0:0, mode 0755, the
# file times slipway build set (the commit time), gzip without name or time.
# Needs GNU tar and sha256sum (ubuntu-latest has both).
set -euo pipefail
export LC_ALL=C

die() {
  echo "package-release: $*" >&2
  exit 1
}

[ "$#" -eq 3 ] || die "usage: package-release.sh TAG DIST OUT"
tag="$1" dist="$2" out="$3"

# The install script's pattern for a release tag.
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
[[ "$tag" =~ $semver ]] || die "$tag is not a release tag such as v1.2.3"
version="${tag#v}"

if [ ! -f "$dist/slipway.json" ] || [ ! -f "$dist/SHA256SUMS" ]; then
  die "$dist holds no slipway build (no slipway.json and SHA256SUMS)"
fi
grep -qF "\"version\": \"$version\"" "$dist/slipway.json" ||
  die "$dist/slipway.json is not version $version; build at the tag, with its history (fetch-depth: 0) and a clean tree"
(cd "$dist" && sha256sum --check --strict --quiet SHA256SUMS) ||
  die "the binaries in $dist do not match its SHA256SUMS"

mkdir -p "$out"
[ -z "$(ls -A "$out")" ] || die "$out is not empty"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# slipway build writes <name>_<os>_<arch>[_<variant>]/<name>[.exe]; the
# platform is what follows the binary's name in its directory.
while read -r _ path; do
  path="${path#\*}"
  dir="${path%/*}" file="${path##*/}"
  name="${file%.exe}"
  case "$dir" in
    "${name}"_*) ;;
    *) die "$path is not <name>_<os>_<arch>/<name>, as slipway build names binaries" ;;
  esac
  platform="${dir#"${name}"_}"
  mkdir -p "$stage/$platform"
  cp -p "$dist/$path" "$stage/$platform/$file"
done <"$dist/SHA256SUMS"

platforms=()
for d in "$stage"/*/; do
  [ -d "$d" ] && platforms+=("$(basename "$d")")
done
[ "${#platforms[@]}" -gt 0 ] || die "$dist/SHA256SUMS lists no binaries"

# Every platform ships the same commands, and the dispatcher with them.
want=""
for platform in "${platforms[@]}"; do
  names="$(for f in "$stage/$platform"/*; do f="${f##*/}" && echo "${f%.exe}"; done | sort | tr '\n' ' ')"
  for prog in slipway slipway-build; do
    [[ " $names" == *" $prog "* ]] || die "$platform has no $prog; build ./cmd/..."
  done
  [ -z "$want" ] || [ "$names" = "$want" ] ||
    die "$platform has $names but ${platforms[0]} has $want; build every command for every platform"
  want="$names"
done

for platform in "${platforms[@]}"; do
  tarball="slipway_${version}_${platform}.tar.gz"
  chmod 0755 "$stage/$platform"/*
  (
    cd "$stage/$platform"
    printf '%s\n' * | sort >"$stage/$platform.list"
    tar --create --format=ustar --owner=0 --group=0 --numeric-owner \
      --no-recursion --files-from="$stage/$platform.list" |
      gzip -9 --no-name >"$out/$tarball"
  )
  echo "package-release: $tarball: $(tr '\n' ' ' <"$stage/$platform.list")" >&2
done

(cd "$out" && sha256sum -- slipway_*.tar.gz >SHA256SUMS)
echo "package-release: $out/SHA256SUMS" >&2
