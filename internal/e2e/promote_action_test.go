package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// promoteWorkflow builds, images and pushes the sample app, then promotes
// it into staging with the promote action as a project would: a dry run,
// then the promotion approved by the job's GitHub environment, pinning the
// digest in a manifest, then the history.
func promoteWorkflow(host string) string {
	return sampleWorkflow("promote", "", `      - id: push
        uses: ./actions/push
        with:
          to: `+host+`/e2e/ci
          tags: type=raw,value=main
          working-directory: `+sampleApp+`
      - id: dry
        uses: ./actions/promote
        with:
          to: staging
          digest: ${{ steps.push.outputs.refs }}
          environment: staging
          dry-run: true
      - id: promote
        uses: ./actions/promote
        with:
          to: staging
          digest: ${{ steps.push.outputs.refs }}
          environment: staging
          manifests: deploy
      - name: Hand the outputs to the test
        env:
          DIGEST: ${{ steps.promote.outputs.digest }}
          REFS: ${{ steps.promote.outputs.refs }}
          TAGS: ${{ steps.promote.outputs.tags }}
          RECORD: ${{ steps.promote.outputs.record }}
          MANIFESTS: ${{ steps.promote.outputs.manifests }}
          DRY: ${{ steps.dry.outputs.record }}
        run: |
          printf '%s' "$DIGEST" > "$SLIPWAY_E2E_OUT/digest"
          printf '%s' "$REFS" > "$SLIPWAY_E2E_OUT/refs"
          printf '%s' "$TAGS" > "$SLIPWAY_E2E_OUT/tags"
          printf '%s' "$RECORD" > "$SLIPWAY_E2E_OUT/record"
          printf '%s' "$MANIFESTS" > "$SLIPWAY_E2E_OUT/manifests"
          printf '%s' "$DRY" > "$SLIPWAY_E2E_OUT/dry"
          cp deploy/app.yaml "$SLIPWAY_E2E_OUT/app.yaml"
          cp -R dist "$SLIPWAY_E2E_OUT/dist"
          slipway history staging > "$SLIPWAY_E2E_OUT/history"
`)
}

func TestPromoteAction(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "docker-registry")
	must(t, slipwayBin)
	r := registrytest.New(t, registrytest.Options{})
	repo, _ := newRepo(t, map[string]string{
		".github/workflows/promote.yml": promoteWorkflow(r.Host),
		".slipway.yaml": `environments:
  staging:
    repository: ` + r.Host + `/e2e/staging
    tags: [staging, "{{.Version}}"]
    gates:
      sbom: true
      approval: {}
`,
		"deploy/app.yaml": "# the app\nimage: " + r.Host + "/e2e/ci:main # pinned on promotion\n",
	})
	out := t.TempDir()
	o, err := run(t, repo, toolEnv(t), "act", "push",
		"-W", filepath.Join(".github", "workflows", "promote.yml"),
		"-P", "ubuntu-latest=-self-hosted", "--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"), "--no-cache-server",
		"--env", "SLIPWAY_E2E_OUT="+out,
	)
	logOutput(t, "act", o)
	if err != nil {
		t.Fatalf("act: %v", err)
	}
	log := parseActLog(t, o.Stdout)
	if got := log.jobResult(); got != "success" {
		t.Fatalf("job result = %q, want success", got)
	}
	rec, err := record.Load(filepath.Join(out, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	d := rec.Image.Digest
	got := map[string]string{}
	for _, k := range []string{"digest", "refs", "tags", "manifests", "dry"} {
		got[k] = readFile(t, filepath.Join(out, k))
	}
	want := map[string]string{
		"digest": d, "refs": r.Host + "/e2e/staging@" + d, "tags": "staging," + rec.Version,
		"manifests": "app.yaml", "dry": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("output %s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(readFile(t, filepath.Join(out, "record")), "sha256:") {
		t.Error("no record output")
	}
	if app := readFile(t, filepath.Join(out, "app.yaml")); app != "# the app\nimage: "+r.Host+"/e2e/staging@"+d+" # pinned on promotion\n" {
		t.Errorf("deploy/app.yaml after the promotion:\n%s", app)
	}
	for _, tag := range []string{"staging", rec.Version} {
		pushCheckImage(t, r, registrytest.Auth{}, "e2e/staging", tag, out)
	}
	if h := readFile(t, filepath.Join(out, "history")); !strings.Contains(h, d) || !strings.Contains(h, "← current") {
		t.Errorf("slipway history staging:\n%s", h)
	}
	// The job's environment approved, as its protection rules would.
	var summary string
	for _, e := range log {
		if e.in("promote", "promote") && strings.Contains(e.Msg, "Summary - ### Slipway promote") {
			summary = e.Msg
		}
	}
	if !strings.Contains(summary, "approved through the protection rules of GitHub environment staging") {
		t.Errorf("the promote step's summary:\n%s", summary)
	}
}
