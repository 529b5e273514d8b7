package e2e

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// singleWorkflow images both platforms in one job, with the settings of
// matrix-example.yml's jobs: what the fan-in must reproduce.
var singleWorkflow = sampleWorkflow("single", "", `      - run: cp -R dist "$SLIPWAY_ACT_ARTIFACTS/single"
`)

// TestMatrixExample runs .github/workflows/matrix-example.yml under act: a
// build-and-image job per platform, then a job merging their images. The
// merged index must hold both platforms and be the index one job imaging
// both platforms writes (TestImageAction checks the same within one job;
// this is the two-job workflow users copy, with the hand-over between jobs).
func TestMatrixExample(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go")
	must(t, slipwayBin)
	root := must(t, repoRoot)
	repo, head := newRepo(t, map[string]string{
		".github/workflows/matrix-example.yml": readFile(t, filepath.Join(root, ".github", "workflows", "matrix-example.yml")),
		".github/workflows/single.yml":         singleWorkflow,
	})

	arts := t.TempDir()
	log, err := runActArtifacts(t, repo, "matrix-example.yml", arts)
	if err != nil {
		t.Fatalf("act: %v", err)
	}
	// Three jobs, each a success: two matrix legs and the merge.
	var jobs []string
	for _, e := range log {
		if e.JobResult != "" {
			part, _ := e.Matrix["part"].(string)
			jobs = append(jobs, e.JobID+" "+part+" "+e.JobResult)
		}
	}
	slices.Sort(jobs)
	want := []string{"build linux-amd64 success", "build linux-arm64 success", "merge  success"}
	if diff := cmp.Diff(want, jobs); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}

	// Each leg imaged its own platform only: the work really fanned out.
	for _, part := range []string{"linux-amd64", "linux-arm64"} {
		rec := loadImaged(t, filepath.Join(arts, "dist-"+part))
		if got, want := imagedPlatforms(rec), []string{strings.Replace(part, "-", "/", 1)}; !slices.Equal(got, want) {
			t.Errorf("leg %s imaged %v, want %v", part, got, want)
		}
	}

	merged := loadImaged(t, filepath.Join(arts, "merged"))
	if got := imagedPlatforms(merged); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("merged record's platforms %v, want linux/amd64 and linux/arm64", got)
	}
	if merged.Commit != head {
		t.Errorf("merged record from commit %s, want %s", merged.Commit, head)
	}
	idx, err := testkit.LayoutIndex(t, filepath.Join(arts, "merged", merged.Image.Layout)).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var inIndex []string
	for _, d := range idx.Manifests {
		inIndex = append(inIndex, d.Platform.OS+"/"+d.Platform.Architecture)
	}
	slices.Sort(inIndex)
	if !slices.Equal(inIndex, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("merged index holds %v, want linux/amd64 and linux/arm64", inIndex)
	}
	// The merge step's outputs, as the workflow's next step saw them.
	shown := "merged index " + merged.Image.Digest + " for linux/amd64,linux/arm64"
	if !slices.ContainsFunc(log, func(e matrixEntry) bool { return e.RawOutput && strings.TrimSpace(e.Msg) == shown }) {
		t.Errorf("the merge job did not print %q", shown)
	}

	slog, err := runActArtifacts(t, repo, "single.yml", arts)
	if err != nil || slog.jobResult() != "success" {
		t.Fatalf("act single.yml: %v, job %q", err, slog.jobResult())
	}
	single := loadImaged(t, filepath.Join(arts, "single"))
	if merged.Image.Digest != single.Image.Digest {
		t.Errorf("merged index %s, one job imaging both platforms gave %s", merged.Image.Digest, single.Image.Digest)
	}
}

// runActArtifacts runs one workflow of repo with act in host mode, as
// runAct does, with dir as SLIPWAY_ACT_ARTIFACTS: what stands in for the
// artifact server act lacks. It returns act's JSON log with each entry's
// job and matrix.
func runActArtifacts(t *testing.T, repo, workflow, dir string) (matrixLog, error) {
	t.Helper()
	args := []string{"push",
		"-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted",
		"--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"),
		"--no-cache-server",
		"--env", "SLIPWAY_ACT_ARTIFACTS=" + dir,
	}
	// act fetches every remote action a workflow names, even one its if:
	// skips, and this machine has no GitHub: each is replaced by a
	// stand-in that fails the job if it ever runs.
	wf := readFile(t, filepath.Join(repo, ".github", "workflows", workflow))
	args = append(args, standIns(t, remoteUses(wf), nil, func(string) string { return failingStandIn })...)
	o, err := run(t, repo, toolEnv(t), "act", args...)
	logOutput(t, "act "+workflow, o)
	var log matrixLog
	sc := bufio.NewScanner(strings.NewReader(o.Stdout))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e matrixEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			log = append(log, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading act's log: %v", err)
	}
	return log, err
}

// matrixEntry is an act log entry with the job it belongs to.
type matrixEntry struct {
	actEntry
	JobID  string         `json:"jobID"`
	Matrix map[string]any `json:"matrix"`
}

type matrixLog []matrixEntry

func (l matrixLog) jobResult() string {
	for _, e := range slices.Backward(l) {
		if e.JobResult != "" {
			return e.JobResult
		}
	}
	return ""
}

// loadImaged loads the record in dir, which must have an image section.
func loadImaged(t *testing.T, dir string) *record.Record {
	t.Helper()
	rec, err := record.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil {
		t.Fatalf("%s/slipway.json has no image section", dir)
	}
	return rec
}

func imagedPlatforms(rec *record.Record) []string {
	var ps []string
	for _, p := range rec.Image.Platforms {
		ps = append(ps, p.Platform)
	}
	slices.Sort(ps)
	return ps
}
