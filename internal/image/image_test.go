package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

func TestStaticImage(t *testing.T) {
	o, err := buildImage(t, Options{
		Labels:      map[string]string{"org.example.team": "payments"},
		Annotations: map[string]string{"org.example.tier": "gold"},
		Ports:       []string{"8080"},
		Licenses:    "Apache-2.0",
		Source:      "https://github.com/example/hello",
	})
	if err != nil {
		t.Fatal(err)
	}
	idx := testkit.LayoutIndex(t, o.Layout)
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the index does not validate: %v", err)
	}
	rec, err := record.Load(o.Dist)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantAnns := map[string]string{
		annSource:          "https://github.com/example/hello",
		annRevision:        rec.Commit,
		annVersion:         rec.Version,
		annCreated:         testkit.CommitDate,
		annTitle:           "hello",
		annLicenses:        "Apache-2.0",
		annBaseName:        "static",
		"org.example.tier": "gold",
	}
	if diff := cmp.Diff(wantAnns, im.Annotations); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}
	var plats []string
	for _, d := range im.Manifests {
		plats = append(plats, platformString(*d.Platform))
		if d.ArtifactType != "" {
			t.Errorf("%s descriptor has artifactType %q; a plain image has none", d.Digest, d.ArtifactType)
		}
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, plats); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}

	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			img := imageFor(t, idx, "linux/"+arch)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != arch || cf.Created.Format("2006-01-02T15:04:05Z") != testkit.CommitDate {
				t.Errorf("config platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
			}
			want := v1.Config{
				Entrypoint:   []string{"/usr/local/bin/hello"},
				Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
				User:         "65532:65532",
				WorkingDir:   "/home/nonroot",
				ExposedPorts: map[string]struct{}{"8080/tcp": {}},
				Labels:       map[string]string{"org.example.team": "payments"},
			}
			if diff := cmp.Diff(want, cf.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || len(m.Layers) != 3 {
				t.Errorf("manifest %s with %d layers, want OCI with the base and two binaries", m.MediaType, len(m.Layers))
			}
			if m.Annotations[annBaseDigest] == "" || m.Annotations[annTitle] != "hello" {
				t.Errorf("manifest annotations %v lack base.digest or title", m.Annotations)
			}
			var created []string
			for _, h := range cf.History {
				created = append(created, h.CreatedBy)
			}
			wantHistory := []string{
				"slipway static base " + StaticVersion,
				"slipway image: example.com/hello/cmd/hello " + rec.Version + " at /usr/local/bin/hello",
				"slipway image: example.com/hello/cmd/helloctl " + rec.Version + " at /usr/local/bin/helloctl",
			}
			if diff := cmp.Diff(wantHistory, created); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}

	// The record's section matches the layout.
	d, _ := idx.Digest()
	if rec.Image == nil || rec.Image.Digest != d.String() || rec.Image.Layout != "image" || len(rec.Image.Platforms) != 2 {
		t.Fatalf("record image section = %+v, want digest %s for 2 platforms in image", rec.Image, d)
	}
	for _, pi := range rec.Image.Platforms {
		img := imageFor(t, idx, pi.Platform)
		md, _ := img.Digest()
		if pi.Digest != md.String() {
			t.Errorf("record %s digest %s, layout %s", pi.Platform, pi.Digest, md)
		}
	}
}

