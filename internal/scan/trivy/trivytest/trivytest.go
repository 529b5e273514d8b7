//go:build goexperiment.jsonv2

// Package trivytest builds trivy's database from YAML fixtures with
// bolt-fixtures, the way trivy's own integration tests do, into a cache
// directory that both slipway and the trivy command read.
package trivytest

import (
	"fmt"
	"os"
	"time"

	fixtures "github.com/aquasecurity/bolt-fixtures"
	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy/pkg/db"
)

// Updated is when the fixture database says it was built.
var Updated = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

// BuildDB loads the fixture files into cacheDir/db/trivy.db and writes the
// metadata that lets trivy use it without downloading (until 2100).
func BuildDB(cacheDir string, files []string) error {
	dir := db.Dir(cacheDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	loader, err := fixtures.New(trivydb.Path(dir), files)
	if err != nil {
		return fmt.Errorf("opening fixture database: %w", err)
	}
	if err := loader.Load(); err != nil {
		loader.Close()
		return fmt.Errorf("loading fixtures: %w", err)
	}
	if err := loader.Close(); err != nil {
		return err
	}
	return metadata.NewClient(dir).Update(metadata.Metadata{
		Version:      trivydb.SchemaVersion,
		NextUpdate:   time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		UpdatedAt:    Updated,
		DownloadedAt: Updated,
	})
}
