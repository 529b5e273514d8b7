package gitinfo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/testkit"
)

func noenv(string) string { return "" }

func TestDescribe(t *testing.T) {
	commitTime, _ := time.Parse(time.RFC3339, testkit.CommitDate)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		getenv  func(string) string
		want    func(commit string) string // version
		wantTag string
		date    time.Time
	}{
		{
			name: "untagged commit gets a v0 pseudo-version",
			want: func(c string) string { return "0.0.0-20260102030405-" + c[:12] },
			date: commitTime,
		},
		{
			name:    "tag on HEAD is the version without v",
			setup:   func(t *testing.T, dir string) { testkit.Git(t, dir, "tag", "v1.2.3") },
			want:    func(string) string { return "1.2.3" },
			wantTag: "v1.2.3",
			date:    commitTime,
		},
		{
			name: "highest semver tag wins, non-semver tags ignored",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v1.2.3")
				testkit.Git(t, dir, "tag", "v1.10.0")
				testkit.Git(t, dir, "tag", "release-9")
			},
			want:    func(string) string { return "1.10.0" },
			wantTag: "v1.10.0",
			date:    commitTime,
		},
		{
			name: "commit after a release tag is the next patch's pseudo-version",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v1.2.3")
				testkit.Commit(t, dir, "next")
			},
			want: func(c string) string { return "1.2.4-0.20260102030405-" + c[:12] },
			date: commitTime,
		},
		{
			name: "a release tag without v counts, and beats an older v tag",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v1.8.0")
				testkit.Git(t, dir, "tag", "6.14.1")
				testkit.Git(t, dir, "tag", "6.14")
			},
			want:    func(string) string { return "6.14.1" },
			wantTag: "6.14.1",
			date:    commitTime,
		},
		{
			name: "a commit after 6.14.1 builds on it, not on an older v1.8.0",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v1.8.0")
				testkit.Commit(t, dir, "release")
				testkit.Git(t, dir, "tag", "6.14.1")
				testkit.Commit(t, dir, "next")
			},
			want: func(c string) string { return "6.14.2-0.20260102030405-" + c[:12] },
			date: commitTime,
		},
		{
			name: "both spellings of one version: the v spelling is the tag",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "1.2.3")
				testkit.Git(t, dir, "tag", "v1.2.3")
			},
			want:    func(string) string { return "1.2.3" },
			wantTag: "v1.2.3",
			date:    commitTime,
		},
		{
			name: "commit after a pre-release tag builds on it",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v2.0.0-rc.1")
				testkit.Commit(t, dir, "next")
			},
			want: func(c string) string { return "2.0.0-rc.1.0.20260102030405-" + c[:12] },
			date: commitTime,
		},
		{
			name: "changes to tracked files mark the version dirty",
			setup: func(t *testing.T, dir string) {
				testkit.Git(t, dir, "tag", "v1.0.0")
				os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.23\n"), 0o644)
			},
			want:    func(string) string { return "1.0.0+dirty" },
			wantTag: "v1.0.0",
			date:    commitTime,
		},
		{
			name: "untracked files do not",
			setup: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, "scratch.txt"), []byte("x"), 0o644)
			},
			want: func(c string) string { return "0.0.0-20260102030405-" + c[:12] },
			date: commitTime,
		},
		{
			name: "SOURCE_DATE_EPOCH overrides the commit time",
			getenv: func(k string) string {
				if k == "SOURCE_DATE_EPOCH" {
					return "1700000000"
				}
				return ""
			},
			want: func(c string) string { return "0.0.0-20260102030405-" + c[:12] },
			date: time.Unix(1700000000, 0).UTC(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testkit.SampleRepo(t, "hello", t.TempDir())
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			getenv := tt.getenv
			if getenv == nil {
				getenv = noenv
			}
			got, err := Describe(context.Background(), dir, getenv, ci.Info{})
			if err != nil {
				t.Fatal(err)
			}
			commit := testkit.Git(t, dir, "rev-parse", "HEAD")
			if got.Commit != commit || got.ShortCommit != commit[:7] {
				t.Errorf("commit = %q/%q, want %q", got.Commit, got.ShortCommit, commit)
			}
			if want := tt.want(commit); got.Version != want {
				t.Errorf("version = %q, want %q", got.Version, want)
			}
			if got.Tag != tt.wantTag {
				t.Errorf("tag = %q, want %q", got.Tag, tt.wantTag)
			}
			if !got.Date.Equal(tt.date) {
				t.Errorf("date = %v, want %v", got.Date, tt.date)
			}
		})
	}
}

func TestDescribeWithoutGitUsesCI(t *testing.T) {
	dir := t.TempDir()
	got, err := Describe(context.Background(), dir, func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "86400"
		}
		return ""
	}, ci.Info{Commit: "0123456789abcdef0123456789abcdef01234567", Tag: "v3.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "3.1.0" || got.ShortCommit != "0123456" || got.Root != "" {
		t.Errorf("got %+v", got)
	}
	got, err = Describe(context.Background(), dir, func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "86400"
		}
		return ""
	}, ci.Info{Commit: "0123456789abcdef0123456789abcdef01234567"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "0.0.0-19700102000000-0123456789ab"; got.Version != want {
		t.Errorf("version = %q, want %q", got.Version, want)
	}
}

func TestDescribeWithoutGitTakesCITagWithoutV(t *testing.T) {
	got, err := Describe(context.Background(), t.TempDir(), noenv,
		ci.Info{Commit: "0123456789abcdef0123456789abcdef01234567", Tag: "6.14.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "6.14.1" || got.Tag != "6.14.1" {
		t.Errorf("version %q tag %q, want 6.14.1 from the CI tag", got.Version, got.Tag)
	}
}

func TestRelease(t *testing.T) {
	for tag, want := range map[string]string{
		"v1.2.3": "v1.2.3", "1.2.3": "v1.2.3", "6.14.1-rc.1": "v6.14.1-rc.1", "1.2.3+build": "v1.2.3+build",
		"v1.2": "", "1.2": "", "release-7": "", "": "", "vv1.2.3": "", "01.2.3": "",
	} {
		got, ok := Release(tag)
		if got != want || ok != (want != "") {
			t.Errorf("Release(%q) = %q, %v; want %q", tag, got, ok, want)
		}
	}
}

func TestBadSourceDateEpoch(t *testing.T) {
	_, err := Describe(context.Background(), t.TempDir(), func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "yesterday"
		}
		return ""
	}, ci.Info{})
	if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Fatalf("err = %v, want one naming SOURCE_DATE_EPOCH", err)
	}
}
