package scan

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/testkit"
)

// TestOnlySlipwayScanLinksTrivy: trivy (and the other scanners) stay out
// of every other step binary, and out of every package but the adapter.
func TestOnlySlipwayScanLinksTrivy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goList := func(args ...string) string {
		cmd := exec.Command("go", append([]string{"list", "-e"}, args...)...)
		cmd.Dir = testkit.RepoRoot(t)
		cmd.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2", "GOFLAGS=-mod=readonly")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	for _, line := range strings.Split(strings.TrimSpace(goList("-f", "{{.ImportPath}} {{.Imports}}", "./...")), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		// trivy's own packages, not trivy-db (its database format, which
		// the test fixtures build databases with).
		if strings.Contains(imports, "github.com/aquasecurity/trivy/") &&
			pkg != "github.com/slipwayci/slipway/internal/scan/trivy" {
			t.Errorf("%s imports trivy; only the adapter may", pkg)
		}
	}
	for _, cmd := range strings.Fields(goList("./cmd/...")) {
		deps := goList("-deps", cmd)
		linksTrivy := strings.Contains(deps, "github.com/aquasecurity/trivy/")
		linksScanners := strings.Contains(deps, "github.com/securego/gosec") || strings.Contains(deps, "golang.org/x/vuln/")
		if scan := strings.HasSuffix(cmd, "/cmd/slipway-scan"); scan != linksTrivy || scan != linksScanners {
			t.Errorf("%s: links trivy %v, gosec or govulncheck %v", cmd, linksTrivy, linksScanners)
		}
	}
}
