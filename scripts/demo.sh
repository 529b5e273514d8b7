#!/usr/bin/env bash
# make demo: Slipway's whole pipeline on the sample app, as a user runs it —
# build, image, scan, push, promote staging → production — with nothing to
# set up: offline scan databases from testdata, a registry on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export PATH="$root/bin:$PATH"

app=testdata/apps/hello
out="$root/dist/demo"
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "slipway build: the sample app for linux/amd64 and linux/arm64"
slipway build --dir "$app" --platforms linux/amd64,linux/arm64 --dist "$out"

step "slipway image: on the built-in static base (no pull, no Docker daemon)"
slipway image --dist "$out" --dir "$app"

step "slipway scan: trivy, govulncheck and gosec, offline, with the databases in testdata/scan"
go run ./internal/tools/demodb testdata/scan/trivydb "$out/trivy-cache"
slipway scan --dist "$out" --dir "$app" --offline --cache-dir "$out/trivy-cache" \
  --vulndb "file://$root/testdata/scan/vulndb" --format "sarif=$out/scan.sarif" --format "gitlab=$out/gl-container-scanning.json"

step "a registry for the demo, on loopback"
go build -o "$out/demoregistry" ./internal/tools/demoregistry
"$out/demoregistry" >"$out/registry.addr" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$out/registry.addr" ] && break; sleep 0.1; done
reg="$(cat "$out/registry.addr")"
echo "registry at $reg"

step "slipway push: the index, its images, SBOMs and scan evidence; tags last"
slipway push --dist "$out" --dir "$app" --to "$reg/hello/ci" --tag "type=sha" --tag "type=raw,value=demo"
digest="$(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$out/slipway.json" | head -n 1)"

cat >"$out/slipway.yaml" <<YAML
environments:
  staging:
    repository: $reg/hello/staging
    tags: [staging]
    gates:
      scan: {maxSeverity: medium, maxAge: 1d}
      sbom: true
  production:
    repository: $reg/hello/production
    tags: [production, "{{.Version}}"]
    gates:
      from: staging
      scan: {maxSeverity: medium, maxAge: 1d}
      sbom: true
      approval: {approvers: [demo]}
YAML

step "slipway promote --dry-run to production: the gates refuse (never in staging, no approver)"
if slipway promote --config "$out/slipway.yaml" --digest "$reg/hello/ci@$digest" --to production --dry-run; then
  echo "demo: production should have refused" >&2; exit 1
else
  echo "(exit $? — a gate refusal, as it should be)"
fi

step "slipway promote to staging"
slipway promote --config "$out/slipway.yaml" --digest "$reg/hello/ci@$digest" --to staging

step "slipway promote to production, approved"
slipway promote --config "$out/slipway.yaml" --digest "$reg/hello/staging@$digest" --to production --approved-by demo

step "slipway history production"
slipway history --config "$out/slipway.yaml" production

step "where the results are"
cat <<TXT
  binaries, SHA256SUMS, record   $out  (slipway.json)
  OCI layout and SBOMs           $out/image, $out/sbom
  scan                           $out/findings.json, $out/scan.sarif, $out/scan.intoto.json
  summaries (Markdown)           $out/*summary*.md
  production                     $reg/hello/production@$digest (stopped with the demo)
TXT
