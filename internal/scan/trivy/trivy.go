//go:build goexperiment.jsonv2

package trivy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	vulnsrc "github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/db"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/utils"
	"github.com/aquasecurity/trivy/pkg/log"
	tscan "github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"

	"github.com/slipwayci/slipway/internal/redact"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan"
)

// linked is the trivy version go.mod requires, for binaries without module
// information (test binaries); TestLinkedVersion keeps it in step.
const linked = "v0.74.0"

// Version is the trivy module linked into this binary.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/aquasecurity/trivy" {
				return d.Version
			}
		}
	}
	return linked
}

// trivy keeps its database open in a package variable: one database open
// at a time, from Open to Close.
var mu sync.Mutex

// Open makes trivy's database ready in o.CacheDir (downloaded first,
// unless o.Offline, when it is missing or stale) and opens it; with
// o.IfPresent it only opens one already there. It holds the database, and
// so any other Open, until Close.
func (Scanner) Open(ctx context.Context, o scan.ImageOptions) (scan.VulnDB, error) {
	mu.Lock()
	logTo(o.Log)
	cacheDir := o.CacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(utils.CacheDir(), "trivy") // where trivy keeps it
	}
	info, err := openDB(ctx, cacheDir, o)
	if err != nil || info == nil {
		mu.Unlock()
		return nil, err
	}
	return &database{cacheDir: cacheDir, info: info, o: o}, nil
}

// database is trivy's database, open.
type database struct {
	cacheDir string
	info     *report.DB
	o        scan.ImageOptions
	closed   bool
}

func (d *database) Info() *report.DB { return d.info }

// Close closes the database and lets the next Open have it.
func (d *database) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	defer mu.Unlock()
	return db.Close()
}

// Grade returns the severity trivy gives a Go vulnerability, looking it
// up by each identifier in turn: GitHub's advisory's grade (the data
// source trivy itself prefers for Go modules), else NVD's, else trivy's
// own.
func (d *database) Grade(ids []string) (report.Severity, string, bool) {
	for _, id := range ids {
		v, err := trivydb.Config{}.GetVulnerability(id)
		if err != nil {
			continue
		}
		for _, src := range []dbtypes.SourceID{vulnsrc.GHSA, vulnsrc.NVD} {
			if sev, ok := v.VendorSeverity[src]; ok && sev != dbtypes.SeverityUnknown {
				return severity(sev.String()), string(src), true
			}
		}
		if sev := severity(v.Severity); sev != report.Unknown {
			return sev, "trivy", true
		}
	}
	return "", "", false
}

// ScanImage scans the image for vulnerable OS packages and Go modules in
// binaries, as `trivy image --scanners vuln` does.
func (d *database) ScanImage(ctx context.Context, img *scan.Image) (*scan.Result, error) {
	// What trivy learns of each layer is kept beside the database, keyed
	// by the layer's digest and the analyzers' versions, as trivy's own
	// CLI keeps it: the base's layers are analysed once, not every scan.
	var c cache.Cache
	if fc, err := cache.NewFSCache(d.cacheDir); err != nil {
		fmt.Fprintf(cmp.Or(d.o.Log, io.Discard), "trivy: not caching layer analysis: %v\n", err)
		c = cache.NewMemoryCache()
	} else {
		defer fc.Close()
		c = fc
	}
	art, err := artimage.NewArtifact(image{Image: img.Img, name: img.Name}, c, artifact.Option{
		DisabledAnalyzers: disabledAnalyzers(),
		NoProgress:        true,
		Offline:           d.o.Offline,
	})
	if err != nil {
		return nil, fmt.Errorf("trivy: %w", err)
	}
	svc := local.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{}))
	rep, err := tscan.NewService(svc, art).ScanArtifact(ctx, types.ScanOptions{
		PkgTypes:            []string{types.PkgTypeOS, types.PkgTypeLibrary},
		PkgRelationships:    ftypes.Relationships,
		Scanners:            types.Scanners{types.VulnerabilityScanner},
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	})
	if err != nil {
		return nil, fmt.Errorf("trivy on %s: %w", img.Name, err)
	}
	res := &scan.Result{
		Scanner: report.Scanner{
			Name:    scan.Trivy,
			Version: Version(),
			URL:     "https://trivy.dev",
			Targets: []string{"image"},
			DB:      d.info,
		},
		Findings: Convert(rep),
	}
	if os := rep.Metadata.OS; os != nil && os.Family != "" {
		res.OS = strings.TrimSpace(string(os.Family) + " " + os.Name)
	}
	return res, nil
}

