package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/slipwayci/slipway/internal/testkit"
)

// tarFile is what a test checks of one tar entry.
type tarFile struct {
	Type     byte
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Link     string
	Data     string
}

// readTar reads a layer's uncompressed tar into a map by name, keeping the
// bodies of files no bigger than keep bytes.
func readTar(t *testing.T, r io.Reader, keep int) (map[string]tarFile, []string) {
	t.Helper()
	files := map[string]tarFile{}
	var order []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, order
		}
		if err != nil {
			t.Fatal(err)
		}
		f := tarFile{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(), Link: h.Linkname}
		if h.Size <= int64(keep) {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			f.Data = string(data)
		}
		files[h.Name] = f
		order = append(order, h.Name)
	}
}

func staticTar(t *testing.T) map[string]tarFile {
	t.Helper()
	src, err := staticBaseSource()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.write(&b); err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, &b, 1<<20)
	return files
}

func TestStaticBaseFiles(t *testing.T) {
	files := staticTar(t)
	epoch := time.Unix(0, 0).UTC()
	tests := []struct {
		name string
		want tarFile
	}{
		{"etc/passwd", tarFile{Type: tar.TypeReg, Mode: 0o644, ModTime: epoch, Data: passwd}},
		{"etc/group", tarFile{Type: tar.TypeReg, Mode: 0o644, ModTime: epoch, Data: group}},
		{"home/nonroot/", tarFile{Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65532, ModTime: epoch}},
		{"root/", tarFile{Type: tar.TypeDir, Mode: 0o700, ModTime: epoch}},
		{"tmp/", tarFile{Type: tar.TypeDir, Mode: 0o1777, ModTime: epoch}},
		{"etc/nsswitch.conf", tarFile{Type: tar.TypeReg, Mode: 0o644, ModTime: epoch, Data: "hosts: files dns\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := files[tt.name]
			if !ok {
				t.Fatalf("%s missing from the static base", tt.name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		})
	}
	if !strings.Contains(files["etc/passwd"].Data, "nonroot:x:65532:65532:") {
		t.Errorf("passwd has no nonroot user 65532")
	}
	if !strings.Contains(files["etc/os-release"].Data, "ID=slipway-static\n") {
		t.Errorf("os-release = %q, want ID=slipway-static", files["etc/os-release"].Data)
	}
	for name, f := range files {
		if f.UID != 0 && name != "home/nonroot/" {
			t.Errorf("%s is owned by %d, want root", name, f.UID)
		}
	}
}

func TestStaticBaseCARoots(t *testing.T) {
	data := staticTar(t)[CACertsFile[1:]].Data
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(data)) {
		t.Fatal("the CA bundle has no certificates")
	}
	n := 0
	for rest := []byte(data); ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Errorf("certificate %d: %v", n, err)
		}
	}
	// NSS carries well over a hundred unconstrained roots; a handful would
	// mean the bundle was cut short.
	if n < 100 {
		t.Errorf("the CA bundle has %d roots, want at least 100", n)
	}
}

func TestStaticBaseZoneinfo(t *testing.T) {
	files := staticTar(t)
	for _, zone := range []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"} {
		t.Run(zone, func(t *testing.T) {
			f, ok := files["usr/share/zoneinfo/"+zone]
			if !ok {
				t.Fatalf("no zoneinfo for %s", zone)
			}
			loc, err := time.LoadLocationFromTZData(zone, []byte(f.Data))
			if err != nil {
				t.Fatalf("loading %s: %v", zone, err)
			}
			if got := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC).In(loc).Location().String(); got != zone {
				t.Errorf("location = %s", got)
			}
		})
	}
	if _, ok := files["usr/share/zoneinfo/Europe/"]; !ok {
		t.Errorf("zone directories have no entries of their own")
	}
}

// The static base's layer is fixed by slipway's source alone: it must not
// change between two calls, and a change to it must be deliberate.
func TestStaticBaseReproducible(t *testing.T) {
	src, err := staticBaseSource()
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := src.write(&a); err != nil {
		t.Fatal(err)
	}
	src2, _ := staticBaseSource()
	if err := src2.write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two static base layers differ")
	}
}

// StaticBase publishes the very base that --base static builds on: same
// layer, same config, for each platform asked for.
func TestStaticBaseIndex(t *testing.T) {
	idx, err := StaticBase(context.Background(), t.TempDir(),
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the static base does not validate: %v", err)
	}
	o, err := buildImage(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	built := testkit.LayoutIndex(t, o.Layout)
	for _, arch := range []string{"amd64", "arm64"} {
		base := imageFor(t, idx, "linux/"+arch)
		bd, _ := base.Digest()
		m, _ := imageFor(t, built, "linux/"+arch).Manifest()
		if got := m.Annotations[annBaseDigest]; got != bd.String() {
			t.Errorf("%s: the image says its base is %s, StaticBase gives %s", arch, got, bd)
		}
	}
}
