// Package gitinfo derives what a build stamps into its output — version,
// commit, date — from git, falling back to what the CI platform reports.
package gitinfo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/slipwayci/slipway/internal/ci"
)

// Info is the version metadata of a checkout.
type Info struct {
	// Root is the top of the git work tree ("" outside git).
	Root string
	// Commit is the full commit hash; ShortCommit its first 7 characters.
	Commit      string
	ShortCommit string
	// Tag is the semver tag on the commit, e.g. v1.2.3 ("" if none).
	Tag string
	// Version is Tag without its "v", or a Go pseudo-version (without
	// the "v") derived from the nearest earlier tag; "+dirty" is appended
	// when tracked files have changes.
	Version string
	// Date is SOURCE_DATE_EPOCH if set, else the commit time.
	Date  time.Time
	Dirty bool
}

// Describe reads git in dir. getenv supplies SOURCE_DATE_EPOCH; fallback is
// the CI platform's view, used where git cannot answer (a source tarball, a
// checkout without .git).
func Describe(ctx context.Context, dir string, getenv func(string) string, fallback ci.Info) (Info, error) {
	g := gitRunner{dir: dir}
	var info Info
	if root, err := g.run(ctx, "rev-parse", "--show-toplevel"); err == nil {
		info.Root = root
	}
	if info.Root != "" {
		if c, err := g.run(ctx, "rev-parse", "HEAD"); err == nil {
			info.Commit = c
		}
	}
	if info.Commit == "" {
		info.Commit = fallback.Commit
	}
	if len(info.Commit) >= 7 {
		info.ShortCommit = info.Commit[:7]
	}

	var commitTime time.Time
	if info.Root != "" && info.Commit != "" {
		if ct, err := g.run(ctx, "log", "-1", "--format=%ct", "HEAD"); err == nil {
			if sec, err := strconv.ParseInt(ct, 10, 64); err == nil {
				commitTime = time.Unix(sec, 0).UTC()
			}
		}
		if out, err := g.run(ctx, "tag", "--points-at", "HEAD"); err == nil {
			info.Tag = highestSemver(strings.Fields(out))
		}
		if st, err := g.run(ctx, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			info.Dirty = true
		}
	}
	if info.Tag == "" && semver.IsValid(fallback.Tag) {
		info.Tag = fallback.Tag
	}

	date, err := sourceDate(getenv, commitTime)
	if err != nil {
		return Info{}, err
	}
	info.Date = date

	switch {
	case info.Tag != "":
		info.Version = strings.TrimPrefix(info.Tag, "v")
	case info.Commit != "":
		base := ""
		if info.Root != "" {
			base, _ = g.run(ctx, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD")
			if !semver.IsValid(base) {
				base = ""
			}
		}
		t := commitTime
		if t.IsZero() {
			t = date
		}
		major := "v0"
		if base != "" {
			major = semver.Major(base)
		}
		rev := info.Commit
		if len(rev) > 12 {
			rev = rev[:12]
		}
		info.Version = strings.TrimPrefix(module.PseudoVersion(major, base, t, rev), "v")
	default:
		info.Version = "0.0.0-dev"
	}
	if info.Dirty {
		info.Version += "+dirty"
	}
	return info, nil
}

// sourceDate honours SOURCE_DATE_EPOCH (reproducible-builds.org) and
// defaults to the commit time, never the clock, when there is a commit.
func sourceDate(getenv func(string) string, commitTime time.Time) (time.Time, error) {
	if s := strings.TrimSpace(getenv("SOURCE_DATE_EPOCH")); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970; unset it or give one, e.g. $(git log -1 --format=%%ct)", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if !commitTime.IsZero() {
		return commitTime, nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}

func highestSemver(tags []string) string {
	var valid []string
	for _, t := range tags {
		if semver.IsValid(t) && strings.HasPrefix(t, "v") {
			valid = append(valid, t)
		}
	}
	if len(valid) == 0 {
		return ""
	}
	sort.Slice(valid, func(i, j int) bool { return semver.Compare(valid[i], valid[j]) > 0 })
	return valid[0]
}

type gitRunner struct{ dir string }

func (g gitRunner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("running git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Head is the commit checked out in dir, or "" where git cannot tell (no
// git, no checkout, no commit yet).
func Head(ctx context.Context, dir string) string {
	c, err := gitRunner{dir: dir}.run(ctx, "rev-parse", "--verify", "-q", "HEAD")
	if err != nil {
		return ""
	}
	return c
}
