package image

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/safefile"
	"github.com/slipwayci/slipway/internal/version"
)

// SBOM formats, as the record names them.
const (
	FormatSPDX      = "spdx-2.3+json"
	FormatCycloneDX = "cyclonedx-1.5+json"
)

// SBOMDir is where the SBOMs go, under the record's directory.
const SBOMDir = "sbom"

// inventory is what one platform image holds, whatever the SBOM format:
// the formats below are two renderings of it.
type inventory struct {
	created  time.Time
	platform string
	digest   string // the image manifest
	image    component
	base     *component
	baseHas  []component // what slipway put in its own base
	binaries []binary
	files    []component // added by --file and --static-files
}

// component is one thing in an image: the image, its base, a binary, a
// Go module.
type component struct {
	ref     string // unique in the document: a purl, or path for a file
	name    string
	version string
	purl    string
	kind    string // container, application, library, data
	sha256  string // hex
	// hashNote says what sha256 is a hash of, where it is not the file.
	hashNote string
	file     string // path in the image
	supplier string
	props    [][2]string
}

// binary is a Go binary and the modules compiled into it.
type binary struct {
	component
	modules []component // the main module first, then stdlib and deps
}

// goSettings are the build settings worth carrying into an SBOM: what the
// binary targets and how it was built, not its full command line.
var goSettings = map[string]bool{
	"GOOS": true, "GOARCH": true, "GOAMD64": true, "GOARM": true, "GOARM64": true, "GO386": true,
	"CGO_ENABLED": true, "-trimpath": true, "-tags": true, "-buildmode": true,
	"vcs": true, "vcs.revision": true, "vcs.time": true, "vcs.modified": true,
}

// describe reads each binary's embedded build information into the
// platform image's inventory.
func describe(t *target, rec *record.Record, dist string, b *base, title string, places map[string]string, created time.Time) (inventory, error) {
	digest, err := t.image.Digest()
	if err != nil {
		return inventory{}, err
	}
	p := platformString(t.platform)
	purl := ociPurl(title, digest.String(), "", t.platform.Architecture)
	inv := inventory{
		created: created, platform: p, digest: digest.String(),
		image: component{ref: purl, name: title, version: rec.Version, kind: "container", purl: purl},
	}
	switch {
	case b.spec == BaseStatic:
		c := component{ref: "slipway-static@" + t.baseDigest, name: "slipway-static", version: StaticVersion, kind: "container",
			supplier: "slipway", props: [][2]string{{"slipway:base", "static"}, {"slipway:base.digest", t.baseDigest}}}
		inv.base = &c
		inv.baseHas = staticContents()
	case t.baseDigest != "":
		repo, _, _ := strings.Cut(b.name, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		purl := ociPurl(path.Base(repo), t.baseDigest, repo, t.platform.Architecture)
		c := component{ref: purl, name: b.name, version: t.baseDigest, kind: "container", purl: purl}
		inv.base = &c
	}
	for _, a := range t.arts {
		bin, err := describeBinary(filepath.Join(dist, filepath.FromSlash(a.Path)), a, rec, binaryPath(places, a.Name, path.Base(a.Path)))
		if err != nil {
			return inventory{}, fmt.Errorf("reading build info of %s for %s: %w", a.Name, p, err)
		}
		inv.binaries = append(inv.binaries, bin)
	}
	for _, f := range t.added {
		inv.files = append(inv.files, component{
			ref: "file:" + f.path, name: f.path, kind: "file", sha256: f.sha256, file: f.path,
		})
	}
	return inv, nil
}

func describeBinary(file string, a record.Artifact, rec *record.Record, target string) (binary, error) {
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		return binary{}, err
	}
	return binaryAt(bi, a, rec, target), nil
}

// binaryOf is the binary's component and its modules, from its build info,
// at its default place.
func binaryOf(bi *debug.BuildInfo, a record.Artifact, rec *record.Record) binary {
	return binaryAt(bi, a, rec, "/"+path.Join(BinDir, path.Base(a.Path)))
}

