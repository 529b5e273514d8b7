//go:build goexperiment.jsonv2

package trivy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	vulndb := serveVulnDB(t)

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
		if !vulndb.served("/ID/" + id + ".json.gz") {
			t.Errorf("govulncheck did not fetch %s from the server; it fetched %v", id, vulndb.paths())
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

// vulnServer serves testdata/scan/vulndb in vuln.go.dev's layout
// (index/db.json.gz, index/modules.json.gz, ID/<id>.json.gz) and records
// what it was asked for.
type vulnServer struct {
	URL string

	mu  sync.Mutex
	got []string
}

func (s *vulnServer) served(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.got, p)
}

func (s *vulnServer) paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func serveVulnDB(t *testing.T) *vulnServer {
	t.Helper()
	dir := strings.TrimPrefix(scantest.VulnDB(t), "file://")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OSV records in %s: %v", dir, err)
	}
	// The database's modified time; the records' own are zero.
	modified := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)
	type vuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	modules := map[string][]vuln{}
	content := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			ID       string `json:"id"`
			Affected []struct {
				Package struct{ Name string } `json:"package"`
				Ranges  []struct {
					Events []struct{ Fixed string } `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, a := range rec.Affected {
			v := vuln{ID: rec.ID, Modified: modified}
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if e.Fixed != "" {
						v.Fixed = e.Fixed
					}
				}
			}
			modules[a.Package.Name] = append(modules[a.Package.Name], v)
		}
		content["/ID/"+rec.ID+".json.gz"] = gz(t, data)
	}
	type module struct {
		Path  string `json:"path"`
		Vulns []vuln `json:"vulns"`
	}
	var index []module
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range modules {
			if !yield(p) {
				return
			}
		}
	}) {
		index = append(index, module{p, modules[p]})
	}
	content["/index/modules.json.gz"] = gz(t, mustJSON(t, index))
	content["/index/db.json.gz"] = gz(t, mustJSON(t, map[string]time.Time{"modified": modified}))

	s := &vulnServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean(r.URL.Path)
		s.mu.Lock()
		s.got = append(s.got, p)
		s.mu.Unlock()
		data, ok := content[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
