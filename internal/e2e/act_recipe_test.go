package e2e

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file is the act recipe docs/github.md gives for actions from other
// repositories, as the tests use it: act fetches every remote action a
// workflow names before the job starts, and this machine has no GitHub, so
// each is pointed at a local directory with --local-repository. The key is
// the repository and ref, owner/repo@ref, whatever path the action sits at
// in it: act looks the repository up, then reads the action at its path
// inside the directory. (owner/repo/path@ref as the key never matches.)

// usesLine finds the uses: of a workflow's steps.
var usesLine = regexp.MustCompile(`(?m)^[\s-]*uses:\s*['"]?([^\s'"#]+)`)

// remoteUses lists the remote actions a workflow uses, owner/repo[/path]@ref,
// once each and sorted. Local actions (./…) and docker:// ones are left out,
// and so is actions/checkout, which act replaces by a copy of the work tree.
func remoteUses(workflow string) []string {
	var uses []string
	for _, m := range usesLine.FindAllStringSubmatch(workflow, -1) {
		u := m[1]
		if strings.HasPrefix(u, "./") || strings.HasPrefix(u, "docker://") || strings.HasPrefix(u, "actions/checkout@") {
			continue
		}
		if !slices.Contains(uses, u) {
			uses = append(uses, u)
		}
	}
	slices.Sort(uses)
	return uses
}

// splitUses splits owner/repo[/path]@ref into the key act looks up,
// owner/repo@ref, and the action's path in the repository.
func splitUses(use string) (key, path string) {
	spec, ref, _ := strings.Cut(use, "@")
	parts := strings.SplitN(spec, "/", 3)
	if len(parts) == 3 {
		path = parts[2]
	}
	return parts[0] + "/" + parts[1] + "@" + ref, path
}

// standIns writes, for each use, the action.yml that actionYML returns at
// the action's path in a directory of its repository and ref, and returns
// act's --local-repository arguments for them. Uses already in trees
// (owner/repo@ref → a directory holding that repository at that ref) are
// pointed there instead.
func standIns(t *testing.T, uses []string, trees map[string]string, actionYML func(use string) string) []string {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]string{}
	for key, dir := range trees {
		dirs[key] = dir
	}
	for _, use := range uses {
		key, path := splitUses(use)
		if _, ok := trees[key]; ok {
			continue
		}
		dir := filepath.Join(root, strings.NewReplacer("/", "_", "@", "_").Replace(key))
		dirs[key] = dir
		writeFile(t, filepath.Join(dir, filepath.FromSlash(path), "action.yml"), actionYML(use))
	}
	var args []string
	for _, key := range slices.Sorted(maps.Keys(dirs)) {
		args = append(args, "--local-repository", key+"="+dirs[key])
	}
	return args
}

// failingStandIn is an action for a GitHub-only step that an if: must skip
// under act: if it ever runs, the job fails.
const failingStandIn = `name: stand-in
description: an action skipped under act; running it is a bug in the workflow
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "stand-in for a GitHub-only action ran under act; gate it on ACT" >&2; exit 1
`
