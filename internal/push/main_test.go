package push

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registry"
)

// testDist writes a dist directory as slipway image leaves it: a record
// with an image section, an OCI layout and an SBOM per platform. It
// returns the directory holding dist.
func testDist(t *testing.T) (string, *record.Record) {
	t.Helper()
	dir := t.TempDir()
	dist := filepath.Join(dir, "dist")
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(dist, "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	d, _ := idx.Digest()
	rec := &record.Record{
		Module: "example.com/app", Version: "1.0.0", Commit: commit, Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26",
		Image: &record.Image{Layout: "image", Digest: d.String(), MediaType: string(im.MediaType), Base: "static"},
	}
	for i, m := range im.Manifests {
		plat := []string{"linux/amd64", "linux/arm64"}[i]
		file := "sbom/" + strings.ReplaceAll(plat, "/", "_") + ".spdx.json"
		content := []byte(`{"spdxVersion":"SPDX-2.3","name":"` + plat + `"}`)
		if err := os.MkdirAll(filepath.Join(dist, "sbom"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, file), content, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		rec.Image.Platforms = append(rec.Image.Platforms, record.PlatformImage{
			Platform: plat, Digest: m.Digest.String(),
			SBOMs: []record.SBOM{{Format: "spdx-2.3+json", Path: file, SHA256: hex.EncodeToString(sum[:])}},
		})
	}
	if err := rec.Save(dist); err != nil {
		t.Fatal(err)
	}
	return dir, rec
}

// runMain runs the push step in-process the way cmd/slipway-push does.
func runMain(t *testing.T, dir string, environ []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Main(ctx, cli.Env{
		Args: args, Environ: append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, environ...),
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Dir: dir,
	})
	code = cli.ExitCode(&errb, "slipway push", err)
	return out.String(), errb.String(), code
}

func TestMainUsageErrors(t *testing.T) {
	dir, _ := testDist(t)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no destination", nil, "", "no destination: give --to"},
		{"a tag in --to", []string{"--to", "ghcr.io/o/app:v1"}, "", "without a tag or digest"},
		{"a digest in --to", []string{"--to", "ghcr.io/o/app@sha256:" + strings.Repeat("a", 64)}, "", "without a tag or digest"},
		{"a bad repository", []string{"--to", "ghcr.io/o/App Name"}, "", "--to ghcr.io/o/App Name"},
		{"a URL in --to", []string{"--to", "http://localhost:5000/team/app"}, "", "--to http://localhost:5000/team/app: drop the scheme: give localhost:5000/team/app, and --plain-http localhost:5000"},
		{"username without a password", []string{"--to", "r.example/app", "--username", "u"}, "", "--username needs --password-stdin"},
		{"password-stdin without username", []string{"--to", "r.example/app", "--password-stdin"}, "pw", "--password-stdin needs --username"},
		{"empty password", []string{"--to", "r.example/app", "--username", "u", "--password-stdin"}, "\n", "standard input is empty"},
		{"no record", []string{"--to", "r.example/app", "--dist", "nowhere"}, "", "run slipway build first"},
		{"bad tag spec", []string{"--to", "r.example/app", "--tag", "type=nope"}, "", "unknown type \"nope\""},
		{"unknown flag", []string{"--tags", "x"}, "", "flag provided but not defined: -tags"},
		{"stray argument", []string{"--to", "r.example/app", "extra"}, "", "unexpected arguments extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runMain(t, dir, nil, tc.stdin, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line containing %q", code, stderr, cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestMainWithoutImageSection(t *testing.T) {
	dir, rec := testDist(t)
	rec.Image = nil
	if err := rec.Save(filepath.Join(dir, "dist")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runMain(t, dir, nil, "", "--to", "r.example/app")
	if code != cli.ExitUsage || !strings.Contains(stderr, "no image section; run slipway image first") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestMainDryRunComputesTagsFromGitHub(t *testing.T) {
	dir, _ := testDist(t)
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := runMain(t, dir, []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out,
		"GITHUB_REF=refs/tags/v2.1.0", "GITHUB_REF_TYPE=tag", "GITHUB_REF_NAME=v2.1.0",
		"INPUT_TO=ghcr.io/Owner/App", "INPUT_DRY_RUN=true",
	}, "")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "would push ghcr.io/owner/app@sha256:") || !strings.Contains(stdout, "with 2 referrers") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "pushing to ghcr.io/owner/app; repository names are lower case") {
		t.Errorf("no note about lower-casing:\n%s", stderr)
	}
	got := readOutputs(t, out)
	if want := "2.1.0,2.1,2,sha-0123456,latest"; got["tags"] != want {
		t.Errorf("tags output %q, want %q", got["tags"], want)
	}
}

// readOutputs parses a GITHUB_OUTPUT file of name<<DELIM blocks.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+2 < len(lines); i++ {
		if k, delim, ok := strings.Cut(lines[i], "<<"); ok {
			var v []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				v = append(v, lines[i])
			}
			out[k] = strings.Join(v, "\n")
		}
	}
	return out
}

