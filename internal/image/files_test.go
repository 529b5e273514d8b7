package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

func TestParseFile(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    File
		wantErr string
	}{
		{in: "ui:/app/ui", want: File{Src: "ui", Dest: "/app/ui"}},
		{in: "ui:/app/ui,chown=65532:65532", want: File{Src: "ui", Dest: "/app/ui", Owner: &Owner{65532, 65532}}},
		{in: "config.yaml:/etc/app/,chown=10,chmod=0640", want: File{Src: "config.yaml", Dest: "/etc/app/", Owner: &Owner{10, 10}, Mode: 0o640}},
		{in: ":/data,chown=65532", want: File{Dest: "/data", Owner: &Owner{65532, 65532}}},
		{in: "ui", wantErr: "want SRC:DEST"},
		{in: "ui:", wantErr: "want SRC:DEST"},
		{in: "ui:app/ui", wantErr: "must be an absolute path in the image, e.g. /app/ui"},
		{in: "ui:/", wantErr: "name a directory under /"},
		{in: "ui:/app,chown=app", wantErr: "want numeric UID[:GID]"},
		{in: "ui:/app,chmod=rw", wantErr: "not an octal mode"},
		{in: "ui:/app,owner=1", wantErr: `unknown option "owner"; valid: chown=UID[:GID], chmod=MODE`},
	} {
		got, err := ParseFile(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseFile(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFile(%q): %v", tc.in, err)
		} else if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseFile(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, bad := range []string{"hello", "hello:app/hello", ":/app/hello", "hello:/app/", "hello:/app/../etc/hello"} {
		if _, _, err := ParseBinary(bad); err == nil {
			t.Errorf("ParseBinary(%q) accepted", bad)
		}
	}
}

// fsOf flattens img into path -> header, with the regular files' contents.
func fsOf(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "/"), "/")
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			data[name] = string(b)
		}
	}
}

// The Dockerfile in testdata/fit, as slipway image flags: the server and
// its UI together in /app, a second binary on PATH, a config file with
// its own mode, the base's named user. Every added file is where the
// Dockerfile puts it, owned and moded as it says, and in both SBOMs.
func TestMainReproducesDockerfile(t *testing.T) {
	repo, dist := sampleDist(t)
	work := filepath.Dir(dist)
	ui := map[string]string{
		"ui/index.html":         "<h1>hello</h1>",
		"ui/assets/app.js":      "console.log('hi')",
		"ui/assets/css/app.css": "body{}",
	}
	for name, data := range ui {
		writeFile(t, filepath.Join(work, name), data, 0o644)
	}
	writeFile(t, filepath.Join(work, "config.yaml"), "listen: :8080\n", 0o644)
	_, stderr, code := runMain(t, work, testEnviron(),
		"--dist", "dist", "--dir", repo, "--cache", sharedCache(), "--platforms", "linux/amd64",
		"--workdir", "/app", "--user", "nonroot",
		"--file", "ui:/app/ui,chown=65532:65532", "--file", "config.yaml:/etc/hello/,chmod=0640",
		// RUN mkdir -p /app/data && chown 65532:65532 /app/data
		"--file", ":/app/data,chown=65532:65532",
		"--binary", "hello:/app/hello", "--binary", "helloctl:/usr/bin/helloctl")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	img := imageFor(t, testkit.LayoutIndex(t, filepath.Join(dist, "image")), "linux/amd64")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{strings.Join(cf.Config.Entrypoint, " "), cf.Config.WorkingDir, cf.Config.User}; !slices.Equal(got, []string{"/app/hello", "/app", "nonroot"}) {
		t.Errorf("entrypoint, workdir, user = %q", got)
	}

	hdrs, data := fsOf(t, img)
	type meta struct {
		Type     byte
		Mode     int64
		UID, GID int
	}
	metaOf := func(p string) meta {
		h, ok := hdrs[p]
		if !ok {
			return meta{}
		}
		return meta{h.Typeflag, h.Mode & 0o7777, h.Uid, h.Gid}
	}
	want := map[string]meta{
		"/app":                       {tar.TypeDir, 0o755, 0, 0},
		"/app/hello":                 {tar.TypeReg, 0o755, 0, 0},
		"/app/ui":                    {tar.TypeDir, 0o755, 65532, 65532},
		"/app/data":                  {tar.TypeDir, 0o755, 65532, 65532},
		"/app/ui/index.html":         {tar.TypeReg, 0o644, 65532, 65532},
		"/app/ui/assets/css/app.css": {tar.TypeReg, 0o644, 65532, 65532},
		"/usr/bin/helloctl":          {tar.TypeReg, 0o755, 0, 0},
		"/etc/hello/config.yaml":     {tar.TypeReg, 0o640, 0, 0},
		// What the base had is left as it was, not reset by a parent
		// entry: nonroot's home stays nonroot's.
		"/home/nonroot": {tar.TypeDir, 0o700, 65532, 65532},
		"/etc":          {tar.TypeDir, 0o755, 0, 0},
	}
	for p, w := range want {
		if got := metaOf(p); got != w {
			t.Errorf("%s: %+v, want %+v", p, got, w)
		}
	}
	for name, content := range ui {
		if data["/app/"+name] != content {
			t.Errorf("/app/%s = %q, want %q", name, data["/app/"+name], content)
		}
	}
	if _, ok := hdrs["/usr/local/bin/hello"]; ok {
		t.Errorf("hello is also at /usr/local/bin")
	}

	// Both SBOMs, valid against the official schemas, list every added
	// file with its SHA-256, and the binaries where they are.
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	sch := schemas(t)
	wantFiles := map[string]string{"/etc/hello/config.yaml": sha256Hex([]byte("listen: :8080\n"))}
	for name, content := range ui {
		wantFiles["/app/"+name] = sha256Hex([]byte(content))
	}
	for _, sb := range rec.Image.Platforms[0].SBOMs {
		raw, err := os.ReadFile(filepath.Join(dist, sb.Path))
		if err != nil {
			t.Fatal(err)
		}
		validateJSON(t, sch[sb.Format], raw)
		got := map[string]string{}
		var paths []string
		switch sb.Format {
		case FormatSPDX:
			var doc spdxDoc
			json.Unmarshal(raw, &doc)
			for _, p := range doc.Packages {
				paths = append(paths, p.PackageFileName)
				if p.PrimaryPackagePurpose == "FILE" && strings.HasPrefix(p.Name, "/") && len(p.Checksums) == 1 {
					got[p.Name] = p.Checksums[0].ChecksumValue
				}
			}
		case FormatCycloneDX:
			var doc cdxDoc
			json.Unmarshal(raw, &doc)
			for _, c := range doc.Components {
				for _, pr := range c.Properties {
					if pr.Name == "slipway:path" {
						paths = append(paths, pr.Value)
					}
				}
				if c.Type == "file" && len(c.Hashes) == 1 {
					got[c.Name] = c.Hashes[0].Content
				}
			}
		}
		if diff := cmp.Diff(wantFiles, got); diff != "" {
			t.Errorf("%s files (-want +got):\n%s", sb.Format, diff)
		}
		for _, bin := range []string{"/app/hello", "/usr/bin/helloctl"} {
			if !slices.Contains(paths, bin) {
				t.Errorf("%s does not place a binary at %s: %q", sb.Format, bin, paths)
			}
		}
	}
}

