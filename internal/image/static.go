package image

import (
	"archive/zip"
	"bytes"
	"context"
	_ "embed"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The built-in static base is a minimal root in the spirit of
// distroless/static: users, a home, /tmp, CA roots and time zones, and
// nothing to execute. It is made in memory from what slipway carries, so it
// needs no pull and is the same bytes on every machine.

// StaticVersion is the static base's own version; change it with any
// change to its contents.
const StaticVersion = "1"

// TZDataVersion is the IANA release in tzdata/zoneinfo.zip.
const TZDataVersion = "2025c"

// NonRoot is the static base's default user, distroless's nonroot.
const NonRoot = "65532:65532"

// CACertsFile is where the static base keeps its CA roots, the path
// Debian and distroless use and SSL_CERT_FILE names.
const CACertsFile = "/etc/ssl/certs/ca-certificates.crt"

//go:embed tzdata/zoneinfo.zip
var zoneinfoZip []byte

// staticEpoch is the time on every file of the static base: its layer
// depends only on what it holds, not on when or where it was made.
var staticEpoch = time.Unix(0, 0).UTC()

const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`

const group = `root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
`

// nsswitch.conf makes glibc-style resolvers, and Go's, read /etc/hosts
// before DNS.
const nsswitch = "hosts: files dns\n"

func osRelease() string {
	return fmt.Sprintf(`PRETTY_NAME="Slipway static %[1]s"
NAME="Slipway static"
ID=slipway-static
VERSION_ID=%[1]s
HOME_URL="https://github.com/slipwayci/slipway"
`, StaticVersion)
}

// staticEntries lists the static base's files.
func staticEntries() ([]entry, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	entries := []entry{
		{name: "etc", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
		{name: "etc/os-release", mode: 0o644, data: []byte(osRelease())},
		{name: "etc/ssl", dir: true, mode: 0o755},
		{name: "etc/ssl/certs", dir: true, mode: 0o755},
		{name: CACertsFile[1:], mode: 0o644, data: certs},
		{name: "home", dir: true, mode: 0o755},
		{name: "home/nonroot", dir: true, mode: 0o700, uid: 65532, gid: 65532},
		{name: "root", dir: true, mode: 0o700},
		{name: "tmp", dir: true, mode: 0o1777},
		{name: "usr", dir: true, mode: 0o755},
		{name: "usr/share", dir: true, mode: 0o755},
		{name: "usr/share/zoneinfo", dir: true, mode: 0o755},
		{name: "var", dir: true, mode: 0o755},
	}
	zones, err := zoneEntries("usr/share/zoneinfo")
	if err != nil {
		return nil, err
	}
	return append(entries, zones...), nil
}

// staticBaseSource is the static base's one layer.
func staticBaseSource() (source, error) {
	entries, err := staticEntries()
	if err != nil {
		return source{}, err
	}
	return tarSource("slipway static base "+StaticVersion, entries, staticEpoch), nil
}

// caBundle is the Mozilla NSS roots as golang.org/x/crypto/x509roots
// maintains them, in PEM. Roots that NSS trusts only for certificates
// issued before a date are left out: a PEM file cannot carry that limit,
// and trusting them without it would trust more than NSS does.
func caBundle() ([]byte, error) {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
	}
	if b.Len() == 0 {
		return nil, fmt.Errorf("building CA bundle: no roots")
	}
	return b.Bytes(), nil
}

// zoneEntries unpacks Go's zoneinfo.zip under dir.
func zoneEntries(dir string) ([]entry, error) {
	zr, err := zip.NewReader(bytes.NewReader(zoneinfoZip), int64(len(zoneinfoZip)))
	if err != nil {
		return nil, fmt.Errorf("reading zoneinfo.zip: %w", err)
	}
	dirs := map[string]bool{}
	var out []entry
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("reading zoneinfo.zip: %w", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading zoneinfo.zip %s: %w", f.Name, err)
		}
		name := path.Join(dir, path.Clean(f.Name))
		for d := path.Dir(name); d != dir && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			out = append(out, entry{name: d, dir: true, mode: 0o755})
		}
		out = append(out, entry{name: name, mode: 0o644, data: data})
	}
	return out, nil
}

// StaticBase is the built-in static base as an index over platforms, with
// the layer slipway image would use (made in, or taken from, the layer
// cache in cacheDir). slipway image needs no copy of it; this is for
// publishing it, or giving another tool the same base.
func StaticBase(ctx context.Context, cacheDir string, platforms ...v1.Platform) (v1.ImageIndex, error) {
	src, err := staticBaseSource()
	if err != nil {
		return nil, err
	}
	l, _, err := layerCache{dir: cacheDir}.layer(ctx, src)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := staticImage(p, blobLayer{l})
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: plainImage{img}, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, nil
}
