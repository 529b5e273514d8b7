package image

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
)

// The docker-archive holds the asked-for platform's image, byte for byte
// the one in the layout, under the name docker load will give it.
func TestTarball(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hello.tar")
	o, err := buildImage(t, Options{Tarball: file, TarballPlatform: "linux/arm64"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record.Load(o.Dist)
	if err != nil {
		t.Fatal(err)
	}
	tag := "hello:" + layoutRef(rec.Version)
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("the tarball's image does not validate: %v", err)
	}
	cfg, _ := img.ConfigName()
	var arm record.PlatformImage
	for _, pi := range rec.Image.Platforms {
		if pi.Platform == "linux/arm64" {
			arm = pi
		}
	}
	if cfg.String() != arm.Config {
		t.Errorf("tarball config %s, layout's arm64 config %s", cfg, arm.Config)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !cmp.Equal(m[0].RepoTags, []string{tag}) {
		t.Errorf("manifest.json = %+v, want one image tagged %s", m, tag)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Outside the record's directory, the path is kept absolute.
	want := &record.Tarball{Path: filepath.ToSlash(file), Platform: "linux/arm64", Tag: tag, SHA256: sha256Hex(data)}
	if diff := cmp.Diff(want, rec.Image.Tarball); diff != "" {
		t.Errorf("record tarball (-want +got):\n%s", diff)
	}
}

func TestTarballErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"platform not built", Options{TarballPlatform: "linux/s390x"}, "--tarball-platform linux/s390x is not in the index; it has linux/amd64, linux/arm64"},
		{"bad tag", Options{TarballTag: "Not A Tag"}, `--tarball-tag "Not A Tag" is not name:tag`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Tarball = filepath.Join(t.TempDir(), "x.tar")
			o, err := buildImage(t, tt.o)
			// As the command prints it: options named as flags.
			if err == nil || !strings.Contains(cli.Flags(err).Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, err := os.Stat(o.Layout); err == nil {
				t.Errorf("a layout was written although the flags were wrong")
			}
		})
	}
}
