package record

import (
	"path/filepath"
	"testing"
)

// A layout or tarball outside dist is kept absolute in the record; every
// reader must open it there, not under dist (the bug: dist/abs/path).
func TestPath(t *testing.T) {
	dist := filepath.FromSlash("/work/dist")
	tests := []struct{ in, want string }{
		{"image", "/work/dist/image"},
		{"sbom/linux_amd64.spdx.json", "/work/dist/sbom/linux_amd64.spdx.json"},
		{"/elsewhere/oci", "/elsewhere/oci"},
		{"../out/oci", "/work/out/oci"},
	}
	for _, tt := range tests {
		if got := Path(dist, tt.in); got != filepath.FromSlash(tt.want) {
			t.Errorf("Path(%q, %q) = %q, want %q", dist, tt.in, got, tt.want)
		}
	}
	if got := Path("dist", "image"); got != filepath.Join("dist", "image") {
		t.Errorf("Path(dist, image) = %q", got)
	}
}
