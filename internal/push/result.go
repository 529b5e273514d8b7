package push

import (
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
)

// ResultLine is one destination's outcome on one line, as Progress.Done
// hears it.
func ResultLine(r Result) string {
	if r.Err != nil {
		// The error itself ends the step's output; here, only where.
		return fmt.Sprintf("%s: failed after %s", r.Repo, r.Duration.Round(10*time.Millisecond))
	}
	s := r.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s: ", r.Repo, r.Digest)
	if s.ImageExisted {
		b.WriteString("image already there")
	} else {
		fmt.Fprintf(&b, "%d blobs uploaded (%s), %d existing, %d mounted (%s)", s.Uploaded, cli.HumanSize(s.UploadedBytes), s.Existing, s.Mounted, cli.HumanSize(s.MountedBytes))
	}
	if r.Referrers != "" {
		fmt.Fprintf(&b, "; referrers by %s, %d new", map[string]string{"api": "API", "tag": "fallback tag"}[r.Referrers], s.Artifacts)
	}
	if s.Signatures > 0 {
		fmt.Fprintf(&b, "; %d signatures", s.Signatures)
	}
	if s.LeftBehind > 0 {
		fmt.Fprintf(&b, "; %d unverified referrers left behind", s.LeftBehind)
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(&b, "; tags %s", strings.Join(r.Tags, ", "))
	}
	fmt.Fprintf(&b, "; %d requests", s.Requests)
	if s.Retries > 0 {
		fmt.Fprintf(&b, ", %d retried", s.Retries)
	}
	fmt.Fprintf(&b, " in %s", r.Duration.Round(10*time.Millisecond))
	return b.String()
}
