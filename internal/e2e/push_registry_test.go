package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/push"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// pushSample is the sample app tagged v1.2.3, built and imaged once per
// run by the real slipway binaries: a git checkout with dist/ holding the
// record, the OCI layout and the SBOMs. Tests only read it.
var pushSample = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin, err := slipwayBin()
	if err != nil {
		return "", err
	}
	dir, err := sharedTempDir("slipway-e2e-push-")
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, sampleApp))); err != nil {
		return "", fmt.Errorf("copying the sample: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("dist/\n"), 0o644); err != nil {
		return "", err
	}
	gitEnv := append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Slipway E2E", "GIT_AUTHOR_EMAIL=e2e@slipway.invalid", "GIT_AUTHOR_DATE="+commitDate,
		"GIT_COMMITTER_NAME=Slipway E2E", "GIT_COMMITTER_EMAIL=e2e@slipway.invalid", "GIT_COMMITTER_DATE="+commitDate)
	var env []string
	for _, kv := range gitEnv {
		if k, _, _ := strings.Cut(kv, "="); !leaks(k) {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), toolTimeout, fmt.Errorf("building and imaging the push sample did not finish in %s", toolTimeout))
	defer cancel()
	for _, step := range [][]string{
		{"git", "init", "-q", "-b", "main"},
		{"git", "add", "-A"},
		{"git", "commit", "-q", "-m", "sample"},
		{"git", "tag", "v1.2.3"},
		{filepath.Join(bin, "slipway-build"), "--platforms", "linux/amd64,linux/arm64"},
		{filepath.Join(bin, "slipway-image"), "--cache", "off"},
	} {
		cmd := exec.CommandContext(ctx, step[0], step[1:]...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	return dir, nil
})

// pushResult is what one run of the push step printed, its Markdown
// summary and its exit code.
type pushResult struct {
	Stdout, Stderr, Summary string
	Code                    int
}

// pushRun runs slipway push in-process in dir, the way cmd/slipway-push
// does, with a clean environment plus env, and stdin as standard input.
func pushRun(t *testing.T, dir string, env []string, stdin string, args ...string) pushResult {
	t.Helper()
	home := t.TempDir()
	environ := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "SLIPWAY_SUMMARY_FILE=" + filepath.Join(home, "summary.md")}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(testContext(t), toolTimeout)
	defer cancel()
	err := push.Main(ctx, cli.Env{
		Args: args, Environ: append(environ, env...), Stdin: strings.NewReader(stdin),
		Stdout: &stdout, Stderr: &stderr, Dir: dir,
	})
	code := cli.ExitCode(&stderr, "slipway push", err)
	summary, _ := os.ReadFile(filepath.Join(home, "summary.md"))
	return pushResult{stdout.String(), stderr.String(), string(summary), code}
}

