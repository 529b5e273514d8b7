package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// sourcePlatforms are the platforms the source analysis must answer for:
// the image's, else those the build's record lists binaries for, else
// none (the go command's own).
func sourcePlatforms(o *Options) []string {
	var ps []string
	for _, img := range o.Images {
		if img.Platform != "" && !slices.Contains(ps, img.Platform) {
			ps = append(ps, img.Platform)
		}
	}
	if len(ps) == 0 && o.Record != nil {
		for _, a := range o.Record.Artifacts {
			if a.Platform != "" && !slices.Contains(ps, a.Platform) {
				ps = append(ps, a.Platform)
			}
		}
	}
	return ps
}

// platformGroups groups the platforms whose builds of the module in dir
// compile the same code, so that one source analysis stands for each
// group: the same GOOS, the same packages outside the standard library
// and the same files in the module's own packages. Build constraints on
// the architecture inside the standard library and dependencies (assembly,
// system call tables) do not split a group; an operating system always
// does. No platforms make one group with none: the go command's own.
func platformGroups(ctx context.Context, dir string, env, platforms []string) ([][]string, error) {
	if len(platforms) < 2 {
		return [][]string{platforms}, nil
	}
	var groups [][]string
	keys := map[string]int{}
	for _, p := range platforms {
		fp, err := buildFingerprint(ctx, dir, platformEnv(env, p))
		if err != nil {
			return nil, err
		}
		goos, _, _ := strings.Cut(p, "/")
		key := goos + "\x00" + fp
		if i, ok := keys[key]; ok {
			groups[i] = append(groups[i], p)
			continue
		}
		keys[key] = len(groups)
		groups = append(groups, []string{p})
	}
	return groups, nil
}

// buildFingerprint digests what the build of every package in dir
// compiles, as platformGroups compares it.
func buildFingerprint(ctx context.Context, dir string, env []string) (string, error) {
	const format = `{{if not .Standard}}{{.ImportPath}}{{if .Module}}{{if .Module.Main}} {{.GoFiles}} {{.CgoFiles}}{{end}}{{end}}{{end}}`
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-f", format, "./...")
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("listing the packages to scan: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Fields(strings.ReplaceAll(string(out), " ", "\x00"))
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%x", sum[:8]), nil
}

// platformEnv is env for the go command to build for platform
// (os/arch[/variant]).
func platformEnv(env []string, platform string) []string {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return env
	}
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "GOOS" || k == "GOARCH" || k == "GOARM" || k == "GOAMD64" || k == "GOARM64"
	})
	out = append(out, "GOOS="+parts[0], "GOARCH="+parts[1])
	if len(parts) == 3 {
		switch parts[1] {
		case "arm":
			out = append(out, "GOARM="+strings.TrimPrefix(parts[2], "v"))
		case "amd64":
			out = append(out, "GOAMD64="+parts[2])
		}
	}
	return out
}
