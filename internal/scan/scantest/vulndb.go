package scantest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// VulnServer serves testdata/scan/vulndb in vuln.go.dev's layout
// (index/db.json.gz, index/modules.json.gz, ID/<id>.json.gz) over HTTP,
// as govulncheck's -db reads it, and records what it was asked for.
type VulnServer struct {
	URL string

	mu    sync.Mutex
	got   []string
	users []string
}

// Served tells whether the server was asked for path p.
func (s *VulnServer) Served(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.got, p)
}

// Paths lists what the server was asked for.
func (s *VulnServer) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Users lists the Basic auth users of the requests, "" for none.
func (s *VulnServer) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.users)
}

// ServeVulnDB starts a VulnServer for the test.
func ServeVulnDB(t testing.TB) *VulnServer {
	t.Helper()
	dir := strings.TrimPrefix(VulnDB(t), "file://")
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

	s := &VulnServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean(r.URL.Path)
		user, _, _ := r.BasicAuth()
		s.mu.Lock()
		s.got = append(s.got, p)
		s.users = append(s.users, user)
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

func gz(t testing.TB, data []byte) []byte {
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

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
