package sigstoretest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Bin finds one of the programs scripts/install-test-deps.sh installs
// (cosign, fulcio, timestamp-server, rekor-server-posix): on PATH, else in
// GOPATH/bin.
func Bin(name string) (string, error) { return findBin(name) }

// Cosign runs the real cosign CLI with a home of its own, so that no TUF
// root cached on the machine, no login and no SIGSTORE_* variable of the
// caller takes part; env adds variables such as COSIGN_PASSWORD. It
// returns cosign's combined output. It skips in -short mode.
func Cosign(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("cosign is not run in -short mode")
	}
	Need(t, "cosign")
	bin, err := findBin("cosign")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	cmd.Env = append([]string{"HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"), "PATH=" + os.Getenv("PATH")}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}
