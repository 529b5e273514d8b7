package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// pushWorkflow builds, images and pushes the sample app to two
// repositories of a registry with a password, as a project would use the
// actions. The password comes from the environment act is given, not from
// act's secrets, so that only slipway's ::add-mask:: can hide it.
func pushWorkflow(host string) string {
	return sampleWorkflow("push", "", `      - id: push
        uses: ./actions/push
        with:
          to: |
            `+host+`/e2e/hello
            `+host+`/e2e/mirror
          tags: |
            type=sha
            type=raw,value=stable
          username: ci
          password: ${{ env.SLIPWAY_E2E_PASSWORD }}
          working-directory: `+sampleApp+`
      - name: Hand the outputs to the test
        env:
          DIGEST: ${{ steps.push.outputs.digest }}
          REFS: ${{ steps.push.outputs.refs }}
          TAGS: ${{ steps.push.outputs.tags }}
        run: |
          printf '%s' "$DIGEST" > "$SLIPWAY_E2E_OUT/digest"
          printf '%s' "$REFS" > "$SLIPWAY_E2E_OUT/refs"
          printf '%s' "$TAGS" > "$SLIPWAY_E2E_OUT/tags"
          cp -R dist "$SLIPWAY_E2E_OUT/dist"
`)
}

func TestPushAction(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "docker-registry")
	must(t, slipwayBin)
	a := registrytest.Auth{User: "ci", Password: "act-Pa55word-e2e"}
	r := registrytest.New(t, registrytest.Options{Users: map[string]string{a.User: a.Password}})
	repo, head := newRepo(t, map[string]string{".github/workflows/push.yml": pushWorkflow(r.Host)})
	out := t.TempDir()
	o, err := run(t, repo, toolEnv(t), "act", "push",
		"-W", filepath.Join(".github", "workflows", "push.yml"),
		"-P", "ubuntu-latest=-self-hosted", "--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"), "--no-cache-server",
		"--env", "SLIPWAY_E2E_OUT="+out, "--env", "SLIPWAY_E2E_PASSWORD="+a.Password,
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
	got := map[string]string{}
	for _, k := range []string{"digest", "refs", "tags"} {
		got[k] = readFile(t, filepath.Join(out, k))
	}
	want := map[string]string{
		"digest": rec.Image.Digest,
		"refs":   r.Host + "/e2e/hello@" + rec.Image.Digest + "," + r.Host + "/e2e/mirror@" + rec.Image.Digest,
		"tags":   "stable,sha-" + head[:7],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	for _, name := range []string{"e2e/hello", "e2e/mirror"} {
		pushCheckImage(t, r, a, name, "stable", filepath.Join(out))
	}
	// The first action installed slipway from source and put it on PATH;
	// the later two found that version there and installed nothing.
	var paths []string
	skipped := 0
	for _, e := range log {
		if e.Command == "add-path" {
			paths = append(paths, e.Arg)
		}
		if strings.Contains(e.Msg, "already on PATH") {
			skipped++
		}
	}
	if len(paths) != 1 || skipped != 2 {
		t.Errorf("the install steps added %q to PATH and %d found it there, want one directory added and two skips", paths, skipped)
	}
	// slipway told the runner to mask the password; nothing it printed
	// shows it.
	var masked bool
	for _, e := range log {
		if e.Command == "add-mask" {
			masked = true
		}
		if e.in("push") && strings.Contains(e.Msg, a.Password) && e.Command != "add-mask" {
			t.Errorf("the push step printed the password: %q", e.Msg)
		}
	}
	if !masked {
		t.Error("no ::add-mask:: for the password")
	}
	// The step summary has a row per destination.
	var summary string
	for _, e := range log {
		if e.in("push", "push") && strings.Contains(e.Msg, "Summary - ### Slipway push") {
			summary = e.Msg
		}
	}
	for _, name := range []string{"e2e/hello", "e2e/mirror"} {
		if row := "| " + r.Host + "/" + name + " | pushed |"; !strings.Contains(summary, row) {
			t.Errorf("the step summary lacks %q:\n%s", row, summary)
		}
	}
}
