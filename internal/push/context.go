package push

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/gitinfo"
	"github.com/slipwayci/slipway/internal/record"
)

// tagContext gathers what tags are computed from. In CI the platform says
// how the run came about; in a terminal, git does. The commit is always the
// record's: the one that was built.
//
// Outside CI git is asked only when needGit: tag specs that are plain
// values need nothing from it.
func tagContext(ctx context.Context, rec *record.Record, info ci.Info, getenv func(string) string, dir string, needGit bool) (TagContext, []string) {
	var warnings []string
	c := TagContext{
		Commit:   rec.Commit,
		Tag:      info.Tag,
		Branch:   info.Branch,
		PR:       info.PR,
		Schedule: getenv("GITHUB_EVENT_NAME") == "schedule" || getenv("CI_PIPELINE_SOURCE") == "schedule",
	}
	if c.Commit == "" {
		c.Commit = info.Commit
	}
	if t, err := time.Parse(time.RFC3339, rec.Date); err == nil {
		c.Date = t
	}
	c.BaseRef = firstOf(getenv("GITHUB_BASE_REF"), getenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"))
	c.DefaultBranch = firstOf(getenv("CI_DEFAULT_BRANCH"), githubDefaultBranch(getenv("GITHUB_EVENT_PATH")))

	if info.Platform == "local" && needGit {
		// Four small questions to git, asked at once.
		g := func(out *string, args ...string) func() {
			return func() {
				cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
				if b, err := cmd.Output(); err == nil {
					*out = strings.TrimSpace(string(b))
				}
			}
		}
		var tags, head, branch, origin string
		var wg sync.WaitGroup
		for _, f := range []func(){
			g(&tags, "tag", "--points-at", firstOf(c.Commit, "HEAD")),
			g(&head, "rev-parse", "HEAD"),
			g(&branch, "symbolic-ref", "--short", "-q", "HEAD"),
			g(&origin, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"),
		} {
			wg.Go(f)
		}
		wg.Wait()
		if c.Commit != "" {
			c.Tag = gitinfo.HighestRelease(strings.Fields(tags))
			// A tagged commit is pushed as its release, as a tag run in
			// CI is: the branch checked out does not tag it too.
			if head == c.Commit && c.Tag == "" {
				c.Branch = branch
			}
		}
		c.DefaultBranch = firstOf(c.DefaultBranch, strings.TrimPrefix(origin, "origin/"))
		if c.Tag == "" && c.Commit != "" && !strings.Contains(rec.Version, "+") && semver.IsValid("v"+rec.Version) && !module.IsPseudoVersion("v"+rec.Version) {
			// No git here (a source tarball): the version came from a tag.
			c.Tag = "v" + rec.Version
		}
	}
	if strings.HasSuffix(rec.Version, "+dirty") && c.Tag != "" {
		warnings = append(warnings, "the build is from a dirty tree; not tagging it as release "+c.Tag)
		c.Tag = ""
	}
	return c, warnings
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// githubDefaultBranch reads repository.default_branch from the event
// payload GitHub writes for every run.
func githubDefaultBranch(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var ev struct {
		Repository struct {
			DefaultBranch string `json:"default_branch"`
		} `json:"repository"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return ""
	}
	return ev.Repository.DefaultBranch
}

// needGit reports whether specs (DefaultTags if none) use anything git
// knows: every type but a raw value without expressions does.
func needGit(specs []string) bool {
	if len(specs) == 0 {
		return true
	}
	for _, s := range specs {
		if strings.Contains(s, "{{") || (strings.Contains(s, "type=") && !strings.Contains(s, "type=raw")) {
			return true
		}
	}
	return false
}
