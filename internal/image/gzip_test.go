package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// portableTags select klauspost/compress's portable code, the code a
// machine without its fast paths runs, on this machine: nounsafe its
// encoding/binary word loads (what 386, arm and big-endian machines use
// instead of unsafe ones), noasm its pure-Go routines instead of assembly.
const portableTags = "noasm,nounsafe"

// gzipSample compresses 4 MiB of fixed, half-compressible bytes the way
// layers are compressed, and returns the blob's sha256.
func gzipSample(t *testing.T) string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4<<20)
	for i := range data {
		if i%2 == 0 {
			data[i] = byte(r.IntN(256))
		} else {
			data[i] = byte(i / 4096)
		}
	}
	var blob bytes.Buffer
	if _, err := gzipTo(&blob, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(blob.Bytes()))
}

// TestGzipSameOnEveryArchitecture: a layer's digest must not depend on
// the machine that compressed it. The sample's digest must match the one
// recorded in testdata, so a machine whose own paths differ (arm64's
// shift masks, a 32-bit int) fails where it runs; and on any machine the
// test runs itself again built with portableTags, without executing a
// binary for another architecture, and compares the two digests.
func TestGzipSameOnEveryArchitecture(t *testing.T) {
	got := gzipSample(t)
	if os.Getenv("SLIPWAY_GZIP_PRINT") == "1" {
		fmt.Printf("gzip-sample %s\n", got)
		return
	}
	golden(t, "gzip-sample.sha256", got+"\n")
	if testing.Short() {
		t.Skip("compiles the package again with -tags " + portableTags)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	// Tags the library no longer reads would compare a build with itself.
	if host, portable := gzipFiles(ctx, t, ""), gzipFiles(ctx, t, portableTags); host == portable {
		t.Fatalf("-tags %s selects the same klauspost/compress files as this build; find the tags its portable code is behind now:\n%s", portableTags, host)
	}

	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-tags", portableTags, "-run", "^TestGzipSameOnEveryArchitecture$", "-v", ".")
	cmd.Env = append(os.Environ(), "SLIPWAY_GZIP_PRINT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -tags %s: %v\n%s", portableTags, err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if other, ok := strings.CutPrefix(line, "gzip-sample "); ok {
			if other != got {
				t.Errorf("the same bytes compress to %s with -tags %s and %s without", other, portableTags, got)
			}
			return
		}
	}
	t.Fatalf("the run with -tags %s printed no digest:\n%s", portableTags, out)
}

// gzipFiles lists the Go files of klauspost/compress's gzip and the
// packages it imports from its module, as a build with tags compiles them.
func gzipFiles(ctx context.Context, t *testing.T, tags string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", tags,
		"-f", `{{with .Module}}{{if eq .Path "github.com/klauspost/compress"}}{{$.ImportPath}} {{$.GoFiles}}{{end}}{{end}}`,
		"github.com/klauspost/compress/gzip").Output()
	if err != nil {
		t.Fatalf("go list -tags %q: %v", tags, err)
	}
	return string(out)
}
