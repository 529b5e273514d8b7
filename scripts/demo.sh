#!/usr/bin/env bash
# make demo: Slipway's build step on the sample app, as a user would run it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

app=testdata/apps/hello
out="$PWD/dist/demo/build"

echo "==> slipway build --dir $app --platforms linux/amd64,linux/arm64,darwin/arm64 --out dist/demo/build"
slipway build --dir "$app" --platforms linux/amd64,linux/arm64,darwin/arm64 --out "$out"

echo
echo "==> the record later steps read: dist/demo/build/slipway.json"
sed -n '1,9p' "$out/slipway.json"
echo "  … $(grep -c '"sha256"' "$out/slipway.json") artifacts"
echo
echo "==> dist/demo/build/SHA256SUMS"
cat "$out/SHA256SUMS"
echo
echo "==> the summary, as Markdown for GitHub: dist/demo/build/summary.md"
cat "$out/summary.md"

echo
echo "==> slipway image --dist dist/demo/build --dir $app   (built-in static base, no pull, no Docker)"
slipway image --dist "$out" --dir "$app" --platforms linux/amd64,linux/arm64

echo
echo "==> the OCI layout: dist/demo/build/image/index.json"
cat "$out/image/index.json"; echo
echo "==> SBOMs: $(cd "$out" && ls sbom/* | tr '\n' ' ')"

host="$(go env GOOS)_$(go env GOARCH)"
if [ -x "$out/hello_$host/hello" ]; then
  echo
  echo "==> running the $host binary"
  "$out/hello_$host/hello"
fi