func TestMainOnGitHub(t *testing.T) {
	dir, rec := testDist(t)
	p := memRegistry(t)
	tmp := t.TempDir()
	out, summary := filepath.Join(tmp, "out"), filepath.Join(tmp, "summary.md")
	const secret = "hunter2-but-longer"
	stdout, stderr, code := runMain(t, dir, []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out, "GITHUB_STEP_SUMMARY=" + summary,
		"GITHUB_REF=refs/heads/main", "GITHUB_REF_TYPE=branch", "GITHUB_REF_NAME=main",
		"INPUT_TO=" + p.Host + "/team/app\n" + p.Host + "/mirror/app",
		"INPUT_TAG=type=ref,event=branch\ntype=raw,value=build-{{sha}}",
		"INPUT_USERNAME=ci",
	}, secret+"\n", "--password-stdin")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// The secret reaches the runner once, to be masked, and nowhere else.
	if strings.Count(stdout+stderr, secret) != 1 || !strings.Contains(stdout, "::add-mask::"+secret) {
		t.Errorf("the password is printed other than in ::add-mask::\n%s%s", stdout, stderr)
	}
	got := readOutputs(t, out)
	want := map[string]string{
		"digest": rec.Image.Digest,
		"refs":   p.Host + "/team/app@" + rec.Image.Digest + "," + p.Host + "/mirror/app@" + rec.Image.Digest,
		"tags":   "main,build-0123456",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"### Slipway push: example.com/app 1.0.0", "| " + p.Host + "/team/app | pushed |", "| " + p.Host + "/mirror/app | pushed |", "`build-0123456`"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("summary lacks %q:\n%s", w, md)
		}
	}
	// In CI, one line per destination and no per-blob chatter.
	if n := strings.Count(stderr, "blobs uploaded"); n != 2 || strings.Contains(stderr, ": uploaded sha256:") {
		t.Errorf("CI log should have one line per destination:\n%s", stderr)
	}
}

