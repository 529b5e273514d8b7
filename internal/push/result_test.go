package push

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestResultLine: what a destination's line says, whatever the progress
// mode prints it in (registry.TestPrinterModes).
func TestResultLine(t *testing.T) {
	repo, _ := name.NewRepository("r.example/app")
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	got := ResultLine(Result{Repo: repo, Digest: d, Tags: []string{"1.0.0", "latest"}, Referrers: "tag",
		Stats: Stats{Uploaded: 1, UploadedBytes: 3 << 20, Existing: 2, Artifacts: 2, Requests: 9, Retries: 1}, Duration: 1234 * time.Millisecond})
	for _, w := range []string{"r.example/app@sha256:abab", "1 blobs uploaded (3.0 MiB), 2 existing", "referrers by fallback tag, 2 new; tags 1.0.0, latest; 9 requests, 1 retried in 1.23s"} {
		if !strings.Contains(got, w) {
			t.Errorf("ResultLine lacks %q:\n%q", w, got)
		}
	}
}

func TestResultLineOnFailureNamesOnlyWhere(t *testing.T) {
	repo, _ := name.NewRepository("r.example/app")
	got := ResultLine(Result{Repo: repo, Err: errors.New("x\ny"), Duration: 2 * time.Second})
	if got != "r.example/app: failed after 2s" {
		t.Errorf("resultLine = %q", got)
	}
}