// disabledAnalyzers are those `trivy image --scanners vuln` leaves off:
// lock files, secrets, misconfiguration, licences, the image history.
func disabledAnalyzers() []analyzer.Type {
	a := append([]analyzer.Type{}, analyzer.TypeLockfiles...)
	a = append(a, analyzer.TypeApkCommand, analyzer.TypeSecret, analyzer.TypeLicenseFile,
		analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive)
	return append(a, analyzer.TypeConfigFiles...)
}

// openDB makes sure the database is in cacheDir (downloading it from the
// first repository that has it, unless offline) and opens it. With
// o.IfPresent it opens one that is there, however old, and otherwise
// returns nil.
func openDB(ctx context.Context, cacheDir string, o scan.ImageOptions) (*report.DB, error) {
	repos := o.DBRepositories
	if len(repos) == 0 {
		repos = []string{db.DefaultGCRRepository, db.DefaultGHCRRepository}
	}
	var refs []name.Reference
	for _, r := range repos {
		if !strings.Contains(r[strings.LastIndex(r, "/")+1:], ":") && !strings.Contains(r, "@") {
			r = fmt.Sprintf("%s:%d", r, trivydb.SchemaVersion)
		}
		ref, err := name.ParseReference(r)
		if err != nil {
			return nil, fmt.Errorf("parsing database repository %q: %w", r, err)
		}
		refs = append(refs, ref)
	}
	dir := db.Dir(cacheDir)
	if _, err := os.Stat(trivydb.Path(dir)); err != nil {
		switch {
		case o.IfPresent:
			return nil, nil
		case o.Offline:
			// trivy's own message names its CLI's --skip-db-update.
			return nil, &scan.DBError{DB: scan.TrivyDB, Where: trivydb.Path(dir), Missing: true, Err: errors.New("none there, and offline downloads none")}
		}
	}
	if o.IfPresent {
		if err := db.Init(dir); err != nil {
			return nil, &scan.DBError{DB: scan.TrivyDB, Where: trivydb.Path(dir), Err: err}
		}
		return describe(dir, "cached, "+dir), nil
	}
	client := db.NewClient(dir, true, db.WithDBRepository(refs))
	stale, err := client.NeedsUpdate(ctx, strings.TrimPrefix(Version(), "v"), o.Offline)
	if err != nil {
		return nil, &scan.DBError{DB: scan.TrivyDB, Where: trivydb.Path(dir), Missing: o.Offline, Err: err}
	}
	if stale {
		// Each repository in turn, whatever went wrong with the one before
		// (trivy itself moves on only after a temporary error): a mirror
		// that lacks the database, or refuses us, is passed over.
		var errs []error
		for i, ref := range refs {
			err := db.NewClient(dir, true, db.WithDBRepository(refs[i:i+1])).Download(ctx, dir, ftypes.RegistryOptions{})
			if err == nil {
				errs = nil
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			fmt.Fprintf(cmp.Or(o.Log, io.Discard), "trivy: no database from %s, trying the next repository\n", ref)
		}
		if len(errs) > 0 {
			return nil, &scan.DBError{DB: scan.TrivyDB, Where: strings.Join(repos, ", "), Err: fmt.Errorf("downloading: %w", oneLine(errors.Join(errs...)))}
		}
	}
	if err := db.Init(dir); err != nil {
		return nil, &scan.DBError{DB: scan.TrivyDB, Where: trivydb.Path(dir), Err: err}
	}
	shown := make([]string, len(repos))
	for i, r := range repos {
		shown[i] = redact.URL(r)
	}
	source := strings.Join(shown, ", ")
	if o.Offline {
		source = "offline, " + dir
	}
	return describe(dir, source), nil
}

// describe is the database in dir for the report.
func describe(dir, source string) *report.DB {
	info := &report.DB{Source: source}
	if m, err := metadata.NewClient(dir).Get(); err == nil {
		info.Version = fmt.Sprint(m.Version)
		if !m.UpdatedAt.IsZero() {
			info.Updated = m.UpdatedAt.UTC().Format(time.RFC3339)
		}
	}
	return info
}

// oneLine joins the lines of err's message with "; ", so that the errors
// of each repository tried make one line.
func oneLine(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
}

// Convert turns trivy's report into findings, one per vulnerability and
// package in each target.
func Convert(rep types.Report) []*report.Finding {
	var out []*report.Finding
	for _, r := range rep.Results {
		paths := packagePaths(r)
		for _, v := range r.Vulnerabilities {
			f := &report.Finding{
				ID:             v.VulnerabilityID,
				Kind:           report.Vulnerability,
				Title:          v.Title,
				Description:    v.Description,
				Severity:       severity(v.Severity),
				SeveritySource: string(v.SeveritySource),
				Package:        v.PkgName,
				Version:        v.InstalledVersion,
				FixedVersion:   v.FixedVersion,
				URL:            v.PrimaryURL,
				Scanners:       []string{scan.Trivy},
			}
			where := r.Target
			if r.Class == types.ClassOSPkg {
				f.Ecosystem = string(r.Type)
				where = cmp.Or(paths[v.PkgID], packageDB(r.Type))
			} else {
				f.Ecosystem = ecosystem(r.Type)
				if v.PkgPath != "" {
					where = v.PkgPath
				}
			}
			if f.Ecosystem == "go" {
				f.Version, f.FixedVersion = semver(f.Version), semver(f.FixedVersion)
			}
			// Every finding of trivy's is in the image, even where it
			// cannot say which file.
			f.Locations = []report.Location{{Path: strings.TrimPrefix(where, "/"), Image: true}}
			out = append(out, f)
		}
	}
	return out
}

// packagePaths maps each OS package to the database file it was read
// from, e.g. var/lib/dpkg/status.
func packagePaths(r types.Result) map[string]string {
	m := map[string]string{}
	for _, p := range r.Packages {
		if p.FilePath != "" {
			m[p.ID] = p.FilePath
		}
	}
	return m
}

// packageDB is where a distribution keeps its package database; trivy
// reads it but does not say so per package.
func packageDB(family ftypes.TargetType) string {
	switch family {
	case ftypes.Debian, ftypes.Ubuntu:
		return "var/lib/dpkg/status"
	case ftypes.Alpine, ftypes.Wolfi, ftypes.Chainguard:
		return "lib/apk/db/installed"
	case ftypes.RedHat, ftypes.CentOS, ftypes.Rocky, ftypes.Alma, ftypes.Fedora, ftypes.Amazon,
		ftypes.Oracle, ftypes.CBLMariner, ftypes.Azure, ftypes.Photon, ftypes.OpenSUSELeap, ftypes.SLES:
		return "var/lib/rpm"
	}
	return ""
}

func ecosystem(t ftypes.TargetType) string {
	switch t {
	case ftypes.GoBinary, ftypes.GoModule:
		return "go"
	}
	return string(t)
}

// semver writes Go versions as the go command does, with a v; trivy
// drops it, and lists several fixed versions with commas.
func semver(v string) string {
	if v == "" {
		return ""
	}
	parts := strings.Split(v, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p != "" && p[0] >= '0' && p[0] <= '9' {
			p = "v" + p
		}
		parts[i] = p
	}
	return strings.Join(parts, ", ")
}

func severity(s string) report.Severity {
	if sev, err := report.ParseSeverity(s); err == nil {
		return sev
	}
	return report.Unknown
}

// image is a go-containerregistry image as trivy's artifact takes it.
type image struct {
	v1.Image
	name string
}

func (i image) Name() string { return i.name }

func (i image) ID() (string, error) {
	h, err := i.ConfigName()
	if err != nil {
		return "", fmt.Errorf("getting the image ID: %w", err)
	}
	return h.String(), nil
}

func (i image) RepoTags() []string    { return nil }
func (i image) RepoDigests() []string { return nil }

var _ ftypes.Image = image{}

var logOnce sync.Once

// logTo sends trivy's warnings (an unsupported distribution, a rejected
// CVE) to w; its progress is left out. Trivy logs through log/slog's
// default logger, which nothing else in slipway-scan uses.
func logTo(w io.Writer) {
	logOnce.Do(func() {
		if w == nil {
			w = io.Discard
		}
		log.SetDefault(log.New(log.NewHandler(w, &log.Options{Level: slog.LevelWarn})))
	})
}
