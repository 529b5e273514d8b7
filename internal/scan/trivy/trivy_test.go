//go:build goexperiment.jsonv2

package trivy

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// fixtureDB builds trivy's database from testdata/scan/trivydb.
func fixtureDB(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := scantest.BuildTrivyDB(dir, scantest.TrivyFixtures(t)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func brief(fs []*report.Finding) []string {
	var out []string
	report.Sort(fs)
	for _, f := range fs {
		var locs []string
		for _, l := range f.Locations {
			locs = append(locs, l.String())
		}
		out = append(out, strings.Join([]string{string(f.Severity), f.ID, f.Ecosystem, f.Package, f.Version, f.FixedVersion, strings.Join(locs, " ")}, " | "))
	}
	return out
}

// want is what trivy finds in the sample image with the fixture database.
var want = []string{
	"HIGH | CVE-2021-38561 | go | golang.org/x/text | v0.3.6 | v0.3.7 | image:/app/vulnerable",
	"HIGH | CVE-2022-32149 | go | golang.org/x/text | v0.3.6 | v0.3.8 | image:/app/vulnerable",
	"MEDIUM | CVE-2019-11254 | go | gopkg.in/yaml.v2 | v2.2.7 | v2.2.8 | image:/app/vulnerable",
	"LOW | CVE-2019-18276 | debian | bash | 5.2.15-2+b2 |  | image:/var/lib/dpkg/status",
}

// scanImage opens the database in cache, offline, and scans img with it.
func scanImage(t *testing.T, cache string, img *scan.Image) *scan.Result {
	t.Helper()
	db, err := Scanner{}.Open(context.Background(), scan.ImageOptions{CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ScanImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestScanImage(t *testing.T) {
	cache := fixtureDB(t)
	bin := scantest.BuildApp(t, t.TempDir())
	img, err := scan.FromImage("sample", scantest.Image(t, scantest.ImageFiles(t, bin)))
	if err != nil {
		t.Fatal(err)
	}
	res := scanImage(t, cache, img)
	if diff := cmp.Diff(want, brief(res.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, f := range res.Findings {
		if f.Title == "" || f.Description == "" || !slicesEqual(f.Scanners, []string{"trivy"}) || f.Reachability != "" || f.SeveritySource == "" {
			t.Errorf("%s: title %q, scanners %v, reachability %q, severity from %q", f.ID, f.Title, f.Scanners, f.Reachability, f.SeveritySource)
		}
	}
	if res.OS != "debian 12.5" {
		t.Errorf("OS = %q", res.OS)
	}
	s := res.Scanner
	if s.Name != "trivy" || s.Version != "v0.74.0" || s.DB == nil || s.DB.Version != "2" || s.DB.Updated != "2026-11-01T06:00:00Z" || !strings.HasPrefix(s.DB.Source, "offline, ") {
		t.Errorf("scanner = %+v, db %+v", s, s.DB)
	}
}

// TestScanLayout scans the image as the image step leaves it: an OCI
// layout holding an index.
func TestScanLayout(t *testing.T) {
	cache := fixtureDB(t)
	dir := t.TempDir()
	bin := scantest.BuildApp(t, t.TempDir())
	digest := scantest.Layout(t, filepath.Join(dir, "image"), scantest.Image(t, scantest.ImageFiles(t, bin)))
	imgs, err := scan.OpenImage(context.Background(), nil, "oci:image", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	img := imgs[0]
	if len(imgs) != 1 || img.Digest != digest || img.Platform != "linux/amd64" {
		t.Errorf("opened %s %s, want the index %s", img.Digest, img.Platform, digest)
	}
	res := scanImage(t, cache, img)
	if diff := cmp.Diff(want, brief(res.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestOfflineWithoutDatabase(t *testing.T) {
	cache := t.TempDir()
	_, err := Scanner{}.Open(context.Background(), scan.ImageOptions{CacheDir: cache, Offline: true})
	dbErr, ok := errors.AsType[*scan.DBError](err)
	if !ok || !dbErr.Missing || dbErr.Where != filepath.Join(cache, "db", "trivy.db") || strings.Contains(err.Error(), "skip-db-update") {
		t.Errorf("error = %v, want a missing database in %s, in slipway's terms", err, cache)
	}
	// Only if present: none, and no error.
	if db, err := (Scanner{}).Open(context.Background(), scan.ImageOptions{CacheDir: cache, IfPresent: true}); db != nil || err != nil {
		t.Errorf("Open if present = %v, %v; want nothing", db, err)
	}
}

// TestGrade: a Go vulnerability is graded by any of its identifiers, as
// GitHub's advisory grades it in trivy's database, and said so.
func TestGrade(t *testing.T) {
	db, err := Scanner{}.Open(context.Background(), scan.ImageOptions{CacheDir: fixtureDB(t), IfPresent: true})
	if err != nil || db == nil {
		t.Fatalf("Open = %v, %v", db, err)
	}
	defer db.Close()
	for _, tc := range []struct {
		ids    []string
		sev    report.Severity
		source string
	}{
		{[]string{"GO-2021-0113", "CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}, report.High, "ghsa"},
		{[]string{"GO-2020-0036", "CVE-2019-11254"}, report.Medium, "ghsa"},
		{[]string{"GO-2099-0001"}, "", ""},
	} {
		sev, source, ok := db.Grade(tc.ids)
		if sev != tc.sev || source != tc.source || ok != (tc.sev != "") {
			t.Errorf("Grade(%v) = %s, %s, %v; want %s, %s", tc.ids, sev, source, ok, tc.sev, tc.source)
		}
	}
}

func TestSemver(t *testing.T) {
	for in, want := range map[string]string{"": "", "0.3.7": "v0.3.7", "v0.3.7": "v0.3.7", "0.3.7, 0.4.1": "v0.3.7, v0.4.1", "1.26.8": "v1.26.8"} {
		if got := semver(in); got != want {
			t.Errorf("semver(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinkedVersion(t *testing.T) {
	if want := scantest.Required(t, "github.com/aquasecurity/trivy"); linked != want {
		t.Errorf("linked = %s, go.mod requires %s", linked, want)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// countingImage counts how often its layers' contents are read. (trivy
// wants layers that are pointers.)
type countingImage struct {
	v1.Image
	reads *atomic.Int32
}

type countingLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l *countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}

func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Compressed()
}

func (i countingImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	for n, l := range ls {
		ls[n] = &countingLayer{l, i.reads}
	}
	return ls, err
}

func (i countingImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	return &countingLayer{l, i.reads}, err
}

func (i countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	return &countingLayer{l, i.reads}, err
}

// A layer trivy has analysed once is not read again: the analysis is kept
// in the cache directory beside the database, as trivy's CLI keeps it.
func TestLayerAnalysisIsCached(t *testing.T) {
	cache := fixtureDB(t)
	bin := scantest.BuildApp(t, t.TempDir())
	base := scantest.Image(t, scantest.ImageFiles(t, bin))
	for round, wantReads := range []bool{true, false} {
		img := countingImage{base, new(atomic.Int32)}
		in, err := scan.FromImage("sample", img)
		if err != nil {
			t.Fatal(err)
		}
		res := scanImage(t, cache, in)
		if diff := cmp.Diff(want, brief(res.Findings)); diff != "" {
			t.Errorf("round %d: findings (-want +got):\n%s", round+1, diff)
		}
		if got := img.reads.Load() > 0; got != wantReads {
			t.Errorf("round %d: layer read %d times, want reads: %v", round+1, img.reads.Load(), wantReads)
		}
	}
}
