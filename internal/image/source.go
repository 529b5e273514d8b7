package image

import (
	"context"
	"net/url"
	"os/exec"
	"strings"

	"github.com/slipwayci/slipway/internal/ci"
)

// sourceURL is the repository's web address for the source annotation:
// from the CI platform's repository and run URL, else from git's origin
// if it names a hosted repository.
func sourceURL(ctx context.Context, dir string, info ci.Info) string {
	if info.Repository != "" && info.RunURL != "" {
		if u, err := url.Parse(info.RunURL); err == nil && u.Host != "" && u.Scheme != "" {
			return u.Scheme + "://" + u.Host + "/" + info.Repository
		}
	}
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "remote", "get-url", "origin").Output()
	if err != nil {
		return ""
	}
	return webURL(strings.TrimSpace(string(out)))
}

// webURL turns a git remote into the repository's https address. It keeps
// only host and path, so a token in the remote never reaches an image, and
// gives "" for a local path, which would differ between two checkouts of
// one commit.
func webURL(remote string) string {
	if !strings.Contains(remote, "://") {
		// scp-like syntax: git@github.com:owner/repo.git
		at := strings.Index(remote, "@")
		colon := strings.Index(remote, ":")
		if at < 0 || colon < at {
			return ""
		}
		remote = "ssh://" + remote[:colon] + "/" + remote[colon+1:]
	}
	u, err := url.Parse(remote)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git":
	default:
		return ""
	}
	p := strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
	if p == "" {
		return ""
	}
	return "https://" + u.Hostname() + "/" + p
}
