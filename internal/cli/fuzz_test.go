package cli

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSize checks that a size read is never negative, that a bare
// byte count reads as itself, and that what HumanSize writes reads back to
// within its rounding (a tenth of the unit, at least one unit).
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1024", "500MB", "500 mb", "2GiB", "1.5G", "1.0 GiB", "64Ki", " 3 TB ", "", "GiB", "-1GB", "5XB", "1e9", "1.2.3MB", "9999999TiB", "8388608TiB", "8388607.999999TiB", ".5k", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if n < 1<<53 { // exact in a float64
			if again, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || again != n {
				t.Fatalf("ParseSize(%q) = %d, but ParseSize(%d) = %d, %v", s, n, n, again, err)
			}
		}
		if n >= 1<<62 {
			// HumanSize rounds the largest sizes up to 8589934592.0 GiB,
			// one past what ParseSize takes: no cache is that big.
			return
		}
		h := HumanSize(n)
		again, err := ParseSize(h)
		if err != nil {
			t.Fatalf("HumanSize(%d) = %q, which does not parse: %v", n, h, err)
		}
		if diff := again - n; diff < 0 && -diff > n/20 || diff > 0 && diff > n/20 {
			t.Fatalf("HumanSize(%d) = %q, which reads back as %d", n, h, again)
		}
	})
}