// pushOK runs slipway push and fails the test unless it succeeds.
func pushOK(t *testing.T, dir string, env []string, args ...string) pushResult {
	t.Helper()
	r := pushRun(t, dir, env, "", args...)
	if r.Code != 0 {
		t.Fatalf("slipway push %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// pushRecord loads the sample's record.
func pushRecord(t *testing.T, dir string) *record.Record {
	t.Helper()
	rec, err := record.Load(filepath.Join(dir, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil || len(rec.Image.Platforms) != 2 {
		t.Fatalf("the sample's record has no image of two platforms: %+v", rec.Image)
	}
	return rec
}

// pushOpts are go-containerregistry options for reading what was pushed.
func pushOpts(r *registrytest.Registry, a registrytest.Auth) []remote.Option {
	opts := []remote.Option{remote.WithTransport(r.Transport())}
	if a.User != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: a.User, Password: a.Password}))
	}
	return opts
}

// pushCheckImage pulls repo:tag straight from the registry and checks it
// is the record's index, whole, with each platform's SBOMs as referrers
// under the fallback tag.
func pushCheckImage(t *testing.T, r *registrytest.Registry, a registrytest.Auth, repo, tag, dir string) {
	t.Helper()
	rec := pushRecord(t, dir)
	ref, err := name.ParseReference(r.Direct + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	opts := pushOpts(r, a)
	idx, err := remote.Index(ref, opts...)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("%s is not a whole, valid index: %v", ref, err)
	}
	if d, _ := idx.Digest(); d.String() != rec.Image.Digest {
		t.Errorf("%s is %s, want the record's %s", ref, d, rec.Image.Digest)
	}
	for _, pi := range rec.Image.Platforms {
		fb, err := remote.Get(ref.Context().Tag("sha256-"+strings.TrimPrefix(pi.Digest, "sha256:")), opts...)
		if err != nil {
			t.Errorf("%s: no referrers fallback tag: %v", pi.Platform, err)
			continue
		}
		var list v1.IndexManifest
		if err := json.Unmarshal(fb.Manifest, &list); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, d := range list.Manifests {
			types = append(types, d.ArtifactType)
			art, err := remote.Image(ref.Context().Digest(d.Digest.String()), opts...)
			if err != nil {
				t.Fatalf("artifact %s: %v", d.Digest, err)
			}
			m, _ := art.Manifest()
			if m.Subject == nil || m.Subject.Digest.String() != pi.Digest || len(m.Layers) != 1 {
				t.Errorf("artifact %s: subject %v, %d layers; want %s and one", d.Digest, m.Subject, len(m.Layers), pi.Digest)
				continue
			}
			l, _ := art.LayerByDigest(m.Layers[0].Digest)
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			var want []byte
			for _, s := range pi.SBOMs {
				if strings.HasSuffix(d.ArtifactType, "spdx+json") == strings.HasPrefix(s.Format, "spdx") {
					want = []byte(readFile(t, filepath.Join(dir, "dist", s.Path)))
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("artifact %s (%s) does not hold the SBOM file", d.Digest, d.ArtifactType)
			}
		}
		slices.Sort(types)
		if diff := cmp.Diff([]string{"application/spdx+json", "application/vnd.cyclonedx+json"}, types); diff != "" {
			t.Errorf("%s referrers (-want +got):\n%s", pi.Platform, diff)
		}
	}
}

// pushOutputs reads the "output k=v" lines a local run prints.
func pushOutputs(stdout string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		if kv, ok := strings.CutPrefix(l, "output "); ok {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

func TestPushToRegistry(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	rec := pushRecord(t, dir)
	r := registrytest.New(t, registrytest.Options{})

	res := pushOK(t, dir, nil, "--to", r.Host+"/team/hello", "--to", r.Host+"/mirror/hello")

	// Default tags from git on a tagged commit: the release tag, its
	// minor and major, the commit, latest — as a CI run on that tag gives
	// them, so no branch tag.
	head := strings.TrimSpace(string(must(t, func() ([]byte, error) { return exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output() })))
	wantTags := []string{"1.2.3", "1.2", "1", "sha-" + head[:7], "latest"}
	outs := pushOutputs(res.Stdout)
	if outs["digest"] != rec.Image.Digest || outs["tags"] != strings.Join(wantTags, ",") {
		t.Errorf("outputs %v; want digest %s and tags %v", outs, rec.Image.Digest, wantTags)
	}
	wantRefs := r.Host + "/team/hello@" + rec.Image.Digest + "," + r.Host + "/mirror/hello@" + rec.Image.Digest
	if outs["refs"] != wantRefs {
		t.Errorf("refs output %q, want %q", outs["refs"], wantRefs)
	}
	for _, repo := range []string{"team/hello", "mirror/hello"} {
		for _, tag := range wantTags {
			pushCheckImage(t, r, registrytest.Auth{}, repo, tag, dir)
		}
	}

	// The mirror, on the same registry, got every blob by mount.
	var uploads, mounts int
	for _, q := range r.Proxy.Requests() {
		if !strings.HasPrefix(q.Path, "/v2/mirror/hello/blobs/uploads/") {
			continue
		}
		if q.Upload() {
			uploads++
		}
		if q.Query.Get("mount") != "" && q.Query.Get("from") == "team/hello" && q.Status == http.StatusCreated {
			mounts++
		}
	}
	if uploads != 0 || mounts == 0 {
		t.Errorf("the second repository had %d uploads and %d mounts; want every blob mounted", uploads, mounts)
	}
	for _, want := range []string{"| " + r.Host + "/team/hello | pushed |", "| " + r.Host + "/mirror/hello | pushed |", "fallback tag", "`latest`"} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
}

func TestPushRepushUploadsNothing(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	r := registrytest.New(t, registrytest.Options{})
	dst := r.Host + "/team/hello"
	pushOK(t, dir, nil, "--to", dst, "--tag", "stable")
	first := registrytest.UploadedBytes(r.Proxy.Requests())
	if first < 1<<20 {
		t.Fatalf("the first push uploaded only %d bytes", first)
	}
	served := len(r.Served())
	r.Proxy.Reset()

	pushOK(t, dir, nil, "--to", dst, "--tag", "stable")
	if n := registrytest.UploadedBytes(r.Proxy.Requests()); n != 0 {
		t.Errorf("the re-push uploaded %d bytes, want 0", n)
	}
	// And by the registry's own account: nothing written at all.
	for _, s := range r.Served()[served:] {
		if s.Method != http.MethodGet && s.Method != http.MethodHead {
			t.Errorf("the registry served %s %s on a re-push", s.Method, s.URI)
		}
	}
	pushCheckImage(t, r, registrytest.Auth{}, "team/hello", "stable", dir)
}

func TestPushWithAuthAndTLS(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	a := registrytest.Auth{User: "ci", Password: "pa55-Wörd-e2e"}
	r := registrytest.New(t, registrytest.Options{TLS: true, Users: map[string]string{a.User: a.Password}})
	ca := "SSL_CERT_FILE=" + r.CA.CertFile
	dst := r.Host + "/secure/hello"
	noSecret := func(t *testing.T, res pushResult) {
		t.Helper()
		b64 := base64.StdEncoding.EncodeToString([]byte(a.User + ":" + a.Password))
		for _, s := range []string{a.Password, b64} {
			if strings.Contains(res.Stdout+res.Stderr, s) {
				t.Errorf("a secret was printed:\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
			}
		}
	}

	t.Run("password on stdin", func(t *testing.T) {
		res := pushRun(t, dir, []string{ca}, a.Password+"\n", "--to", dst, "--tag", "stdin", "--username", a.User, "--password-stdin")
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		noSecret(t, res)
		pushCheckImage(t, r, a, "secure/hello", "stdin", dir)
	})
	t.Run("docker config", func(t *testing.T) {
		cfg := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(a.User + ":" + a.Password))
		writeFile(t, filepath.Join(cfg, "config.json"), `{"auths":{"`+r.Host+`":{"auth":"`+auth+`"}}}`)
		res := pushRun(t, dir, []string{ca, "DOCKER_CONFIG=" + cfg}, "", "--to", dst, "--tag", "config")
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		noSecret(t, res)
		pushCheckImage(t, r, a, "secure/hello", "config", dir)
	})
	t.Run("GitLab CI variables", func(t *testing.T) {
		env := []string{ca, "CI_REGISTRY=" + r.Host, "CI_REGISTRY_USER=" + a.User, "CI_REGISTRY_PASSWORD=" + a.Password}
		res := pushRun(t, dir, env, "", "--to", dst, "--tag", "gitlab")
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		noSecret(t, res)
		pushCheckImage(t, r, a, "secure/hello", "gitlab", dir)
	})
	t.Run("wrong password fails without printing it", func(t *testing.T) {
		wrong := "not-the-Password-42"
		res := pushRun(t, dir, []string{ca}, wrong, "--to", dst, "--tag", "wrong", "--username", a.User, "--password-stdin")
		if res.Code != cli.ExitFailure || !strings.Contains(res.Stderr, "refused the credentials") {
			t.Errorf("exit %d, stderr:\n%s\nwant 1 and the registry's refusal", res.Code, res.Stderr)
		}
		if strings.Contains(res.Stdout+res.Stderr, wrong) {
			t.Errorf("the wrong password was printed:\n%s%s", res.Stdout, res.Stderr)
		}
	})
	t.Run("unknown CA is refused, not retried", func(t *testing.T) {
		start := time.Now()
		res := pushRun(t, dir, nil, a.Password, "--to", dst, "--tag", "noca", "--username", a.User, "--password-stdin")
		if res.Code != cli.ExitFailure || !strings.Contains(res.Stderr, "certificate") {
			t.Errorf("exit %d, stderr:\n%s\nwant a certificate error", res.Code, res.Stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a certificate error took %s: it was retried", d)
		}
	})
	t.Run("an unknown CA accepted with --insecure-skip-tls-verify", func(t *testing.T) {
		res := pushRun(t, dir, nil, a.Password+"\n", "--to", dst, "--tag", "skipverify", "--username", a.User, "--password-stdin", "--insecure-skip-tls-verify", r.Host)
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		noSecret(t, res)
		pushCheckImage(t, r, a, "secure/hello", "skipverify", dir)
	})
	t.Run("plain HTTP only with --plain-http", func(t *testing.T) {
		// A registry named by a non-loopback name must not be reached over
		// plain HTTP unless named with --plain-http.
		res := pushRun(t, dir, nil, "", "--to", "registry.invalid:5000/app", "--tag", "x", "--retries", "0")
		if res.Code == 0 || strings.Contains(res.Stderr, "plain HTTP") {
			t.Errorf("exit %d, stderr:\n%s\nwant an HTTPS failure, never an HTTP attempt", res.Code, res.Stderr)
		}
	})
	for _, tag := range []string{"stdin", "config", "gitlab"} {
		if missing, err := r.Incomplete(testContext(t), "secure/hello", a); err != nil || len(missing) > 0 {
			t.Errorf("after the pushes (%s): %v %v", tag, missing, err)
		}
	}
	if tags, _ := r.Tags(testContext(t), "secure/hello", a); slices.Contains(tags, "wrong") || slices.Contains(tags, "noca") {
		t.Errorf("a failed push left a tag: %v", tags)
	}
}

func TestPushBinary(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	bin := must(t, slipwayBin)
	r := registrytest.New(t, registrytest.Options{})
	env := toolEnv(t, bin)

	out, err := run(t, dir, env, filepath.Join(bin, "slipway"), "push", "--tag", "bin")
	if err == nil || !strings.Contains(out.Stderr, "slipway push: no destination: give --to") || strings.Count(out.Stderr, "\n") != 1 {
		t.Errorf("without --to: %v\n%s", err, out.Stderr)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitUsage {
		t.Errorf("without --to: exit %v, want %d", err, cli.ExitUsage)
	}

	out, err = run(t, dir, env, filepath.Join(bin, "slipway"), "push", "--to", r.Host+"/bin/hello", "--tag", "bin")
	logOutput(t, "slipway push", out)
	if err != nil {
		t.Fatal(err)
	}
	pushCheckImage(t, r, registrytest.Auth{}, "bin/hello", "bin", dir)
}

func TestPushMountsFromTheBaseRepository(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	sample := must(t, pushSample)
	r := registrytest.New(t, registrytest.Options{})
	// A copy of the sample whose record says its base came from this
	// registry: the layers the base repository holds are mounted from it.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(sample)); err != nil {
		t.Fatal(err)
	}
	pushOK(t, dir, nil, "--to", r.Host+"/base/hello", "--tag", "1", "--sbom=false")
	var blobs int
	for _, q := range r.Proxy.Requests() {
		if q.Upload() {
			blobs++
		}
	}
	rec := pushRecord(t, dir)
	rec.Image.Base = r.Host + "/base/hello:1"
	if err := rec.Save(filepath.Join(dir, "dist")); err != nil {
		t.Fatal(err)
	}
	r.Proxy.Reset()
	res := pushOK(t, dir, nil, "--to", r.Host+"/team/hello", "--tag", "stable")

	var mounted int
	for _, q := range r.Proxy.Requests() {
		if q.Query.Get("from") == "base/hello" && q.Status == http.StatusCreated {
			mounted++
		}
	}
	// Every image blob came by mount; only the SBOMs, which the base
	// repository lacks, were uploaded.
	var sbomBytes int64
	for _, pi := range rec.Image.Platforms {
		for _, s := range pi.SBOMs {
			st, err := os.Stat(filepath.Join(dir, "dist", s.Path))
			if err != nil {
				t.Fatal(err)
			}
			sbomBytes += st.Size()
		}
	}
	if n := registrytest.UploadedBytes(r.Proxy.Requests()); mounted != blobs || n != sbomBytes+2 {
		t.Errorf("%d blobs mounted from the base and %d bytes uploaded; want %d and the SBOMs' %d (+2 for the empty config)\n%s", mounted, n, blobs, sbomBytes, res.Stderr)
	}
	pushCheckImage(t, r, registrytest.Auth{}, "team/hello", "stable", dir)
}
