// Package gitinfo derives what a build stamps into its output — version,
// commit, date — from git, falling back to what the CI platform reports.
package gitinfo

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
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
	// Tag is the release tag on the commit as spelled in git, v1.2.3 or
	// 1.2.3 ("" if none).
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
			info.Tag = HighestRelease(strings.Fields(out))
		}
		if st, err := g.run(ctx, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			info.Dirty = true
		}
	}
	if _, ok := Release(fallback.Tag); info.Tag == "" && ok {
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
			// The highest release below HEAD, spelled with or without
			// "v": a project tagging 6.14.1 must not build on an old v1.8.0.
			if out, err := g.run(ctx, "tag", "--merged", "HEAD"); err == nil {
				base, _ = Release(HighestRelease(strings.Fields(out)))
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

// Release reads tag as docker/metadata-action does: a release is a full
// semver version, MAJOR.MINOR.PATCH with optional pre-release and build,
// spelled with or without a leading "v". It returns the version in Go's
// spelling ("v" + version) for comparison.
func Release(tag string) (string, bool) {
	if tag == "" {
		return "", false
	}
	v := "v" + strings.TrimPrefix(tag, "v")
	if !semver.IsValid(v) {
		return "", false
	}
	core, _, _ := strings.Cut(v, "+")
	core, _, _ = strings.Cut(core, "-")
	if strings.Count(core, ".") != 2 {
		return "", false // v1.2 is Go shorthand, not a release
	}
	return v, true
}

// HighestRelease is the highest release among tags, as spelled in git;
// between 1.2.3 and v1.2.3 the "v" spelling wins, so the choice does not
// depend on the order git lists them.
func HighestRelease(tags []string) string {
	best, bestV := "", ""
	for _, t := range tags {
		v, ok := Release(t)
		if !ok {
			continue
		}
		c := semver.Compare(v, bestV)
		if best == "" || c > 0 || (c == 0 && strings.HasPrefix(t, "v") && !strings.HasPrefix(best, "v")) {
			best, bestV = t, v
		}
	}
	return best
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
