package scantest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	fixtures "github.com/aquasecurity/bolt-fixtures"
	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
)

// TrivyDBUpdated is when the fixture database says it was built.
var TrivyDBUpdated = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

// TrivyDB builds trivy's database from TrivyFixtures into a temporary
// cache directory, for slipway scan --offline --cache-dir. It needs only
// trivy-db, not trivy, so packages built without GOEXPERIMENT=jsonv2 (the
// end-to-end tests, which run the slipway-scan binary) can use it too.
func TrivyDB(t testing.TB) string {
	t.Helper()
	cache := t.TempDir()
	if err := BuildTrivyDB(cache, TrivyFixtures(t)); err != nil {
		t.Fatal(err)
	}
	return cache
}

// BuildTrivyDB loads the fixture files into cacheDir/db/trivy.db, where
// trivy looks for its database, and writes the metadata that lets trivy
// use it without downloading (until 2100).
func BuildTrivyDB(cacheDir string, files []string) error {
	dir := filepath.Join(cacheDir, "db")
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
		UpdatedAt:    TrivyDBUpdated,
		DownloadedAt: TrivyDBUpdated,
	})
}
