package push

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func TestTags(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	release := TagContext{Commit: commit, Tag: "v1.2.3", Date: date}
	for _, tc := range []struct {
		name   string
		specs  []string
		flavor []string
		c      TagContext
		want   []string
	}{
		{
			name: "release by default",
			c:    release,
			want: []string{"1.2.3", "1.2", "1", "sha-0123456", "latest"},
		},
		{
			name: "pre-release gives its version only and no latest",
			c:    TagContext{Commit: commit, Tag: "v2.0.0-rc.1"},
			want: []string{"2.0.0-rc.1", "sha-0123456"},
		},
		{
			name:  "pre-release keeps a raw pattern",
			specs: []string{"type=semver,pattern={{raw}}", "type=semver,pattern={{major}}"},
			c:     TagContext{Tag: "v2.0.0-rc.1"},
			want:  []string{"v2.0.0-rc.1", "2.0.0-rc.1"},
		},
		{
			name: "zero major is tagged as metadata-action does",
			c:    TagContext{Tag: "v0.4.1"},
			want: []string{"0.4.1", "0.4", "0", "latest"},
		},
		{
			name: "build metadata is dropped from version",
			c:    TagContext{Tag: "v1.2.3+linux"},
			want: []string{"1.2.3", "1.2", "1", "latest"},
		},
		{
			name: "a non-semver tag gives no semver tags",
			c:    TagContext{Commit: commit, Tag: "release-7"},
			want: []string{"sha-0123456"},
		},
		{
			name: "branch, sanitised",
			c:    TagContext{Commit: commit, Branch: "feature/Add Thing!"},
			want: []string{"feature-Add-Thing-", "sha-0123456"},
		},
		{
			name: "pull request gives pr-N, not its head branch",
			c:    TagContext{Commit: commit, Branch: "fix", PR: "42"},
			want: []string{"pr-42", "sha-0123456"},
		},
		{
			name: "schedule gives nightly first",
			c:    TagContext{Commit: commit, Branch: "main", Schedule: true},
			want: []string{"nightly", "main", "sha-0123456"},
		},
		{
			name:  "raw values, bare and typed, with expressions",
			specs: []string{"stable", "type=raw,value={{branch}}-{{sha}}-{{date 'YYYYMMDD'}}"},
			c:     TagContext{Commit: commit, Branch: "main", Date: date},
			want:  []string{"stable", "main-0123456-20260102"},
		},
		{
			name:  "raw latest only on the default branch",
			specs: []string{"type=raw,value=latest,enable={{is_default_branch}}", "type=ref,event=branch"},
			c:     TagContext{Branch: "main", DefaultBranch: "main"},
			want:  []string{"main", "latest"},
		},
		{
			name:  "raw latest disabled elsewhere",
			specs: []string{"type=raw,value=latest,enable={{is_default_branch}}", "type=ref,event=branch"},
			c:     TagContext{Branch: "dev", DefaultBranch: "main"},
			want:  []string{"dev"},
		},
		{
			name:  "edge on the default branch",
			specs: []string{"type=edge", "type=edge,branch=next"},
			c:     TagContext{Branch: "main", DefaultBranch: "main"},
			want:  []string{"edge"},
		},
		{
			name:  "sha long with a prefix of its own",
			specs: []string{"type=sha,format=long,prefix="},
			c:     TagContext{Commit: commit},
			want:  []string{commit},
		},
		{
			name:  "semver from value= without a git tag",
			specs: []string{"type=semver,pattern=v{{major}}.{{minor}},value=3.4.5"},
			c:     TagContext{Commit: commit},
			want:  []string{"v3.4", "latest"},
		},
		{
			name:  "ref tag keeps the tag and asks for latest",
			specs: []string{"type=ref,event=tag"},
			c:     TagContext{Tag: "v1.0.0-beta"},
			want:  []string{"v1.0.0-beta", "latest"},
		},
		{
			name:   "flavor prefix and suffix, latest untouched",
			flavor: []string{"prefix=app-,suffix=-alpine"},
			c:      release,
			specs:  []string{"type=semver,pattern={{version}}"},
			want:   []string{"app-1.2.3-alpine", "latest"},
		},
		{
			name:   "flavor onlatest applies them to latest",
			flavor: []string{"suffix=-alpine", "onlatest=true"},
			c:      release,
			specs:  []string{"type=semver,pattern={{version}}"},
			want:   []string{"1.2.3-alpine", "latest-alpine"},
		},
		{
			name:   "latest=false",
			flavor: []string{"latest=false"},
			c:      release,
			specs:  []string{"type=semver,pattern={{version}}"},
			want:   []string{"1.2.3"},
		},
		{
			name:   "latest=true on a branch",
			flavor: []string{"latest=true"},
			c:      TagContext{Branch: "main"},
			specs:  []string{"type=ref,event=branch"},
			want:   []string{"main", "latest"},
		},
		{
			name:  "priority reorders, duplicates collapse",
			specs: []string{"type=sha", "type=raw,value=first,priority=2000", "type=raw,value={{sha}},prefix=sha-"},
			c:     TagContext{Commit: commit},
			want:  []string{"first", "sha-0123456"},
		},
		{
			name:  "tag spec prefix and suffix with expressions",
			specs: []string{"type=ref,event=pr,prefix={{base_ref}}-,suffix=-x"},
			c:     TagContext{PR: "7", BaseRef: "main"},
			want:  []string{"main-pr-7-x"},
		},
		{
			name: "nothing known gives nothing",
			c:    TagContext{},
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Tags(tc.specs, tc.flavor, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Tags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTagsErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		specs  []string
		flavor []string
		want   string
	}{
		{"unknown type lists the valid ones", []string{"type=pep440,pattern={{version}}"}, nil, "valid: edge, raw, ref, schedule, semver, sha"},
		{"semver without pattern", []string{"type=semver"}, nil, "needs pattern="},
		{"ref without event", []string{"type=ref"}, nil, "event=branch, tag or pr"},
		{"bad priority", []string{"type=sha,priority=high"}, nil, "not a number"},
		{"bad enable", []string{"type=sha,enable=maybe"}, nil, "want true or false"},
		{"unknown expression", []string{"type=raw,value={{version}}"}, nil, `unknown expression "{{version}}"`},
		{"raw tag with no tag in this run", []string{"type=raw,value={{tag}}"}, nil, "{{tag}} is empty in this run"},
		{"raw tag half made", []string{"v{{tag}}"}, nil, "{{tag}} is empty in this run"},
		{"bad latest", nil, []string{"latest=sometimes"}, "auto, true or false"},
		{"unknown flavor key", nil, []string{"colour=blue"}, `unknown key "colour"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Tags(tc.specs, tc.flavor, TagContext{Commit: commit, Branch: "main"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSanitizeTag(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                 "v1.2.3",
		"feature/login":          "feature-login",
		"-.leading":              "leading",
		"ünïcode":                "n-code",
		"   ":                    "",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := SanitizeTag(in); got != want {
			t.Errorf("SanitizeTag(%q) = %q, want %q", in, got, want)
		}
	}
}
