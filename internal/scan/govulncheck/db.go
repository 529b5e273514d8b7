package govulncheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CheckDB makes sure the database at db can be read before anything is
// scanned, so that a wrong --vulndb fails at once rather than after the
// other scanners ran: a file:// URL must name a directory holding the
// database's module index or OSV records, an http(s):// one must answer
// for the module index (govulncheck's own test of a database).
func CheckDB(ctx context.Context, db string) error {
	if db == "" {
		db = DefaultDB
	}
	u, err := url.Parse(db)
	if err != nil {
		return fmt.Errorf("parsing %q: %w", db, err)
	}
	switch u.Scheme {
	case "file":
		return checkDir(u)
	case "http", "https":
		return checkHTTP(ctx, strings.TrimRight(db, "/"))
	}
	return fmt.Errorf("%s is neither https:// nor file://", db)
}

func checkDir(u *url.URL) error {
	dir := filepath.FromSlash(u.Path)
	if dir == "" {
		return fmt.Errorf("%s names no directory", u)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no directory %s", dir)
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "index", "modules.json")); err == nil {
		return nil
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			return nil
		}
	}
	return fmt.Errorf("%s holds neither index/modules.json nor OSV records (*.json)", dir)
}

func checkHTTP(ctx context.Context, db string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, db+"/index/modules.json.gz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", db, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answers %s for its module index", db, resp.Status)
	}
	return nil
}
