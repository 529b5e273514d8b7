package registry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPrinterModes(t *testing.T) {
	repo, _ := name.NewRepository("r.example/app")
	d := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, Size: 3 << 20}
	done := "r.example/app@" + d.Digest.String() + ": 1 blobs uploaded (3.0 MiB), 2 existing, 0 mounted (0 B); referrers by fallback tag, 2 new; tags 1.0.0, latest; 9 requests, 1 retried in 1.23s"
	for _, tc := range []struct {
		mode      string
		want, not []string
	}{
		{ProgressTTY, []string{"\r\x1b[Kpushing r.example/app 1.5 MiB/6.0 MiB", "retrying in 500ms: boom", "1 blobs uploaded (3.0 MiB), 2 existing", "referrers by fallback tag, 2 new; tags 1.0.0, latest; 9 requests, 1 retried in 1.23s"}, []string{"uploaded sha256:"}},
		{ProgressPlain, []string{"r.example/app: uploaded sha256:abababababab (3.0 MiB)\n", "retrying in 500ms: boom"}, []string{"\r"}},
		{ProgressQuiet, []string{"retrying in 500ms: boom", "r.example/app@sha256:abab"}, []string{"\r", "uploaded sha256:"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var b strings.Builder
			p := newPrinter(&b, tc.mode)
			p.now = func() time.Time { return time.Unix(0, 0).Add(time.Duration(len(b.String())) * time.Second) }
			p.Start(repo, 6<<20)
			p.Bytes(repo, 3<<19)
			p.Retry(repo, "uploading x", errors.New("boom"), 500*time.Millisecond)
			p.Blob(repo, d, Uploaded)
			p.Done(repo, done)
			out := b.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%q", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %q:\n%q", n, out)
				}
			}
			if tc.mode == ProgressTTY && !strings.HasSuffix(out, "\n") {
				t.Errorf("a finished push leaves the progress line behind: %q", out)
			}
		})
	}
}
