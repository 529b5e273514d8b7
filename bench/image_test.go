// Package bench compares slipway's steps with the tools people would use
// instead. Nothing here runs under go test without -bench:
//
//	go test -run '^$' -bench ImageVsKo -benchtime 5x ./bench/
package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/testkit"
)

// KoVersion is the ko release the comparison is made against.
const KoVersion = benchkit.KoVersion

// BenchmarkImageVsKo times a warm `slipway image` against a warm
// `ko build` of the same app (testdata/apps/hello) for linux/amd64 and
// linux/arm64 on the same base: slipway's static base, pushed to a local
// docker-registry that both pull from. Warm means every cache is full:
// Go's build cache for ko, slipway's layer cache for slipway. Both write an
// OCI layout and SBOMs, neither pushes.
//
// It reports each tool's mean wall time and slipway/ko, the ratio the
// image step must keep at or under 0.3; also slipway on its built-in static
// base (no pull at all) and slipway build + image, for reference.
func BenchmarkImageVsKo(b *testing.B) {
	for _, tool := range []string{"go", "git", "ko", "docker-registry"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not on PATH (ko: go install github.com/google/ko@%s; docker-registry: scripts/install-test-deps.sh)", tool, KoVersion)
		}
	}
	if out, err := exec.Command("ko", "version").Output(); err != nil || strings.TrimSpace(string(out)) != KoVersion {
		b.Fatalf("ko version %q, want %s: go install github.com/google/ko@%s", strings.TrimSpace(string(out)), KoVersion, KoVersion)
	}
	// ko takes the layout path for a repository name, which must be
	// lower case; b.TempDir's is not.
	root, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	bin := filepath.Join(root, "bin")
	gobuild := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/slipway-build", "./cmd/slipway-image")
	gobuild.Dir = testkit.RepoRoot(b)
	if out, err := gobuild.CombinedOutput(); err != nil {
		b.Fatalf("building slipway: %v\n%s", err, out)
	}
	repo := testkit.SampleRepo(b, "hello", filepath.Join(root, "hello"))
	host := startRegistry(b, root)
	baseRef := host + "/base/static:1"
	if err := benchkit.PushStaticBase(context.Background(), baseRef, filepath.Join(root, "base-cache")); err != nil {
		b.Fatal(err)
	}

	env := append(os.Environ(),
		"KO_DOCKER_REPO="+host+"/ko",
		"KO_DEFAULTBASEIMAGE="+baseRef,
		"XDG_CACHE_HOME="+filepath.Join(root, "cache"),
	)
	cache := filepath.Join(root, "slipway-cache")
	slipwayBuild := []string{filepath.Join(bin, "slipway-build"), "--platforms", "linux/amd64,linux/arm64"}
	slipwayImage := []string{filepath.Join(bin, "slipway-image"), "--base", baseRef, "--cache", cache}
	slipwayStatic := []string{filepath.Join(bin, "slipway-image"), "--base", "static", "--cache", cache}
	ko := []string{"ko", "build", "./cmd/hello", "--bare", "--push=false",
		"--platform=linux/amd64,linux/arm64", "--oci-layout-path", filepath.Join(root, "ko-layout"),
		"--sbom-dir", filepath.Join(root, "ko-sbom")}

	// Warm every cache once, untimed.
	for _, cmd := range [][]string{slipwayBuild, slipwayImage, slipwayStatic, ko} {
		runTimed(b, repo, env, cmd)
	}

	var tSlipway, tStatic, tKo, tBuildImage time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tKo += runTimed(b, repo, env, ko)
		tSlipway += runTimed(b, repo, env, slipwayImage)
		tStatic += runTimed(b, repo, env, slipwayStatic)
		tBuildImage += runTimed(b, repo, env, slipwayBuild) + runTimed(b, repo, env, slipwayImage)
	}
	b.StopTimer()
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(ms(tKo), "ko-ms/op")
	b.ReportMetric(ms(tSlipway), "slipway-ms/op")
	b.ReportMetric(ms(tStatic), "slipway-static-ms/op")
	b.ReportMetric(ms(tBuildImage), "build+image-ms/op")
	b.ReportMetric(float64(tSlipway)/float64(tKo), "slipway/ko")
	b.ReportMetric(float64(tBuildImage)/float64(tKo), "build+image/ko")
	b.Logf("warm slipway image %.0f ms, ko build %.0f ms: ratio %.3f (target <= 0.3); built-in static base %.0f ms; slipway build+image %.0f ms (%.2f of ko)",
		ms(tSlipway), ms(tKo), float64(tSlipway)/float64(tKo), ms(tStatic), ms(tBuildImage), float64(tBuildImage)/float64(tKo))
}

// runTimed runs cmd in dir and returns its wall time.
func runTimed(b *testing.B, dir string, env, cmd []string) time.Duration {
	b.Helper()
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Dir, c.Env = dir, env
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out.String())
	}
	return d
}

// startRegistry runs docker-registry on a free port of 127.0.0.1 with its
// storage under dir, until the benchmark ends.
func startRegistry(b *testing.B, dir string) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := filepath.Join(dir, "registry.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "registry"), addr)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", config)
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting docker-registry: %v", err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
	}
	b.Fatalf("docker-registry did not answer on %s", addr)
	return ""
}
