// Command demodb builds the offline scan databases make demo scans with:
// trivy's from the YAML fixtures in testdata/scan/trivydb (the way trivy's
// own integration tests build theirs), into the cache directory given.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/internal/scan/scantest"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: demodb FIXTURES-DIR CACHE-DIR")
	}
	files, err := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if err != nil || len(files) == 0 {
		log.Fatalf("demodb: no fixtures in %s", os.Args[1])
	}
	if err := scantest.BuildTrivyDB(os.Args[2], files); err != nil {
		log.Fatalf("demodb: %v", err)
	}
}
