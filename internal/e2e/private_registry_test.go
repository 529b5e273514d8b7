package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// privateRegistry is a registry that wants a password for everything,
// over TLS from a CA made for the test, holding a base image at
// private/base:1. Each platform logs in as a user of its own: a terminal
// with --username and --password-stdin, GitLab with its job token, act with
// Docker's config.json.
type privateRegistry struct {
	r                  *registrytest.Registry
	ref                string // the base, HOST/private/base:1
	digest             string
	dev, gitlab, login registrytest.Auth
}

func newPrivateRegistry(t *testing.T) *privateRegistry {
	t.Helper()
	p := &privateRegistry{
		dev:    registrytest.Auth{User: "dev", Password: "term-Pa55word-e2e"},
		gitlab: registrytest.Auth{User: "gitlab-ci-token", Password: "glcbt-job-Token-e2e"},
		login:  registrytest.Auth{User: "ci", Password: "act-Pa55word-e2e"},
	}
	p.r = registrytest.New(t, registrytest.Options{TLS: true, Users: map[string]string{
		p.dev.User: p.dev.Password, p.gitlab.User: p.gitlab.Password, p.login.User: p.login.Password,
	}})
	ref, err := name.ParseReference(p.r.Host + "/private/base:1")
	if err != nil {
		t.Fatal(err)
	}
	base := imageBase(t)
	if err := remote.WriteIndex(ref, base, pushOpts(p.r, p.dev)...); err != nil {
		t.Fatalf("pushing the private base: %v", err)
	}
	d, _ := base.Digest()
	p.ref, p.digest = ref.String(), d.String()
	return p
}

// secrets are the passwords and the Basic values made of them, none of
// which may be printed.
func (p *privateRegistry) secrets() []string {
	var out []string
	for _, a := range []registrytest.Auth{p.dev, p.gitlab, p.login} {
		out = append(out, a.Password, base64.StdEncoding.EncodeToString([]byte(a.User+":"+a.Password)))
	}
	return out
}

func (p *privateRegistry) noSecrets(t *testing.T, text string) {
	t.Helper()
	for _, s := range p.secrets() {
		if strings.Contains(text, s) {
			t.Errorf("a secret was printed: %q", s)
		}
	}
}

// checkImaged checks that the record's image is built on the private base.
func (p *privateRegistry) checkImaged(t *testing.T, rec *record.Record) {
	t.Helper()
	if rec.Image == nil {
		t.Fatal("the record has no image section")
	}
	if rec.Image.Base != p.ref || rec.Image.BaseDigest != p.digest {
		t.Errorf("image base %s@%s, want the private base %s@%s", rec.Image.Base, rec.Image.BaseDigest, p.ref, p.digest)
	}
	if len(rec.Image.Platforms) != 2 {
		t.Errorf("%d platforms imaged, want amd64 and arm64", len(rec.Image.Platforms))
	}
}

// checkScanned checks that findings.json is about the private image.
func (p *privateRegistry) checkScanned(t *testing.T, findings string) {
	t.Helper()
	f, err := os.Open(findings)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scan.Image == nil || rep.Scan.Image.Name != p.ref || rep.Scan.Image.Digest != p.digest {
		t.Errorf("the scan is of %+v, want the private image %s@%s", rep.Scan.Image, p.ref, p.digest)
	}
}

// scanPrivate is the scanner the private image is scanned with:
// govulncheck reads every layer of the image, for the Go binaries in it,
// which is what reading a private registry's layers needs to show; trivy's
// database and its run add nothing to that.
const scanPrivate = "govulncheck"

// runStdin runs a slipway binary as a user would in a terminal, with stdin.
func runStdin(t *testing.T, dir string, env []string, stdin, name string, args ...string) (output, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return output{stdout.String(), stderr.String()}, code
}

