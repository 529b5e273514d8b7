//go:build goexperiment.jsonv2

package trivy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// TestOnlineDatabases scans with both databases fetched over the network,
// the way CI runs by default: trivy's from an OCI repository (a missing
// one first, then the mirror that has it, in Debian's docker-registry) and
// govulncheck's from an HTTP server speaking vuln.go.dev's protocol. The
// findings are the offline scan's; a second scan downloads nothing.
func TestOnlineDatabases(t *testing.T) {
	if os.Getenv("SLIPWAY_E2E") != "1" {
		t.Skip("needs Debian's docker-registry; run with SLIPWAY_E2E=1 (make test)")
	}
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Fatal("SLIPWAY_E2E=1 but docker-registry is not on PATH; scripts/install-test-deps.sh installs it")
	}
	ctx := context.Background()
	r := registrytest.New(t, registrytest.Options{})
	mirror := r.Host + "/mirror/trivy-db"
	pushTrivyDB(t, fixtureDB(t), mirror+":2")
	vulndb := scantest.ServeVulnDB(t)

	p := newPipeline(t)
	cache := t.TempDir() // empty: the database must be downloaded
	args := []string{"--cache-dir", cache, "--vulndb", vulndb.URL,
		"--db-repository", r.Host + "/missing/trivy-db", "--db-repository", mirror, "--format", "text"}
	scanOnline := func() *report.Report {
		t.Helper()
		var out, errb bytes.Buffer
		env := cli.Env{Args: args, Environ: scantest.Environ(), Stdout: &out, Stderr: &errb, Dir: p.dir}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if code := cli.ExitCode(&errb, "slipway scan", scan.Main(sctx, env)); code != cli.ExitPolicy {
			t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
		return scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	}

	online := scanOnline()
	if _, err := os.Stat(filepath.Join(cache, "db", "trivy.db")); err != nil {
		t.Errorf("trivy's database is not in the cache directory: %v", err)
	}
	for _, s := range online.Scanners {
		switch s.Name {
		case "trivy":
			if s.DB == nil || !strings.Contains(s.DB.Source, mirror) || s.DB.Version != "2" {
				t.Errorf("trivy db = %+v, want the mirror, schema 2", s.DB)
			}
		case "govulncheck":
			if s.DB == nil || s.DB.Source != vulndb.URL || s.DB.Updated != "2026-11-01T06:00:00Z" {
				t.Errorf("govulncheck db = %+v, want %s modified 2026-11-01T06:00:00Z", s.DB, vulndb.URL)
			}
		}
	}
	for _, id := range []string{"GO-2021-0113", "GO-2022-1059", "GO-2020-0036"} {
		if !vulndb.Served("/ID/" + id + ".json.gz") {
			t.Errorf("govulncheck did not fetch %s from the server; it fetched %v", id, vulndb.Paths())
		}
	}

	_, stderr, code := p.scan(t, "--format", "text")
	if code != cli.ExitPolicy {
		t.Fatalf("offline scan: exit %d\n%s", code, stderr)
	}
	offline := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	if diff := cmp.Diff(scantest.Lines(offline.Findings), scantest.Lines(online.Findings)); diff != "" {
		t.Errorf("online findings differ from offline ones (-offline +online):\n%s", diff)
	}

	// The database is fresh (its next update is due in 2100): the second
	// scan reads no blob from the registry.
	r.Proxy.Reset()
	scanOnline()
	for _, req := range r.Proxy.Requests() {
		if strings.Contains(req.Path, "/blobs/") {
			t.Errorf("second scan fetched %s %s", req.Method, req.Path)
		}
	}
}

// pushTrivyDB packs the database in cacheDir/db as trivy publishes it (a
// one-layer OCI artifact holding db.tar.gz) and pushes it to ref.
func pushTrivyDB(t *testing.T, cacheDir, ref string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		data, err := os.ReadFile(filepath.Join(cacheDir, "db", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := static.NewLayer(buf.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, "application/vnd.aquasec.trivy.config.v1+json")
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing trivy's database to %s: %v", ref, err)
	}
}
