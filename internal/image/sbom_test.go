package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// schemas compiles the official SPDX 2.3 and CycloneDX 1.5 schemas from
// testdata/schemas (see its README for their source), offline, with
// formats asserted.
func schemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	dir := filepath.Join(testkit.RepoRoot(t), "testdata", "schemas")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for file, url := range map[string]string{
		"spdx-2.3.schema.json":               "http://spdx.org/rdf/terms/2.3",
		"cyclonedx-1.5/bom-1.5.schema.json":  "http://cyclonedx.org/schema/bom-1.5.schema.json",
		"cyclonedx-1.5/spdx.schema.json":     "http://cyclonedx.org/schema/spdx.schema.json",
		"cyclonedx-1.5/jsf-0.82.schema.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for format, url := range map[string]string{
		FormatSPDX:      "http://spdx.org/rdf/terms/2.3",
		FormatCycloneDX: "http://cyclonedx.org/schema/bom-1.5.schema.json",
	} {
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("compiling the %s schema: %v", format, err)
		}
		out[format] = s
	}
	return out
}

func validateJSON(t *testing.T, s *jsonschema.Schema, data []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("the document does not validate: %v", err)
	}
}

// The schemas are not a formality: a document that breaks them fails.
func TestSchemasReject(t *testing.T) {
	sch := schemas(t)
	for format, doc := range map[string]string{
		FormatSPDX:      `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","dataLicense":"CC0-1.0","creationInfo":{"created":"2026-01-02T03:04:05Z","creators":[]}}`,
		FormatCycloneDX: `{"bomFormat":"CycloneDX","specVersion":"1.5","serialNumber":"urn:uuid:not-a-uuid"}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch[format].Validate(inst); err == nil {
			t.Errorf("%s: an invalid document validates", format)
		}
	}
}

// Every SBOM the step writes validates against its official schema, for
// each base kind, and lists the binaries, the modules and the base.
func TestSBOMs(t *testing.T) {
	sch := schemas(t)
	host := testRegistry(t)
	ref := pushIndex(t, host, "base/static:1", baseIndex(t, "linux/amd64", "linux/arm64"))
	for _, base := range []string{BaseStatic, BaseScratch, ref} {
		t.Run(strings.ReplaceAll(base, "/", "_"), func(t *testing.T) {
			o, err := buildImage(t, Options{Base: base})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := record.Load(o.Dist)
			if err != nil {
				t.Fatal(err)
			}
			for _, pi := range rec.Image.Platforms {
				var formats []string
				for _, sb := range pi.SBOMs {
					formats = append(formats, sb.Format)
					data, err := os.ReadFile(filepath.Join(o.Dist, sb.Path))
					if err != nil {
						t.Fatal(err)
					}
					if got := sha256Hex(data); got != sb.SHA256 {
						t.Errorf("%s: SHA-256 %s, record says %s", sb.Path, got, sb.SHA256)
					}
					validateJSON(t, sch[sb.Format], data)
					checkSBOM(t, sb.Format, data, rec, pi, base)
				}
				if diff := cmp.Diff([]string{FormatSPDX, FormatCycloneDX}, formats); diff != "" {
					t.Errorf("%s SBOM formats (-want +got):\n%s", pi.Platform, diff)
				}
			}
		})
	}
}

// sbomFacts is what both formats must say, in a form they share.
type sbomFacts struct {
	Names    map[string]string // name -> version
	Hashes   map[string]string // name -> sha256
	Purls    []string
	Danglers []string // relationship ends that name no element
}

func checkSBOM(t *testing.T, format string, data []byte, rec *record.Record, pi record.PlatformImage, base string) {
	t.Helper()
	f := sbomFacts{Names: map[string]string{}, Hashes: map[string]string{}}
	switch format {
	case FormatSPDX:
		var doc spdxDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{"SPDXRef-DOCUMENT": true}
		for _, p := range doc.Packages {
			ids[p.SPDXID] = true
			f.Names[p.Name] = p.VersionInfo
			for _, c := range p.Checksums {
				f.Hashes[p.Name] = c.ChecksumValue
			}
			for _, r := range p.ExternalRefs {
				f.Purls = append(f.Purls, r.ReferenceLocator)
			}
		}
		for _, r := range doc.Relationships {
			for _, end := range []string{r.Element, r.Related} {
				if !ids[end] {
					f.Danglers = append(f.Danglers, end)
				}
			}
		}
		if !strings.HasSuffix(doc.DocumentNamespace, strings.TrimPrefix(pi.Digest, "sha256:")) {
			t.Errorf("namespace %s does not name manifest %s", doc.DocumentNamespace, pi.Digest)
		}
	case FormatCycloneDX:
		var doc cdxDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		refs := map[string]bool{doc.Metadata.Component.BOMRef: true}
		for _, c := range append([]cdxComponent{doc.Metadata.Component}, doc.Components...) {
			refs[c.BOMRef] = true
			f.Names[c.Name] = c.Version
			for _, h := range c.Hashes {
				f.Hashes[c.Name] = h.Content
			}
			if c.PURL != "" {
				f.Purls = append(f.Purls, c.PURL)
			}
		}
		for _, d := range doc.Dependencies {
			for _, end := range append([]string{d.Ref}, d.DependsOn...) {
				if !refs[end] {
					f.Danglers = append(f.Danglers, end)
				}
			}
		}
	}
	if len(f.Danglers) > 0 {
		t.Errorf("%s: relationships name unknown elements: %v", format, f.Danglers)
	}
	for _, a := range rec.Artifacts {
		if a.Platform != pi.Platform {
			continue
		}
		if f.Hashes[a.Name] != a.SHA256 {
			t.Errorf("%s: %s has hash %q, want the binary's %s", format, a.Name, f.Hashes[a.Name], a.SHA256)
		}
	}
	want := map[string]string{
		"hello":             rec.Version,
		"helloctl":          rec.Version,
		"example.com/hello": "v" + rec.Version,
		"stdlib":            rec.GoVersion,
	}
	switch base {
	case BaseStatic:
		want["slipway-static"] = StaticVersion
		want["tzdata"] = TZDataVersion
	case BaseScratch:
	default:
		want[base] = pi.BaseDigest
	}
	for name, ver := range want {
		if got, ok := f.Names[name]; !ok || got != ver {
			t.Errorf("%s: %s has version %q (listed: %v), want %q", format, name, got, ok, ver)
		}
	}
	if base == BaseScratch && len(f.Names) != len(want) {
		t.Errorf("%s: a scratch image lists %v, want only %v", format, f.Names, want)
	}
	wantPurl := "pkg:oci/hello@" + strings.Replace(pi.Digest, ":", "%3A", 1) + "?arch=" + pi.Platform[strings.LastIndex(pi.Platform, "/")+1:]
	if !contains(f.Purls, wantPurl) {
		t.Errorf("%s: no purl %s for the image in %v", format, wantPurl, f.Purls)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A binary's modules come from its build info: the main module at the
// record's version when Go says (devel), stdlib, and each dependency with
// its go.sum hash, replacements resolved.
func TestBinaryModules(t *testing.T) {
	bi, err := debug.ParseBuildInfo(strings.Join([]string{
		"path\texample.com/svc/cmd/api",
		"mod\texample.com/svc\t(devel)\t",
		"dep\tgithub.com/google/go-containerregistry\tv0.22.1\th1:47DHSYd/6hJbu7d2dw1jP/SA+6I3kWgS7bfl+dK2mWs=",
		"dep\tgolang.org/x/sync\tv0.1.0\th1:wsuoTGHzEhffawBOhz5CYhcrV4IdKZbEyZjBMuTp12o=",
		"=>\tgolang.org/x/sync\tv0.2.0\th1:PUR+T4wwASmuSTYdKjYHI5TD22Wy5ogLU5qZCOLxBrI=",
		"dep\texample.com/local\tv1.0.0\t",
		"=>\t../local\t\t",
		"build\tGOOS=linux",
		"build\t-ldflags=\"-X main.token=secret\"",
	}, "\n") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	// ParseBuildInfo leaves it unset. A build with GOEXPERIMENT=jsonv2, as
	// slipway's own release is, says so after the release; the standard
	// library is still go1.26.8's.
	bi.GoVersion = "go1.26.8 X:jsonv2"
	bin := binaryOf(bi, record.Artifact{Name: "api", Path: "api_linux_amd64/api", SHA256: "ab"}, &record.Record{Version: "1.2.3"})
	type mod struct{ Name, Version, Purl, SHA256 string }
	var got []mod
	for _, m := range bin.modules {
		got = append(got, mod{m.name, m.version, m.purl, m.sha256})
	}
	want := []mod{
		{"example.com/svc", "v1.2.3", "pkg:golang/example.com/svc@v1.2.3", ""},
		{"stdlib", "go1.26.8", "pkg:golang/stdlib@1.26.8", ""},
		{"github.com/google/go-containerregistry", "v0.22.1", "pkg:golang/github.com/google/go-containerregistry@v0.22.1", "e3b0c749877fea125bbbb776770d633ff480fba237916812edb7e5f9d2b6996b"},
		{"golang.org/x/sync", "v0.2.0", "pkg:golang/golang.org/x/sync@v0.2.0", "3d447e4f8c300129ae49361d2a36072394c3db65b2e6880b539a9908e2f106b2"},
		{"example.com/local", "(devel)", "pkg:golang/example.com/local@%28devel%29", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if !slices.Contains(bin.props, [2]string{"golang:version", "go1.26.8 X:jsonv2"}) {
		t.Errorf("the binary's properties %q lack the Go version it states, experiment included", bin.props)
	}
	if bin.file != "/usr/local/bin/api" || bin.sha256 != "ab" {
		t.Errorf("binary at %s with hash %s", bin.file, bin.sha256)
	}
	for _, p := range bin.props {
		if strings.Contains(p[1], "secret") {
			t.Errorf("property %s carries the build's -ldflags: %s", p[0], p[1])
		}
	}
}

func TestPurls(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"golang", golangPurl("github.com/Foo/bar", "v1.2.3+incompatible"), "pkg:golang/github.com/Foo/bar@v1.2.3%2Bincompatible"},
		{"oci", ociPurl("Static", "sha256:abc", "gcr.io/distroless/static", "arm64"), "pkg:oci/static@sha256%3Aabc?arch=arm64&repository_url=gcr.io%2Fdistroless%2Fstatic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}