// TestPrivateBaseAndScanInATerminal: slipway image pulls a base that needs
// a password, given as --username and --password-stdin, and slipway scan
// reads that private image the same way. Without the login both refuse in
// one line, exit 2.
func TestPrivateBaseAndScanInATerminal(t *testing.T) {
	requireE2E(t, "git", "docker-registry", "go")
	bin := must(t, slipwayBin)
	p := newPrivateRegistry(t)
	env := append(toolEnv(t), "SSL_CERT_FILE="+p.r.CA.CertFile)
	repo := newSampleRepo(t)

	t.Run("without a login", func(t *testing.T) {
		o, code := runStdin(t, repo, env, "", filepath.Join(bin, "slipway-image"), "--build", "--base", p.ref, "--dist", "dist-anon")
		if code != cli.ExitUsage || !strings.Contains(o.Stderr, "access denied (401)") || strings.Count(o.Stderr, "slipway image:") != 1 {
			t.Errorf("exit %d, stderr:\n%s\nwant 2 and one line saying access was denied", code, o.Stderr)
		}
	})
	t.Run("image", func(t *testing.T) {
		o, code := runStdin(t, repo, env, p.dev.Password+"\n", filepath.Join(bin, "slipway-image"),
			"--build", "--base", p.ref, "--username", p.dev.User, "--password-stdin")
		logOutput(t, "slipway image", o)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		p.noSecrets(t, o.Stdout+o.Stderr)
		rec, err := record.Load(filepath.Join(repo, "dist"))
		if err != nil {
			t.Fatal(err)
		}
		p.checkImaged(t, rec)
	})
	t.Run("scan", func(t *testing.T) {
		o, code := runStdin(t, repo, env, p.dev.Password+"\n", filepath.Join(bin, "slipway-scan"),
			"--image", p.ref, "--dir", "none", "--scanners", scanPrivate, "--offline", "--vulndb", scantest.VulnDB(t),
			"--dist", "dist-scan", "--username", p.dev.User, "--password-stdin")
		logOutput(t, "slipway scan", o)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		p.noSecrets(t, o.Stdout+o.Stderr)
		p.checkScanned(t, filepath.Join(repo, "dist-scan", "findings.json"))
	})
}

// newSampleRepo is a git repository of the sample app alone.
func newSampleRepo(t *testing.T) string {
	t.Helper()
	repo, _ := newRepo(t, nil)
	return filepath.Join(repo, sampleApp)
}

// gitlabPrivatePipeline builds the sample on the private base in
// $CI_REGISTRY and scans that base, with the job's own credentials only:
// no login in the pipeline.
const gitlabPrivatePipeline = `include:
  - local: templates/slipway.gitlab-ci.yml

variables:
  SLIPWAY_DIR: ` + sampleApp + `

build:
  extends: .slipway-build

container:
  extends: .slipway-image
  needs: [build]
  variables:
    SLIPWAY_BASE: $CI_REGISTRY/private/base:1

scan:
  extends: .slipway-scan
  needs: []
  variables:
    SLIPWAY_IMAGE: $CI_REGISTRY/private/base:1
    SLIPWAY_DIR: none
    SLIPWAY_SCANNERS: ` + scanPrivate + `

check:
  stage: .post
  needs: [container, scan]
  script:
    - mkdir -p check
    - cp dist/slipway.json dist/findings.json check/
  artifacts:
    paths: [check/]
`