// The same binary's layer is shared by rebuilds that change another
// binary, and the layers common to all platforms are one blob.
func TestLayersShared(t *testing.T) {
	o, err := buildImage(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx := testkit.LayoutIndex(t, o.Layout)
	amd, _ := imageFor(t, idx, "linux/amd64").Manifest()
	arm, _ := imageFor(t, idx, "linux/arm64").Manifest()
	if amd.Layers[0].Digest != arm.Layers[0].Digest {
		t.Errorf("the static base layer differs between platforms: %s, %s", amd.Layers[0].Digest, arm.Layers[0].Digest)
	}
	if amd.Layers[1].Digest == arm.Layers[1].Digest {
		t.Errorf("amd64 and arm64 binaries share a layer")
	}
}

func TestEntrypoint(t *testing.T) {
	tests := []struct {
		name    string
		module  string
		names   []string
		want    string
		pick    string
		wantErr string
	}{
		{name: "named after the module", module: "example.com/hello", names: []string{"hello", "helloctl"}, want: "hello"},
		{name: "only binary", module: "example.com/svc", names: []string{"api"}, want: "api"},
		{name: "major version suffix", module: "example.com/hello/v2", names: []string{"hello", "helloctl"}, want: "hello"},
		{name: "asked for", module: "example.com/hello", names: []string{"hello", "helloctl"}, pick: "helloctl", want: "helloctl"},
		{name: "ambiguous", module: "example.com/svc", names: []string{"api", "worker"}, wantErr: "the build has binaries api, worker; name the one to run with --entrypoint"},
		{name: "unknown", module: "example.com/hello", names: []string{"hello"}, pick: "nope", wantErr: `--entrypoint "nope" is not one of the built binaries: hello`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &target{}
			for _, n := range tt.names {
				tg.arts = append(tg.arts, record.Artifact{Name: n})
			}
			got, err := chooseEntrypoint(tt.module, []*target{tg}, tt.pick)
			if tt.wantErr != "" {
				// As the command prints it: options named as flags.
				if err == nil || cli.Flags(err).Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLayoutRef(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3": "1.2.3",
		"0.0.0-20260102030405-abcdef123456+dirty": "0.0.0-20260102030405-abcdef123456-dirty",
		"-x": "v-x",
	} {
		if got := layoutRef(in); got != want {
			t.Errorf("layoutRef(%q) = %q, want %q", in, got, want)
		}
	}
}

// editRecord changes the record in dist.
func editRecord(t *testing.T, dist string, edit func(*record.Record)) {
	t.Helper()
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	edit(rec)
	if err := rec.Save(dist); err != nil {
		t.Fatal(err)
	}
}

// Every configuration mistake is one line and exit 2.
func TestMainUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		setup   func(t *testing.T, dist string)
		wantErr string
	}{
		{name: "no record", args: []string{"--dist", "nowhere"}, wantErr: "no slipway.json found in"},
		{name: "record from another commit", setup: func(t *testing.T, dist string) {
			editRecord(t, dist, func(r *record.Record) { r.Commit = strings.Repeat("a", 40) })
		}, wantErr: "is from commit aaaaaaaaaaaa but the checkout is at"},
		{name: "record naming a binary out of dist", setup: func(t *testing.T, dist string) {
			editRecord(t, dist, func(r *record.Record) { r.Artifacts[0].Path = "../../.docker/config.json" })
		}, wantErr: "names binary ../../.docker/config.json, outside it"},
		{name: "bad label", args: []string{"--label", "no equals"}, wantErr: `--label "no equals" is not KEY=VALUE`},
		{name: "bad annotation key", args: []string{"--annotation", "a b=c"}, wantErr: `--annotation "a b=c": key "a b" must be`},
		{name: "bad port", args: []string{"--port", "99999"}, wantErr: "--port \"99999\" is not PORT"},
		{name: "relative workdir", args: []string{"--workdir", "app"}, wantErr: "--workdir \"app\" must be an absolute path"},
		{name: "unbuilt platform", args: []string{"--platforms", "linux/riscv64"}, wantErr: "--platforms: linux/riscv64 was not built; the build has linux/amd64, linux/arm64"},
		{name: "static files missing", args: []string{"--static-files", "nope"}, wantErr: "--static-files "},
		{name: "static files unreadable", setup: func(t *testing.T, dist string) {
			if os.Getuid() == 0 {
				// root reads anything; a file in place of the directory
				// stands in for an unreadable one.
				writeFile(t, filepath.Join(dist, "..", "static"), "", 0o644)
				return
			}
			if err := os.MkdirAll(filepath.Join(dist, "..", "static"), 0o000); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--static-files", "static"}, wantErr: "--static-files "},
		{name: "windows on linux", setup: func(t *testing.T, dist string) {
			editRecord(t, dist, func(r *record.Record) {
				r.Artifacts = append(r.Artifacts, record.Artifact{
					Name: "hello", Path: "hello_windows_amd64/hello.exe", Platform: "windows/amd64", OS: "windows", Arch: "amd64",
				})
			})
		}, wantErr: "windows/amd64 binaries cannot run on base static, which offers linux/*"},
		{name: "merge without dirs", args: []string{"--merge"}, wantErr: "--merge needs the directories"},
		{name: "stray argument", args: []string{"dist"}, wantErr: "unexpected arguments dist; did you mean --merge?"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, dist := sampleDist(t)
			if tt.setup != nil {
				tt.setup(t, dist)
			}
			args := append([]string{"--dist", dist, "--dir", repo, "--cache", sharedCache()}, tt.args...)
			_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantErr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines > 0 {
				t.Errorf("the error takes %d lines:\n%s", lines+1, stderr)
			}
		})
	}
}

// The CLI writes its outputs and a summary; the summary is compared with a
// golden file, with the digests that change with the toolchain masked.
func TestMainOutputs(t *testing.T) {
	repo, dist := sampleDist(t)
	summary := filepath.Join(t.TempDir(), "summary.md")
	stdout, stderr, code := runMain(t, filepath.Dir(dist), testEnviron("SLIPWAY_SUMMARY_FILE="+summary),
		"--dist", "dist", "--dir", repo, "--cache", sharedCache())
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if kv, ok := strings.CutPrefix(line, "output "); ok {
			k, v, _ := strings.Cut(kv, "=")
			outputs[k] = v
		}
	}
	var sboms []map[string]string
	if err := json.Unmarshal([]byte(outputs["sbom"]), &sboms); err != nil {
		t.Fatalf("sbom output %q: %v", outputs["sbom"], err)
	}
	delete(outputs, "sbom")
	if len(sboms) != 4 || sboms[0]["path"] != "dist/sbom/linux_amd64.spdx.json" || sboms[0]["format"] != FormatSPDX {
		t.Errorf("sbom output = %v, want two formats for each of two platforms under dist/sbom", sboms)
	}
	want := map[string]string{
		"digest":    rec.Image.Digest,
		"layout":    "dist/image",
		"platforms": "linux/amd64,linux/arm64",
		"record":    "dist/slipway.json",
	}
	if diff := cmp.Diff(want, outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.md", maskDigests(rec, string(md)))
}

// maskDigests replaces the record's digests and version in s by names, so
// a golden file survives a new Go release or commit.
func maskDigests(rec *record.Record, s string) string {
	pairs := []string{rec.Image.Digest, "INDEX", rec.Version, "VERSION"}
	for _, pi := range rec.Image.Platforms {
		pairs = append(pairs, pi.Digest, "MANIFEST("+pi.Platform+")", cli.HumanSize(pi.Size), "SIZE")
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test -update", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}
