package provenance_test

import (
	"bufio"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

var (
	indexDigest = "sha256:" + strings.Repeat("a", 64)
	amd64Digest = "sha256:" + strings.Repeat("b", 64)
	baseDigest  = "sha256:" + strings.Repeat("c", 64)
)

// dist writes a record whose one binary is testdata/apps/vulnerable,
// built for real (module mode, so the build info carries go.sum's hashes).
func dist(t *testing.T) (string, *record.Record) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "app")
	testkit.CopyDir(t, filepath.Join(testkit.RepoRoot(t), "testdata", "apps", "vulnerable"), src)
	if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "app")
	cmd := exec.Command("go", "build", "-mod=mod", "-trimpath", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the sample app: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	rec := &record.Record{
		SchemaVersion: 1, Slipway: "v0.9.0", Module: "example.com/app", Version: "v1.2.3", Commit: commit, GoVersion: "go1.26.8",
		Artifacts: []record.Artifact{{Name: "app", Path: "bin/app", Platform: "linux/amd64", OS: "linux", Arch: "amd64", SHA256: hex.EncodeToString(sum[:])}},
		Image: &record.Image{
			Ref: "ghcr.io/acme/app", Digest: indexDigest, Base: "cgr.dev/chainguard/static:latest", BaseDigest: baseDigest,
			Platforms: []record.PlatformImage{{Platform: "linux/amd64", Digest: amd64Digest}},
		},
	}
	return dir, rec
}

func decode(t *testing.T, st []byte) (subjects []map[string]any, p provenance.Provenance) {
	t.Helper()
	var s struct {
		Subject   []map[string]any      `json:"subject"`
		Predicate provenance.Provenance `json:"predicate"`
	}
	if err := json.Unmarshal(st, &s); err != nil {
		t.Fatal(err)
	}
	return s.Subject, s.Predicate
}

func TestStatementGitHub(t *testing.T) {
	dir, rec := dist(t)
	env := map[string]string{
		"GITHUB_SERVER_URL":   "https://github.com",
		"GITHUB_WORKFLOW_REF": "acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
		"GITHUB_RUN_ATTEMPT":  "2",
	}
	info := ci.Info{Platform: "github", Repository: "acme/app", Ref: "refs/tags/v1.2.3", Commit: commit, RunURL: "https://github.com/acme/app/actions/runs/99"}
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	finished := started.Add(3 * time.Minute)
	st, err := provenance.Statement(provenance.Input{
		Record: rec, Dir: dir, Getenv: func(k string) string { return env[k] }, Info: info,
		Flags: map[string]string{"platforms": "linux/amd64"}, Started: started, Finished: finished,
	})
	if err != nil {
		t.Fatal(err)
	}
	subjects, p := decode(t, st)
	var names []string
	for _, s := range subjects {
		names = append(names, s["name"].(string))
	}
	if diff := cmp.Diff([]string{"ghcr.io/acme/app", "ghcr.io/acme/app (linux/amd64)", "bin/app"}, names); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
	if p.BuildDefinition.BuildType != provenance.BuildType {
		t.Errorf("buildType = %s", p.BuildDefinition.BuildType)
	}
	wantExt := provenance.ExternalParameters{
		Repository: "https://github.com/acme/app", Ref: "refs/tags/v1.2.3",
		Workflow: &provenance.Workflow{Repository: "https://github.com/acme/app", Path: ".github/workflows/release.yml", Ref: "refs/tags/v1.2.3"},
		Module:   "example.com/app", Version: "v1.2.3", Platforms: []string{"linux/amd64"},
		Flags: map[string]string{"platforms": "linux/amd64"},
	}
	if diff := cmp.Diff(wantExt, p.BuildDefinition.ExternalParameters); diff != "" {
		t.Errorf("externalParameters (-want +got):\n%s", diff)
	}
	// The builder is the identity Fulcio certifies for this workflow.
	if got, want := p.RunDetails.Builder.ID, "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"; got != want {
		t.Errorf("builder.id = %s, want %s", got, want)
	}
	if got, want := p.RunDetails.Metadata.InvocationID, "https://github.com/acme/app/actions/runs/99/attempts/2"; got != want {
		t.Errorf("invocationId = %s, want %s", got, want)
	}
	if p.RunDetails.Metadata.StartedOn != "2026-12-01T10:00:00Z" || p.RunDetails.Metadata.FinishedOn != "2026-12-01T10:03:00Z" {
		t.Errorf("times = %+v", p.RunDetails.Metadata)
	}

	deps := map[string]provenance.ResourceDesc{}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		deps[d.Name+"|"+d.URI] = d
	}
	if d, ok := deps["|git+https://github.com/acme/app@refs/tags/v1.2.3"]; !ok || d.Digest["gitCommit"] != commit {
		t.Errorf("no source dependency at the commit: %v", p.BuildDefinition.ResolvedDependencies[:2])
	}
	if _, ok := deps["go|https://go.dev/dl/go1.26.8"]; !ok {
		t.Error("no Go toolchain dependency")
	}
	if d := deps["base image|cgr.dev/chainguard/static:latest"]; d.Digest["sha256"] != strings.Repeat("c", 64) {
		t.Errorf("base image dependency = %+v", d)
	}
	// Every module in the binary's build info is there, with go.sum's
	// hash as goModuleH1.
	bi, err := buildinfo.ReadFile(filepath.Join(dir, "bin", "app"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) != 2 {
		t.Fatalf("the sample app lists %d modules, want 2", len(bi.Deps))
	}
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		d, ok := deps[m.Path+"|pkg:golang/"+m.Path+"@"+m.Version]
		if !ok {
			t.Errorf("module %s@%s is missing", m.Path, m.Version)
			continue
		}
		sum, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(m.Sum, "h1:"))
		if d.Digest["goModuleH1"] != hex.EncodeToString(sum) {
			t.Errorf("module %s: goModuleH1 = %s, want %x", m.Path, d.Digest["goModuleH1"], sum)
		}
	}
	// And the h1 hashes are the ones the app's go.sum pins.
	text := deps["golang.org/x/text|pkg:golang/golang.org/x/text@v0.3.6"]
	if want := goSumH1(t, "golang.org/x/text", "v0.3.6"); text.Digest["goModuleH1"] != want {
		t.Errorf("golang.org/x/text goModuleH1 = %s, go.sum says %s", text.Digest["goModuleH1"], want)
	}
}

