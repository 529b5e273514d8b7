package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// imageWorkflow images the sample app twice in one job: once after a build
// of both platforms, and once as a fan-in, merging two single-platform
// builds as matrix jobs would hand them over. Both must give one digest,
// though the labels reach the first image step as a block and the parts'
// as a plain line.
var imageWorkflow = sampleWorkflow("image", `ports: 8080
labels: |
  org.example.team=payments
`, imagePart("amd64")+imagePart("arm64")+`      - id: merge
        uses: ./actions/image
        with:
          dist: merged
          working-directory: `+sampleApp+`
          merge: |
            parts/arm64
            parts/amd64
      - name: Hand the outputs to the test
        env:
          DIGEST: ${{ steps.image.outputs.digest }}
          LAYOUT: ${{ steps.image.outputs.layout }}
          PLATFORMS: ${{ steps.image.outputs.platforms }}
          SBOM: ${{ steps.image.outputs.sbom }}
          RECORD: ${{ steps.image.outputs.record }}
          MERGED: ${{ steps.merge.outputs.digest }}
        run: |
          printf '%s' "$DIGEST" > "$SLIPWAY_E2E_OUT/digest"
          printf '%s' "$LAYOUT" > "$SLIPWAY_E2E_OUT/layout"
          printf '%s' "$PLATFORMS" > "$SLIPWAY_E2E_OUT/platforms"
          printf '%s' "$SBOM" > "$SLIPWAY_E2E_OUT/sbom"
          printf '%s' "$RECORD" > "$SLIPWAY_E2E_OUT/record"
          printf '%s' "$MERGED" > "$SLIPWAY_E2E_OUT/merged"
          cp -R dist "$SLIPWAY_E2E_OUT/dist"
`)

// imagePart are the steps of one matrix leg: build linux/arch alone into
// parts/arch and image it there, with the settings of the job's first
// image step.
func imagePart(arch string) string {
	return `      - uses: ./actions/build
        with:
          platforms: linux/` + arch + `
          dist: parts/` + arch + `
          working-directory: ` + sampleApp + `
      - uses: ./actions/image
        with:
          dist: parts/` + arch + `
          working-directory: ` + sampleApp + `
          ports: 8080
          labels: org.example.team=payments
`
}

func TestImageAction(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go")
	must(t, slipwayBin)
	repo, _ := newRepo(t, map[string]string{".github/workflows/image.yml": imageWorkflow})
	out := t.TempDir()
	log, err := runAct(t, repo, "image.yml", out)
	if err != nil {
		t.Fatalf("act: %v", err)
	}
	if got := log.jobResult(); got != "success" {
		t.Fatalf("job result = %q, want success", got)
	}

	rec, err := record.Load(filepath.Join(out, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil {
		t.Fatal("the record has no image section")
	}
	got := map[string]string{}
	for _, k := range []string{"digest", "layout", "platforms", "record", "merged"} {
		got[k] = readFile(t, filepath.Join(out, k))
	}
	want := map[string]string{
		"digest":    rec.Image.Digest,
		"layout":    "dist/image",
		"platforms": "linux/amd64,linux/arm64",
		"record":    "dist/slipway.json",
		// The fan-in gives the index the single job gave.
		"merged": rec.Image.Digest,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}

	var sboms []struct{ Platform, Format, Path string }
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "sbom"))), &sboms); err != nil {
		t.Fatalf("sbom output: %v", err)
	}
	if len(sboms) != 4 {
		t.Errorf("sbom output lists %d SBOMs, want SPDX and CycloneDX for 2 platforms: %+v", len(sboms), sboms)
	}
	for _, s := range sboms {
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(s.Path))); err != nil {
			t.Errorf("SBOM %s: %v", s.Path, err)
		}
	}

	cf, err := testkit.LayoutIndex(t, filepath.Join(out, "dist", "image")).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	// The source annotation comes from the CI platform's view of the run.
	if src := cf.Annotations["org.opencontainers.image.source"]; !strings.HasPrefix(src, "https://") {
		t.Errorf("source annotation %q, want the repository's URL from GitHub's variables", src)
	}

	var summary string
	for _, e := range log {
		if e.Command == "summary" && strings.Contains(e.Content, "Slipway image:") {
			summary = e.Content
			break
		}
	}
	if !strings.Contains(summary, rec.Image.Digest) || !strings.Contains(summary, "| linux/arm64 |") {
		t.Errorf("no image summary with the digest and a row per platform in act's log:\n%s", summary)
	}
}