// binaryAt is binaryOf for a binary at target in the image.
func binaryAt(bi *debug.BuildInfo, a record.Artifact, rec *record.Record, target string) binary {
	bin := binary{component: component{
		ref: "file:" + target, name: a.Name, version: rec.Version, kind: "application",
		sha256: a.SHA256, file: target,
		props: [][2]string{{"golang:package", bi.Path}, {"golang:version", bi.GoVersion}},
	}}
	for _, s := range bi.Settings {
		if goSettings[s.Key] {
			bin.props = append(bin.props, [2]string{"golang:build:" + s.Key, s.Value})
		}
	}
	main := bi.Main
	if main.Version == "" || main.Version == "(devel)" {
		// A build from a checkout is "(devel)" to Go; the record knows
		// which version it is.
		main.Version = "v" + rec.Version
	}
	bin.modules = append(bin.modules, goModule(main.Path, main.Version, main.Sum))
	// The standard library is the release's: a build with an experiment
	// (GOEXPERIMENT=jsonv2 says "go1.26.8 X:jsonv2") links the same
	// packages, and the experiment stays in the binary's golang:version.
	release := record.GoRelease(bi.GoVersion)
	std := strings.TrimPrefix(release, "go")
	bin.modules = append(bin.modules, component{
		ref: "pkg:golang/stdlib@" + std, name: "stdlib", version: release, kind: "library",
		purl: "pkg:golang/stdlib@" + std, supplier: "Organization: The Go Authors",
	})
	for _, d := range bi.Deps {
		if r := d.Replace; r != nil {
			if r.Version == "" {
				// A local directory: no version anyone else can name.
				d = &debug.Module{Path: d.Path, Version: "(devel)"}
			} else {
				d = r
			}
		}
		bin.modules = append(bin.modules, goModule(d.Path, d.Version, d.Sum))
	}
	return bin
}

// goModule is a module with its go.sum hash: h1 is a SHA-256, though of
// the module's file list rather than of one file, which the note says.
func goModule(modPath, ver, sum string) component {
	c := component{
		name: modPath, version: ver, kind: "library", purl: golangPurl(modPath, ver),
	}
	c.ref = c.purl
	if h, ok := strings.CutPrefix(sum, "h1:"); ok {
		if raw, err := base64.StdEncoding.DecodeString(h); err == nil && len(raw) == sha256.Size {
			c.sha256 = hex.EncodeToString(raw)
			c.hashNote = "go.sum " + sum
		}
	}
	return c
}

// staticContents lists what the static base carries that has a version
// of its own.
func staticContents() []component {
	fallback := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/crypto/x509roots/fallback" {
				fallback = d.Version
			}
		}
	}
	ca := goModule("golang.org/x/crypto/x509roots/fallback", fallback, "")
	ca.kind, ca.file = "data", CACertsFile
	ca.props = [][2]string{{"slipway:content", "Mozilla NSS root certificates, unconstrained roots only"}}
	return []component{ca, {
		ref: "pkg:generic/tzdata@" + TZDataVersion, name: "tzdata", version: TZDataVersion, kind: "data",
		purl: "pkg:generic/tzdata@" + TZDataVersion, file: "/usr/share/zoneinfo", supplier: "Organization: IANA",
	}}
}

