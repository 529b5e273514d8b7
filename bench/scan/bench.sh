#!/usr/bin/env bash
# Times one `slipway scan` against trivy, govulncheck (source and binary)
# and gosec run one after the other, on the same image and databases, and
# prints the ratio (the target is 0.6 or less).
#
#   bench/scan/install-clis.sh /tmp/clis
#   SLIPWAY_SCAN_CLIS=/tmp/clis bench/scan/bench.sh [COUNT]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${SLIPWAY_SCAN_CLIS:?set SLIPWAY_SCAN_CLIS to the directory install-clis.sh filled}"
count="${1:-5}"
out="$(cd "$root" && GOEXPERIMENT=jsonv2 go test -run '^$' -bench BenchmarkScan -benchtime "${count}x" ./bench/scan)"
echo "$out"
echo "$out" | awk '
  /BenchmarkScan\/[a-z]+\/slipway/ { split($1, p, "/"); s[p[2]] = $3 }
  /BenchmarkScan\/[a-z]+\/clis/    { split($1, p, "/"); c[p[2]] = $3 }
  END {
    n = 0
    for (app in s) {
      if (!(app in c)) continue
      n++
      printf "%s: slipway scan %.2fs, three commands in sequence %.2fs: ratio %.2f (target <= 0.60)\n", app, s[app]/1e9, c[app]/1e9, s[app]/c[app]
    }
    if (n == 0) { print "bench: no result"; exit 1 }
  }'
