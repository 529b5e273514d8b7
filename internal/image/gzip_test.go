package image

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

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
// the machine that compressed it. The test prints this architecture's
// digest of a fixed sample and, on amd64, runs itself built for 386 (which
// takes klauspost/compress's generic paths and 32-bit ints) to compare.
func TestGzipSameOnEveryArchitecture(t *testing.T) {
	got := gzipSample(t)
	if os.Getenv("SLIPWAY_GZIP_PRINT") == "1" {
		fmt.Printf("gzip-sample %s\n", got)
		return
	}
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("the cross-architecture check runs on linux/amd64")
	}
	if testing.Short() || os.Getenv("SLIPWAY_E2E") != "1" {
		t.Skip("compiles the package for 386; runs with SLIPWAY_E2E=1 (make test)")
	}
	cmd := exec.Command("go", "test", "-count=1", "-run", "^TestGzipSameOnEveryArchitecture$", "-v", ".")
	cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0", "SLIPWAY_GZIP_PRINT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test for 386: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if other, ok := strings.CutPrefix(line, "gzip-sample "); ok {
			if other != got {
				t.Errorf("the same bytes compress to %s on 386 and %s on amd64", other, got)
			}
			return
		}
	}
	t.Fatalf("the 386 run printed no digest:\n%s", out)
}
