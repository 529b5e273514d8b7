#!/usr/bin/env bash
# Makes the commit a release's tags point at, on top of the commit its
# binaries were built from, and tags it:
#
#   scripts/release-commit.sh TAG SUMS [IMAGE=PINNED ...]
#
#   TAG     the release, v1.2.3; absent, or on HEAD (the tag the build
#           took its version from)
#   SUMS    the release's SHA256SUMS, as scripts/package-release.sh wrote it
#   IMAGE=PINNED
#           an image the GitLab template names and what it becomes, e.g.
#           ghcr.io/slipwayci/slipway=ghcr.io/slipwayci/slipway:1.2.3@sha256:…
#
# The commit adds actions/RELEASE, the tag and then SUMS verbatim, which is
# how scripts/action-install.sh knows, at any of the release's tags, which
# release to install and what its tarballs' digests are, with no API call;
# and it pins every image of templates/slipway.gitlab-ci.yml by digest.
# Nothing else changes, so the tree is the built one's plus those files.
# TAG is then an annotated tag of the new commit.
#
# It prints the floating tags to move to the commit, one a line: vX.Y and
# vX, each only if no later release of that series exists, and neither
# for a pre-release. Pushing the tags is the workflow's, last.
set -euo pipefail
export LC_ALL=C

die() {
  echo "release-commit: $*" >&2
  exit 1
}

[ "$#" -ge 2 ] || die "usage: release-commit.sh TAG SUMS [IMAGE=PINNED ...]"
tag="$1" sums="$2"
shift 2
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ "$tag" =~ $semver ]] || die "$tag is not a release tag such as v1.2.3"
[ -s "$sums" ] || die "$sums is empty or missing"
grep -qvE '^[0-9a-f]{64} [ *]slipway_[^ /]+\.tar\.gz$' "$sums" &&
  die "$sums is not a SHA256SUMS of release tarballs"
grep -q "^[0-9a-f]\{64\} [ *]slipway_${tag#v}_" "$sums" || die "$sums lists no tarball of ${tag#v}"

root="$(git rev-parse --show-toplevel)"
cd "$root"
[ -z "$(git status --porcelain)" ] || die "the work tree is not clean"
head="$(git rev-parse HEAD)"
if at="$(git rev-parse -q --verify "refs/tags/$tag^{commit}")"; then
  [ "$at" = "$head" ] || die "$tag already names $at, not HEAD; a release tag is never moved"
fi

template=templates/slipway.gitlab-ci.yml
for pin in "$@"; do
  image="${pin%%=*}" pinned="${pin#*=}"
  [[ "$pin" == *=* && "$pinned" == *@sha256:* ]] || die "$pin is not IMAGE=REFERENCE@sha256:DIGEST"
  grep -qxE "    name: ${image//./\\.}" "$template" || die "$template names no image $image"
  # Line by line, not sed: the references hold : / @ and .
  awk -v from="    name: $image" -v to="    name: $pinned" '$0 == from { $0 = to } { print }' \
    "$template" >"$template.new"
  mv "$template.new" "$template"
done
# Every job's image: (its name: line, not an artifact's) by digest.
if unpinned="$(awk '/^[[:space:]]*#/ { next } prev == "  image:" && /^    name: / && !/@sha256:/ { print $2 } { prev = $0 }' "$template")" &&
  [ -n "$unpinned" ]; then
  die "$template still names images by tag: $(echo "$unpinned" | tr '\n' ' ')"
fi

{ echo "$tag"; cat "$sums"; } >actions/RELEASE
git add actions/RELEASE "$template"
git commit -q -m "release $tag" -m "actions/RELEASE names the release and its SHA256SUMS for scripts/action-install.sh; the GitLab template's images are pinned by digest. The binaries were built from $head."
git tag -f -a "$tag" -m "slipway $tag" >/dev/null

# Floating tags: the newest stable release of a series holds its name.
case "$tag" in *-*) exit 0 ;; esac
core="${tag#v}" major="v${core%%.*}" minor="v${core%.*}"
newest() {
  git tag -l "$1.*" | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1
}
[ "$(newest "$minor")" = "$tag" ] && echo "$minor"
[ "$(newest "$major")" = "$tag" ] && echo "$major"
exit 0