func TestMainOnGitLab(t *testing.T) {
	dir, rec := testDist(t)
	p := memRegistry(t)
	stdout, stderr, code := runMain(t, dir, []string{
		"GITLAB_CI=true", "CI_COMMIT_SHA=" + commit, "CI_COMMIT_BRANCH=feature/Login",
		"CI_DEFAULT_BRANCH=main", "SLIPWAY_TO=" + p.Host + "/group/app", "SLIPWAY_SBOM=false",
	}, "")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	dotenv, err := os.ReadFile(filepath.Join(dir, "slipway.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"SLIPWAY_PUSH_DIGEST=" + rec.Image.Digest,
		"SLIPWAY_PUSH_TAGS=feature-Login,sha-0123456",
		"SLIPWAY_PUSH_REFS=" + p.Host + "/group/app@" + rec.Image.Digest,
	} {
		if !strings.Contains(string(dotenv), w+"\n") {
			t.Errorf("dotenv lacks %s:\n%s", w, dotenv)
		}
	}
	for _, q := range p.Requests() {
		if strings.Contains(q.Path, "/manifests/sha256-") {
			t.Errorf("--sbom=false still wrote referrers: %s %s", q.Method, q.Path)
		}
	}
}

func TestMainFailureMasksSecretsInTheError(t *testing.T) {
	dir, _ := testDist(t)
	// A registry that echoes the credentials it was sent in its error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		u, pw, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":[{"code":"DENIED","message":"user ` + u + ` with password ` + pw + ` may not push"}]}`))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	const secret = "s3cr3t-value-xyz"
	stdout, stderr, code := runMain(t, dir, nil, secret, "--to", host+"/app", "--username", "ci", "--password-stdin")
	if code != cli.ExitFailure {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Errorf("the secret was printed:\n%s%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "with password *** may not push") {
		t.Errorf("the registry's message is not shown, masked:\n%s", stderr)
	}
}

func TestSBOMChangedSinceImage(t *testing.T) {
	dir, rec := testDist(t)
	if err := os.WriteFile(filepath.Join(dir, "dist", rec.Image.Platforms[0].SBOMs[0].Path), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runMain(t, dir, nil, "", "--to", "r.example/app", "--dry-run")
	if code != cli.ExitFailure || !strings.Contains(stderr, "changed since slipway image wrote it") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestBaseRepository(t *testing.T) {
	for base, want := range map[string]string{
		"static":        "",
		"scratch":       "",
		"oci:/tmp/base": "",
		"gcr.io/distroless/static-debian12:nonroot":        "gcr.io/distroless/static-debian12",
		"ghcr.io/o/base@sha256:" + strings.Repeat("a", 64): "ghcr.io/o/base",
	} {
		got := ""
		if r := baseRepository(base); len(r) == 1 {
			got = r[0].String()
		}
		if got != want {
			t.Errorf("baseRepository(%q) = %q, want %q", base, got, want)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMainAttachesAStatementAboutTheImage(t *testing.T) {
	dir, rec := testDist(t)
	p := memRegistry(t)
	statement := func(digest string) string {
		alg, hex, _ := strings.Cut(digest, ":")
		return `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"` + alg + `":"` + hex + `"}}],"predicateType":"https://slipway.dev/attestations/scan/v1","predicate":{}}`
	}
	if err := os.WriteFile(filepath.Join(dir, "dist", "scan.intoto.json"), []byte(statement(rec.Image.Digest)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.intoto.json"), []byte(statement("sha256:"+strings.Repeat("e", 64))), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := p.Host + "/team/app"

	_, stderr, code := runMain(t, dir, nil, "", "--to", dst, "--tag", "x", "--attach", "other.intoto.json")
	if code != cli.ExitUsage || !strings.Contains(stderr, "not this image") {
		t.Errorf("a statement about another image: exit %d, %s", code, stderr)
	}
	stdout, stderr, code := runMain(t, dir, nil, "", "--to", dst, "--tag", "x", "--sbom=false", "--attach", "dist/scan.intoto.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	r, err := fastRegistry(t).Dial(context.Background(), repo(t, p.Host, "team/app"), registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := r.Referrers(context.Background(), mustHash(t, rec.Image.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].ArtifactType != registry.MediaTypeInToto || refs[0].Annotations[registry.AnnotationPredicateType] != "https://slipway.dev/attestations/scan/v1" {
		t.Errorf("referrers of the index = %+v, want the statement with its predicate type", refs)
	}

	// Without --attach, the statement in dist goes along all the same.
	auto := p.Host + "/team/auto"
	if stdout, stderr, code := runMain(t, dir, nil, "", "--to", auto, "--tag", "x", "--sbom=false"); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	r, err = fastRegistry(t).Dial(context.Background(), repo(t, p.Host, "team/auto"), registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs, err = r.Referrers(context.Background(), mustHash(t, rec.Image.Digest)); err != nil || len(refs) != 1 || refs[0].ArtifactType != registry.MediaTypeInToto {
		t.Errorf("without --attach: referrers %+v, %v; want dist's scan statement", refs, err)
	}

	// A statement in dist about another image is skipped with a warning.
	if err := os.WriteFile(filepath.Join(dir, "dist", "scan.intoto.json"), []byte(statement("sha256:"+strings.Repeat("e", 64))), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runMain(t, dir, nil, "", "--to", p.Host+"/team/stale", "--tag", "x", "--sbom=false")
	if code != 0 || !strings.Contains(stderr, "warning: not attaching scan.intoto.json") {
		t.Errorf("stale statement: exit %d, stderr %q", code, stderr)
	}
}

func TestAttachSpec(t *testing.T) {
	rec := &record.Record{Date: "2026-01-02T03:04:05Z", Image: &record.Image{}}
	dir := t.TempDir()
	for _, f := range []string{"a.spdx.json", "notes.txt", "b.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for spec, want := range map[string][2]string{
		"a.spdx.json":                   {registry.MediaTypeSPDX, ""},
		"notes.txt":                     {"application/octet-stream", ""},
		"b.json":                        {"application/json", ""},
		"b.json:application/vnd.x+json": {"application/vnd.x+json", "application/vnd.x+json"},
		"a.spdx.json:application/vnd.y": {registry.MediaTypeSPDX, "application/vnd.y"},
	} {
		a, err := fileAttachment(dir, spec, mustHash(t, "sha256:"+strings.Repeat("a", 64)), rec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if a.MediaType != want[0] || a.ArtifactType != want[1] {
			t.Errorf("%s: media type %q, artifact type %q; want %q", spec, a.MediaType, a.ArtifactType, want)
		}
	}
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
