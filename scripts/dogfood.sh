#!/usr/bin/env bash
# Slipway's own container image, made by Slipway's own steps: slipway build
# cross-compiles every command of this repository, slipway image layers them
# onto a base (default the built-in static one: offline, no pull) with
# slipway as the entrypoint. The dispatcher finds its steps next to itself
# in /usr/local/bin.
#
#   scripts/dogfood.sh [OUT]      # default dist/dogfood
#
# Environment:
#   SLIPWAY   the slipway to run; default one built from this tree first
#   BASE      the base image; the release uses alpine:3.22, which has the
#             shell GitLab jobs need (.github/workflows/release.yml)
#   PLATFORMS the platforms to build and image, default linux/amd64,linux/arm64
#
# internal/e2e/dogfood_test.go runs this on a copy of the repository and
# starts the image with runc.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-dist/dogfood}"

slipway="${SLIPWAY:-}"
if [ -z "$slipway" ]; then
  bin="$(mktemp -d)"
  trap 'rm -rf "$bin"' EXIT
  echo "==> go build -o $bin/ ./cmd/...   (the slipway that builds slipway)"
  go build -trimpath -o "$bin/" ./cmd/...
  slipway="$bin/slipway"
fi

# GOEXPERIMENT=jsonv2: slipway-scan links trivy, which needs it.
# version.stamped is what slipway --version prints.
platforms="${PLATFORMS:-linux/amd64,linux/arm64}"
echo "==> slipway build --packages ./cmd/... --platforms $platforms --dist $out"
"$slipway" build \
  --packages ./cmd/... \
  --platforms "$platforms" \
  --env GOEXPERIMENT=jsonv2 \
  --ldflags '-s -w -X github.com/slipwayci/slipway/internal/version.stamped={{.Version}}' \
  --dist "$out"

base="${BASE:-static}"
echo "==> slipway image --dist $out --entrypoint slipway --base $base"
"$slipway" image --dist "$out" --entrypoint slipway --base "$base"