// A --file source with a symlink leading out of the current directory is
// refused before anything is written: the attack of copying the runner's
// registry login into a public image.
func TestMainFileSymlinkOutRefused(t *testing.T) {
	repo, dist := sampleDist(t)
	work := filepath.Dir(dist)
	writeFile(t, filepath.Join(work, "ui", "index.html"), "<h1>hi</h1>", 0o644)
	if err := os.Symlink(dockerLogin(t), filepath.Join(work, "ui", "config.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dockerLogin(t), filepath.Join(work, "login.json")); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"ui:/app/ui", "login.json:/app/login.json", "../../..:/app/all", "/etc/passwd:/app/passwd"} {
		_, stderr, code := runMain(t, work, testEnviron(), "--dist", "dist", "--dir", repo, "--cache", sharedCache(), "--file", spec)
		if code != cli.ExitUsage || !strings.Contains(stderr, "--file") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("--file %s: exit %d, want %d and one line naming --file:\n%s", spec, code, cli.ExitUsage, stderr)
		}
		if _, err := os.Stat(filepath.Join(dist, "image")); err == nil {
			t.Fatalf("--file %s: an image was written", spec)
		}
	}
}

// A user name must be one the base defines; numeric ids always pass.
func TestMainUserCheckedAgainstBase(t *testing.T) {
	for _, tc := range []struct {
		base, user string
		code       int
		want       string
	}{
		{"static", "app", cli.ExitUsage, "--user \"app\": base static has no user app in /etc/passwd (it has root, nobody, nonroot); give numeric ids"},
		{"static", "nonroot:app", cli.ExitUsage, "has no group app in /etc/group"},
		{"scratch", "nonroot", cli.ExitUsage, "base scratch has no /etc/passwd"},
		{"static", "nonroot", 0, ""},
		{"static", "nonroot:nonroot", 0, ""},
		{"static", "10001:10001", 0, ""},
		{"scratch", "10001", 0, ""},
	} {
		t.Run(tc.base+"/"+tc.user, func(t *testing.T) {
			repo, dist := sampleDist(t)
			_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), "--dist", "dist", "--dir", repo, "--cache", sharedCache(),
				"--platforms", "linux/amd64", "--base", tc.base, "--user", tc.user)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
		})
	}
}

func TestMainBinaryNotBuilt(t *testing.T) {
	repo, dist := sampleDist(t)
	_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), "--dist", "dist", "--dir", repo, "--cache", sharedCache(), "--binary", "server:/app/server")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--binary server: the build has no binary server; it has hello, helloctl") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}
