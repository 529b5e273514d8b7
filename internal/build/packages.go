package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/fault"
)

// module is the Go module a build runs in.
type module struct {
	Path string
	Dir  string
}

// errNotModule is a usage error: slipway build only builds modules.
var errNotModule = errors.New("not inside a Go module")

func findModule(ctx context.Context, goCmd, dir string, env []string) (module, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		// A directory that is not there never will be by retrying.
		return module{}, fault.Optionf("dir", "%s is not a directory; give {option} the directory of your module", dir)
	}
	cmd := exec.CommandContext(ctx, goCmd, "env", "GOMOD")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		return module{}, fmt.Errorf("finding module: %s", goError(err))
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return module{}, &fault.OptionError{Option: "dir", Err: fmt.Errorf("%w: %s has no go.mod in it or above it; run in your module or pass {option}", errNotModule, dir)}
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return module{}, fmt.Errorf("reading %s: %w", gomod, err)
	}
	p := modfile.ModulePath(data)
	if p == "" {
		return module{}, fmt.Errorf("%w: %s has no module line", errNotModule, gomod)
	}
	return module{Path: p, Dir: filepath.Dir(gomod)}, nil
}

// mainPkg is a main package to build.
type mainPkg struct {
	ImportPath string
	Name       string // the binary's name
}

type listedPkg struct {
	ImportPath string
	Name       string
	Match      []string
	Error      *struct{ Err string }
}

// errNoMain is a usage error: a named package is not a command.
var errNoMain = errors.New("not a main package")

// localHint suggests ./path for a path that go reads as an import path
// (cmd/x is looked for in the standard library) while a directory of that
// name is in the module.
func localHint(dir, path string) string {
	if path == "" || strings.HasPrefix(path, ".") || filepath.IsAbs(path) {
		return ""
	}
	if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
		return "" // a module path such as example.com/x
	}
	if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(path, "/...")))); err != nil || !st.IsDir() {
		return ""
	}
	return fmt.Sprintf("; did you mean ./%s? a path without ./ is read as an import path", path)
}

// mainPackages resolves patterns to main packages. With no patterns it
// finds every main package in the module; a pattern with "..." keeps the
// main packages it matches; a plain package that is not main is an error.
func mainPackages(ctx context.Context, goCmd string, mod module, patterns []string, flags, env []string) ([]mainPkg, error) {
	explicit := len(patterns) > 0
	if !explicit {
		patterns = []string{"./..."}
	}
	args := append([]string{"list", "-e", "-json=ImportPath,Name,Match,Error"}, flags...)
	args = append(args, "--")
	args = append(args, patterns...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir, cmd.Env = mod.Dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("listing packages: %s", oneLine(stderr.String(), err))
	}
	matched := map[string]bool{}
	var pkgs []mainPkg
	seen := map[string]bool{}
	dec := json.NewDecoder(&stdout)
	for {
		var p listedPkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %w", err)
		}
		for _, m := range p.Match {
			matched[m] = true
		}
		if p.Error != nil {
			return nil, fault.Invalidf("package %s: %s%s", p.ImportPath, oneLine(p.Error.Err, nil), localHint(mod.Dir, p.ImportPath))
		}
		if p.Name != "main" {
			for _, m := range p.Match {
				if explicit && !strings.Contains(m, "...") {
					return nil, fault.Invalidf("package %s (%s): %w; name a package with func main, e.g. ./cmd/...", m, p.ImportPath, errNoMain)
				}
			}
			continue
		}
		if !seen[p.ImportPath] {
			seen[p.ImportPath] = true
			pkgs = append(pkgs, mainPkg{ImportPath: p.ImportPath, Name: execName(p.ImportPath)})
		}
	}
	for _, pat := range patterns {
		if explicit && !matched[pat] {
			return nil, fault.Invalidf("package pattern %q matched no packages in %s", pat, mod.Path)
		}
	}
	if len(pkgs) == 0 {
		return nil, fault.Invalidf("%w: no main packages in %s matching %s", errNoMain, mod.Path, strings.Join(patterns, " "))
	}
	names := map[string]string{}
	for _, p := range pkgs {
		if other, ok := names[p.Name]; ok {
			return nil, fault.Invalidf("packages %s and %s would both build a binary named %q; build them in separate steps", other, p.ImportPath, p.Name)
		}
		names[p.Name] = p.ImportPath
	}
	return pkgs, nil
}

var majorSuffix = regexp.MustCompile(`^v[0-9]+$`)

// execName is the binary name go build gives a main package: its last path
// element, skipping a major-version suffix such as /v2.
func execName(importPath string) string {
	elem := path.Base(importPath)
	if majorSuffix.MatchString(elem) {
		if parent := path.Base(path.Dir(importPath)); parent != "." && parent != "/" {
			elem = parent
		}
	}
	return elem
}

// goError reduces a failed go command to its message.
func goError(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return oneLine(string(ee.Stderr), nil)
	}
	return err.Error()
}

func oneLine(s string, err error) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" && err != nil {
		return err.Error()
	}
	return s
}