// golangPurl is pkg:golang/<module path>@<version>, each part escaped.
func golangPurl(modPath, ver string) string {
	parts := strings.Split(modPath, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "pkg:golang/" + strings.Join(parts, "/") + "@" + purlVersion(ver)
}

// purlVersion percent-encodes a version as purl asks, ':' and '+'
// included (url.PathEscape leaves those alone).
func purlVersion(v string) string {
	return strings.NewReplacer(":", "%3A", "+", "%2B").Replace(url.PathEscape(v))
}

// ociPurl is pkg:oci/<name>@<digest>, with the repository and arch.
func ociPurl(name, digest, repo, arch string) string {
	q := url.Values{}
	if arch != "" {
		q.Set("arch", arch)
	}
	if repo != "" {
		q.Set("repository_url", repo)
	}
	s := "pkg:oci/" + url.PathEscape(strings.ToLower(name)) + "@" + purlVersion(digest)
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// writeSBOMs writes both formats for each target under dist/sbom and
// returns what the record lists. The directory is replaced, so SBOMs of a
// platform no longer built do not linger.
func writeSBOMs(targets []*target, rec *record.Record, dist string, b *base, title string, places map[string]string, created time.Time) (map[*target][]record.SBOM, error) {
	dir := filepath.Join(dist, SBOMDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", dir, err)
	}
	out := map[*target][]record.SBOM{}
	for _, t := range targets {
		inv, err := describe(t, rec, dist, b, title, places, created)
		if err != nil {
			return nil, err
		}
		stem := strings.ReplaceAll(platformString(t.platform), "/", "_")
		for _, f := range []struct {
			format, ext string
			render      func(inventory) any
		}{
			{FormatSPDX, ".spdx.json", func(i inventory) any { return spdxDocument(i) }},
			{FormatCycloneDX, ".cdx.json", func(i inventory) any { return cyclonedxDocument(i) }},
		} {
			data, err := json.MarshalIndent(f.render(inv), "", "  ")
			if err != nil {
				return nil, fmt.Errorf("encoding %s SBOM: %w", f.format, err)
			}
			data = append(data, '\n')
			rel := path.Join(SBOMDir, stem+f.ext)
			if err := safefile.Write(filepath.Join(dist, filepath.FromSlash(rel)), data, 0o644); err != nil {
				return nil, err
			}
			sum := sha256.Sum256(data)
			out[t] = append(out[t], record.SBOM{Format: f.format, Path: rel, SHA256: hex.EncodeToString(sum[:])})
		}
	}
	return out, nil
}

// tool is how the SBOMs name their maker.
func tool() (name, ver string) { return "slipway", version.String() }

// --- SPDX 2.3 -------------------------------------------------------------

type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string         `json:"SPDXID"`
	Name                  string         `json:"name"`
	VersionInfo           string         `json:"versionInfo,omitempty"`
	PackageFileName       string         `json:"packageFileName,omitempty"`
	Supplier              string         `json:"supplier,omitempty"`
	DownloadLocation      string         `json:"downloadLocation"`
	FilesAnalyzed         bool           `json:"filesAnalyzed"`
	Checksums             []spdxChecksum `json:"checksums,omitempty"`
	LicenseConcluded      string         `json:"licenseConcluded"`
	LicenseDeclared       string         `json:"licenseDeclared"`
	CopyrightText         string         `json:"copyrightText"`
	ExternalRefs          []spdxRef      `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string         `json:"primaryPackagePurpose,omitempty"`
	Comment               string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID makes an SPDX identifier from a component's ref: readable, and
// unique through a short hash of the whole ref.
func spdxID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	name := strings.Trim(spdxIDChars.ReplaceAllString(ref, "-"), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return "SPDXRef-" + name + "-" + hex.EncodeToString(sum[:4])
}

func spdxDocument(inv inventory) spdxDoc {
	name, ver := tool()
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: inv.image.name + "-" + inv.image.version,
		DocumentNamespace: "https://spdx.org/spdxdocs/slipway/" + url.PathEscape(inv.image.name) + "-" +
			strings.ReplaceAll(inv.platform, "/", "-") + "-" + strings.TrimPrefix(inv.digest, "sha256:"),
		CreationInfo: spdxCreation{Created: inv.created.UTC().Format(time.RFC3339), Creators: []string{"Tool: " + name + "-" + ver}},
	}
	seen := map[string]bool{}
	add := func(c component, purpose string) string {
		id := spdxID(c.ref)
		if seen[id] {
			return id
		}
		seen[id] = true
		p := spdxPackage{
			SPDXID: id, Name: c.name, VersionInfo: c.version, PackageFileName: c.file, Supplier: c.supplier,
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION",
			CopyrightText: "NOASSERTION", PrimaryPackagePurpose: purpose, Comment: c.hashNote,
		}
		if c.sha256 != "" {
			p.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: c.sha256}}
		}
		if c.purl != "" {
			p.ExternalRefs = []spdxRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: c.purl}}
		}
		doc.Packages = append(doc.Packages, p)
		return id
	}
	rel := func(a, typ, b string) {
		doc.Relationships = append(doc.Relationships, spdxRelationship{a, typ, b})
	}
	img := add(inv.image, "CONTAINER")
	rel("SPDXRef-DOCUMENT", "DESCRIBES", img)
	if inv.base != nil {
		base := add(*inv.base, "CONTAINER")
		rel(img, "DESCENDANT_OF", base)
		for _, c := range inv.baseHas {
			rel(base, "CONTAINS", add(c, "FILE"))
		}
	}
	for _, b := range inv.binaries {
		bin := add(b.component, "APPLICATION")
		rel(img, "CONTAINS", bin)
		for i, m := range b.modules {
			kind := "STATIC_LINK"
			if i == 0 {
				kind = "GENERATED_FROM"
			}
			rel(bin, kind, add(m, "LIBRARY"))
		}
	}
	for _, f := range inv.files {
		rel(img, "CONTAINS", add(f, "FILE"))
	}
	sort.SliceStable(doc.Packages[1:], func(i, j int) bool { return doc.Packages[i+1].SPDXID < doc.Packages[j+1].SPDXID })
	return doc
}

// --- CycloneDX 1.5 --------------------------------------------------------

type cdxDoc struct {
	BOMFormat    string          `json:"bomFormat"`
	SpecVersion  string          `json:"specVersion"`
	SerialNumber string          `json:"serialNumber"`
	Version      int             `json:"version"`
	Metadata     cdxMetadata     `json:"metadata"`
	Components   []cdxComponent  `json:"components"`
	Dependencies []cdxDependency `json:"dependencies"`
}

type cdxMetadata struct {
	Timestamp string       `json:"timestamp"`
	Tools     cdxTools     `json:"tools"`
	Component cdxComponent `json:"component"`
}

type cdxTools struct {
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type       string        `json:"type"`
	BOMRef     string        `json:"bom-ref,omitempty"`
	Supplier   *cdxSupplier  `json:"supplier,omitempty"`
	Name       string        `json:"name"`
	Version    string        `json:"version,omitempty"`
	Hashes     []cdxHash     `json:"hashes,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	Properties []cdxProperty `json:"properties,omitempty"`
}

type cdxSupplier struct {
	Name string `json:"name"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxDependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

func cdxOf(c component) cdxComponent {
	out := cdxComponent{Type: c.kind, BOMRef: c.ref, Name: c.name, Version: c.version, PURL: c.purl}
	if c.supplier != "" {
		out.Supplier = &cdxSupplier{Name: strings.TrimPrefix(c.supplier, "Organization: ")}
	}
	if c.sha256 != "" {
		out.Hashes = []cdxHash{{Alg: "SHA-256", Content: c.sha256}}
	}
	if c.file != "" {
		out.Properties = append(out.Properties, cdxProperty{"slipway:path", c.file})
	}
	if c.hashNote != "" {
		out.Properties = append(out.Properties, cdxProperty{"slipway:hash", c.hashNote})
	}
	for _, p := range c.props {
		out.Properties = append(out.Properties, cdxProperty{p[0], p[1]})
	}
	return out
}

// serial is a UUID (version 5 style, from SHA-256) fixed by the image, so
// the same image gives the same BOM.
func serial(seed string) string {
	s := sha256.Sum256([]byte(seed))
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	h := hex.EncodeToString(s[:16])
	return fmt.Sprintf("urn:uuid:%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func cyclonedxDocument(inv inventory) cdxDoc {
	name, ver := tool()
	doc := cdxDoc{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", SerialNumber: serial("cyclonedx:" + inv.image.purl), Version: 1,
		Metadata: cdxMetadata{
			Timestamp: inv.created.UTC().Format(time.RFC3339),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: name, Version: ver}}},
			Component: cdxOf(inv.image),
		},
		Components: []cdxComponent{},
	}
	seen := map[string]bool{}
	deps := map[string][]string{}
	add := func(c component) string {
		if !seen[c.ref] {
			seen[c.ref] = true
			doc.Components = append(doc.Components, cdxOf(c))
		}
		return c.ref
	}
	dependOn := func(from, to string) {
		for _, d := range deps[from] {
			if d == to {
				return
			}
		}
		deps[from] = append(deps[from], to)
	}
	if inv.base != nil {
		base := add(*inv.base)
		dependOn(inv.image.ref, base)
		for _, c := range inv.baseHas {
			dependOn(base, add(c))
		}
	}
	for _, b := range inv.binaries {
		bin := add(b.component)
		dependOn(inv.image.ref, bin)
		for _, m := range b.modules {
			dependOn(bin, add(m))
		}
	}
	for _, f := range inv.files {
		dependOn(inv.image.ref, add(f))
	}
	sort.SliceStable(doc.Components, func(i, j int) bool { return doc.Components[i].BOMRef < doc.Components[j].BOMRef })
	refs := []string{inv.image.ref}
	for _, c := range doc.Components {
		refs = append(refs, c.BOMRef)
	}
	for _, r := range refs {
		doc.Dependencies = append(doc.Dependencies, cdxDependency{Ref: r, DependsOn: deps[r]})
	}
	return doc
}