// goSumH1 reads a module's h1 hash from the sample app's go.sum, in hex.
func goSumH1(t *testing.T, mod, version string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), "testdata", "apps", "vulnerable", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == mod && fields[1] == version {
			b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fields[2], "h1:"))
			return hex.EncodeToString(b)
		}
	}
	t.Fatalf("%s %s is not in go.sum", mod, version)
	return ""
}

func TestStatementGitLabAndLocal(t *testing.T) {
	dir, rec := dist(t)
	tests := []struct {
		name        string
		info        ci.Info
		env         map[string]string
		builder     string
		invocation  string
		workflowRef string
	}{
		{
			name: "gitlab",
			info: ci.Info{Platform: "gitlab", Repository: "acme/app", Ref: "refs/heads/main", RunURL: "https://gitlab.com/acme/app/-/jobs/7"},
			env:  map[string]string{"CI_SERVER_HOST": "gitlab.com", "CI_PROJECT_URL": "https://gitlab.com/acme/app", "CI_CONFIG_PATH": ".gitlab-ci.yml"},
			// Fulcio's GitLab identity: https://{{ci_config_ref_uri}}.
			builder:    "https://gitlab.com/acme/app//.gitlab-ci.yml@refs/heads/main",
			invocation: "https://gitlab.com/acme/app/-/jobs/7",
		},
		{
			name:    "local",
			info:    ci.Info{Platform: "local"},
			builder: provenance.LocalBuilder,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := provenance.Statement(provenance.Input{Record: rec, Dir: dir, Getenv: func(k string) string { return tt.env[k] }, Info: tt.info})
			if err != nil {
				t.Fatal(err)
			}
			_, p := decode(t, st)
			if p.RunDetails.Builder.ID != tt.builder || p.RunDetails.Metadata.InvocationID != tt.invocation {
				t.Errorf("builder %q invocation %q; want %q %q", p.RunDetails.Builder.ID, p.RunDetails.Metadata.InvocationID, tt.builder, tt.invocation)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	dir, rec := dist(t)
	good, err := provenance.Statement(provenance.Input{Record: rec, Dir: dir, Info: ci.Info{Platform: "local"}, Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	pred := func(m map[string]any) map[string]any { return m["predicate"].(map[string]any) }
	tests := map[string][]byte{
		"no builder id": edit(func(m map[string]any) {
			pred(m)["runDetails"].(map[string]any)["builder"] = map[string]any{"id": ""}
		}),
		"no buildType":  edit(func(m map[string]any) { pred(m)["buildDefinition"].(map[string]any)["buildType"] = "" }),
		"unknown field": edit(func(m map[string]any) { pred(m)["buildDefinition"].(map[string]any)["extra"] = 1 }),
		"short digest": edit(func(m map[string]any) {
			m["subject"].([]any)[0].(map[string]any)["digest"] = map[string]any{"sha256": "abcd"}
		}),
		"finished before started": edit(func(m map[string]any) {
			pred(m)["runDetails"].(map[string]any)["metadata"].(map[string]any)["finishedOn"] = "2000-01-01T00:00:00Z"
		}),
		"other predicate type": edit(func(m map[string]any) { m["predicateType"] = "https://slsa.dev/provenance/v0.2" }),
	}
	if err := provenance.Validate(good); err != nil {
		t.Fatalf("the good statement does not validate: %v", err)
	}
	for name, st := range tests {
		t.Run(name, func(t *testing.T) {
			if err := provenance.Validate(st); err == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}
