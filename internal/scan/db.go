package scan

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/slipwayci/slipway/internal/scan/govulncheck"
)

// Databases the scanners read, as DBError names them.
const (
	TrivyDB       = "trivy's database"
	GovulncheckDB = "govulncheck's database"
)

// DBError is a database the scan cannot use. Missing is set when none is
// where it was looked for and none may be downloaded: a configuration,
// not a failure, which the command line turns into the flag to change.
type DBError struct {
	DB      string // TrivyDB or GovulncheckDB
	Where   string // where it was looked for
	Missing bool
	Err     error
}

func (e *DBError) Error() string { return fmt.Sprintf("%s (%s): %v", e.DB, e.Where, e.Err) }
func (e *DBError) Unwrap() error { return e.Err }

// openDatabases makes every database the scanners need ready before any
// analysis starts: govulncheck's is checked, trivy's fetched (or, offline,
// found) and opened. Without trivy among the scanners, its database is
// still opened if the cache holds one, to grade what govulncheck finds.
// The returned database, if any, is closed by the caller.
func openDatabases(ctx context.Context, o *Options) (VulnDB, error) {
	if o.enabled(Govulncheck) && (o.Dir != "" || len(o.Images) > 0) {
		if err := govulncheck.CheckDB(ctx, o.VulnDB); err != nil {
			// A server that does not answer may answer later; a folder
			// that is not there never will.
			remote := strings.HasPrefix(o.VulnDB, "http://") || strings.HasPrefix(o.VulnDB, "https://") || o.VulnDB == ""
			return nil, &DBError{DB: GovulncheckDB, Where: cmp.Or(o.VulnDB, govulncheck.DefaultDB), Missing: !remote, Err: err}
		}
	}
	trivy := o.enabled(Trivy) && len(o.Images) > 0
	s, err := imageScanner(Trivy)
	if err != nil {
		if trivy {
			return nil, err
		}
		return nil, nil // nothing to grade with; the findings keep their grades
	}
	dbo := o.ImageOptions
	if !trivy {
		dbo.IfPresent = true
	}
	return s.Open(ctx, dbo)
}