// TestPrivateBaseAndScanInGitLab: under gitlab-ci-local, with the test's
// registry as CI_REGISTRY, the image job pulls the private base and the
// scan job reads the private image with CI_REGISTRY_USER and CI_JOB_TOKEN,
// as every GitLab job has them.
func TestPrivateBaseAndScanInGitLab(t *testing.T) {
	requireE2E(t, "gitlab-ci-local", "git", "rsync", "go", "docker-registry")
	bin := must(t, slipwayBin)
	p := newPrivateRegistry(t)
	repo, _ := newRepo(t, map[string]string{".gitlab-ci.yml": gitlabPrivatePipeline})
	o, err := run(t, repo, toolEnv(t, bin), "gitlab-ci-local",
		// As in TestGitLabTemplate.
		"--force-shell-executor", "--shell-isolation",
		"--variable", "GITLAB_CI=true",
		"--artifacts-to-source",
		"--home", t.TempDir(),
		// What GitLab gives every job for its project's registry.
		"--variable", "CI_REGISTRY="+p.r.Host,
		"--variable", "CI_REGISTRY_USER="+p.gitlab.User,
		"--variable", "CI_JOB_TOKEN="+p.gitlab.Password,
		"--variable", "SSL_CERT_FILE="+p.r.CA.CertFile,
		"--variable", "SLIPWAY_OFFLINE=true",
		"--variable", "SLIPWAY_VULNDB="+scantest.VulnDB(t),
	)
	logOutput(t, "gitlab-ci-local", o)
	if err != nil {
		t.Fatalf("gitlab-ci-local: %v", err)
	}
	for _, job := range []string{"build", "container", "scan", "check"} {
		if !regexp.MustCompile(`PASS\s+` + job + `\b`).MatchString(o.Stdout) {
			t.Errorf("job %s did not pass", job)
		}
	}
	p.noSecrets(t, o.Stdout+o.Stderr)
	rec, err := record.Load(filepath.Join(repo, "check"))
	if err != nil {
		t.Fatal(err)
	}
	p.checkImaged(t, rec)
	p.checkScanned(t, filepath.Join(repo, "check", "findings.json"))
}

// actPrivateWorkflow logs in the way docker/login-action does, writing
// Docker's config.json, and then builds on the private base and scans it
// with the step actions, which are given no credentials.
func actPrivateWorkflow(host, ref string) string {
	return `name: private
on: push
jobs:
  private:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./actions/build
        with:
          platforms: linux/amd64,linux/arm64
          working-directory: ` + sampleApp + `
      - name: Log in to the registry
        env:
          REGISTRY: ` + host + `
          PASSWORD: ${{ env.SLIPWAY_E2E_PASSWORD }}
        run: |
          mkdir -p "$RUNNER_TEMP/docker"
          auth=$(printf 'ci:%s' "$PASSWORD" | base64 -w0)
          printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY" "$auth" > "$RUNNER_TEMP/docker/config.json"
          echo "DOCKER_CONFIG=$RUNNER_TEMP/docker" >> "$GITHUB_ENV"
      - id: image
        uses: ./actions/image
        with:
          working-directory: ` + sampleApp + `
          base: ` + ref + `
      - id: scan
        uses: ./actions/scan
        with:
          image: ` + ref + `
          working-directory: none
          scanners: ` + scanPrivate + `
          offline: true
          vulndb: ${{ env.SLIPWAY_E2E_VULNDB }}
      - name: Hand the results to the test
        if: always()
        env:
          RECORD: ${{ steps.image.outputs.record }}
          FINDINGS: ${{ steps.scan.outputs.findings }}
        run: |
          cp "$RECORD" "$SLIPWAY_E2E_OUT/slipway.json"
          cp "$FINDINGS" "$SLIPWAY_E2E_OUT/findings.json"
`
}

// TestPrivateBaseAndScanUnderAct: the image and scan actions read a
// private registry with the login a workflow step left in Docker's
// config.json.
func TestPrivateBaseAndScanUnderAct(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "docker-registry")
	// The scan action builds slipway with GOEXPERIMENT=jsonv2 from its
	// own source; this build, the same, fails fast on a broken tree and
	// warms the cache that one uses.
	must(t, slipwayBin)
	p := newPrivateRegistry(t)
	repo, _ := newRepo(t, map[string]string{".github/workflows/private.yml": actPrivateWorkflow(p.r.Host, p.ref)})
	out := t.TempDir()
	log, err := runActEnv(t, repo, "private.yml", out,
		"SSL_CERT_FILE="+p.r.CA.CertFile,
		"SLIPWAY_E2E_PASSWORD="+p.login.Password,
		"SLIPWAY_E2E_VULNDB="+scantest.VulnDB(t),
	)
	if err != nil {
		t.Fatalf("act: %v", err)
	}
	if got := log.jobResult(); got != "success" {
		t.Fatalf("job result = %q, want success", got)
	}
	rec, err := record.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	p.checkImaged(t, rec)
	p.checkScanned(t, filepath.Join(out, "findings.json"))
}
