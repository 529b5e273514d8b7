package image

import (
	"testing"

	"github.com/slipwayci/slipway/internal/ci"
)

func TestWebURL(t *testing.T) {
	tests := []struct {
		name, remote, want string
	}{
		{"https", "https://github.com/example/hello.git", "https://github.com/example/hello"},
		{"token in the remote", "https://x-access-token:ghs_secret@github.com/example/hello", "https://github.com/example/hello"},
		{"scp-like", "git@gitlab.com:group/sub/project.git", "https://gitlab.com/group/sub/project"},
		{"ssh with port", "ssh://git@example.com:2222/team/repo.git", "https://example.com/team/repo"},
		{"local path", "/srv/git/hello", ""},
		{"file URL", "file:///srv/git/hello", ""},
		{"no path", "https://github.com/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webURL(tt.remote); got != tt.want {
				t.Errorf("webURL(%q) = %q, want %q", tt.remote, got, tt.want)
			}
		})
	}
}

func TestSourceURLFromCI(t *testing.T) {
	for _, tt := range []struct {
		name string
		info ci.Info
		want string
	}{
		{"github", ci.Info{Repository: "example/hello", RunURL: "https://github.com/example/hello/actions/runs/1"}, "https://github.com/example/hello"},
		{"gitlab", ci.Info{Repository: "group/hello", RunURL: "https://gitlab.example.com/group/hello/-/jobs/7"}, "https://gitlab.example.com/group/hello"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceURL(t.Context(), t.TempDir(), tt.info); got != tt.want {
				t.Errorf("sourceURL = %q, want %q", got, tt.want)
			}
		})
	}
}
