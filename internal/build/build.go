// Package build cross-compiles a module's main packages for a set of
// platforms, reproducibly, and writes the file of record that later steps
// read instead of building again.
package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/gitinfo"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/safefile"
	"github.com/slipwayci/slipway/internal/version"
)

// DefaultLDFlags strips symbol tables and stamps main.version, main.commit
// and main.date, as most Go release tooling does.
const DefaultLDFlags = "-s -w -X main.version={{.Version}} -X main.commit={{.Commit}} -X main.date={{.Date}}"

// DefaultPlatforms are the two server platforms nearly every service ships.
const DefaultPlatforms = "linux/amd64,linux/arm64"

// ChecksumsFile lists every binary's SHA-256, in sha256sum's format.
const ChecksumsFile = "SHA256SUMS"

// Options describe one build.
type Options struct {
	// Dir is inside the module to build.
	Dir string
	// Platforms are the targets (SplitPlatforms reads os/arch[/variant]
	// lists); each must be one the toolchain knows.
	Platforms []Platform
	// Packages are package paths or patterns; empty means every main
	// package of the module.
	Packages []string
	// LDFlags is a text/template for -ldflags.
	LDFlags string
	// Tags are build tags.
	Tags []string
	// Env is added to the compiler's environment after slipway's defaults
	// (CGO_ENABLED=0), so it can override them (ParseEnv reads KEY=VALUE
	// pairs). GOOS and GOARCH are chosen by Platforms, not here.
	Env map[string]string
	// Out is the output directory.
	Out string
	// Parallel bounds how many platforms build at once (0: the cores).
	Parallel int

	// Environ is the process environment the go command inherits.
	Environ []string
	// CI is what the platform reports, used where git cannot answer.
	CI ci.Info
	// Log receives progress lines and the compiler's other output.
	Log io.Writer
	// Annotate receives each compiler error.
	Annotate func(ci.Annotation)
	// GoCmd is the go command (default "go").
	GoCmd string
}

// Build compiles every main package for every platform and writes the
// binaries, SHA256SUMS and the record into Out. Nothing in Out changes
// unless every platform builds.
func Build(ctx context.Context, o Options) (*record.Record, error) {
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Annotate == nil {
		o.Annotate = func(ci.Annotation) {}
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	getenv := ci.Getenv(o.Environ)

	userEnv, err := checkEnv(o.Env)
	if err != nil {
		return nil, err
	}
	known, err := distList(ctx, o.GoCmd)
	if err != nil {
		return nil, err
	}
	if err := checkKnown(o.Platforms, known); err != nil {
		return nil, fault.Optionf("platforms", ": %w", err)
	}
	platforms := o.Platforms

	baseEnv := buildEnv(o.Environ, userEnv)
	mod, err := findModule(ctx, o.GoCmd, o.Dir, baseEnv)
	if errors.Is(err, errNotModule) {
		return nil, fault.As(fault.Invalid, err)
	} else if err != nil {
		return nil, err
	}

	info, err := gitinfo.Describe(ctx, mod.Dir, getenv, o.CI)
	if err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	tmpl, err := parseLDFlags(o.LDFlags)
	if err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	data := templateData{
		Version: info.Version, Tag: info.Tag, Commit: info.Commit, ShortCommit: info.ShortCommit,
		Date: info.Date.Format(time.RFC3339), Timestamp: info.Date.Unix(), Env: envMap(o.Environ, userEnv),
	}
	ldflags := make(map[Platform]string, len(platforms))
	for _, p := range platforms {
		s, err := data.render(tmpl, p)
		if err != nil {
			return nil, fault.As(fault.Invalid, err)
		}
		ldflags[p] = s
	}

	var flags []string
	if len(o.Tags) > 0 {
		flags = append(flags, "-tags="+strings.Join(o.Tags, ","))
	}
	pkgs, err := mainPackages(ctx, o.GoCmd, mod, o.Packages, flags, baseEnv)
	if err != nil {
		return nil, err
	}

	goVersion, err := goEnv(ctx, o.GoCmd, baseEnv, "GOVERSION")
	if err != nil {
		return nil, err
	}

	out := o.Out
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	warnIfTracked(ctx, o.Log, mod.Dir, out)
	staging, err := os.MkdirTemp(out, ".slipway-build-*")
	if err != nil {
		return nil, fmt.Errorf("creating staging directory: %w", err)
	}
	defer os.RemoveAll(staging)

	c := compiler{
		goCmd: o.GoCmd, dir: mod.Dir, root: info.Root, staging: staging,
		flags: flags, env: baseEnv, log: o.Log, annotate: o.Annotate,
		mtime: info.Date, pkgs: pkgs,
	}
	var mu sync.Mutex
	var artifacts []record.Artifact
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for _, p := range platforms {
		g.Go(func() error {
			arts, err := c.compile(gctx, p, ldflags[p])
			if err != nil {
				return err
			}
			mu.Lock()
			artifacts = append(artifacts, arts...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(artifacts, func(i, j int) bool { return artifacts[i].Path < artifacts[j].Path })
	for i := range artifacts {
		a := &artifacts[i]
		a.Version, a.Commit, a.GoVersion = info.Version, info.Commit, goVersion
	}

	rec := &record.Record{
		Slipway:   version.String(),
		Module:    mod.Path,
		Version:   info.Version,
		Commit:    info.Commit,
		Date:      info.Date.Format(time.RFC3339),
		GoVersion: goVersion,
		Artifacts: artifacts,
	}
	if err := publish(out, staging, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// compiler runs go build for one platform at a time.
type compiler struct {
	goCmd, dir, root, staging string
	flags, env                []string
	log                       io.Writer
	annotate                  func(ci.Annotation)
	mtime                     time.Time
	pkgs                      []mainPkg
}

// compile builds every package for p with one go build, which shares the
// compilation of common dependencies, then files each binary under its
// own directory in staging.
func (c compiler) compile(ctx context.Context, p Platform, ldflags string) ([]record.Artifact, error) {
	start := time.Now()
	tmp := filepath.Join(c.staging, ".tmp-"+p.dirSuffix())
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"build", "-trimpath", "-ldflags=" + ldflags, "-o", tmp + string(filepath.Separator)}, c.flags...)
	args = append(args, "--")
	for _, pkg := range c.pkgs {
		args = append(args, pkg.ImportPath)
	}
	cmd := exec.CommandContext(ctx, c.goCmd, args...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), p.env()...)
	cmd.Env = append(cmd.Env, overridesFromEnv(c.env, p)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n := c.reportCompileErrors(stderr.Bytes())
		if n == 0 {
			return nil, fmt.Errorf("building for %s: %s", p, oneLine(stderr.String(), err))
		}
		return nil, fmt.Errorf("compiling for %s: %d error(s); see the annotations above", p, n)
	}

	var arts []record.Artifact
	for _, pkg := range c.pkgs {
		file := pkg.Name
		if p.OS == "windows" {
			file += ".exe"
		}
		dir := pkg.Name + "_" + p.dirSuffix()
		if err := os.MkdirAll(filepath.Join(c.staging, dir), 0o755); err != nil {
			return nil, err
		}
		dst := filepath.Join(c.staging, dir, file)
		if err := os.Rename(filepath.Join(tmp, file), dst); err != nil {
			return nil, fmt.Errorf("collecting %s for %s: %w", pkg.ImportPath, p, err)
		}
		sum, size, err := hashFile(dst)
		if err != nil {
			return nil, err
		}
		// The file's time is the source date, not the clock, so archives
		// made from dist later are reproducible too.
		if err := os.Chtimes(dst, c.mtime, c.mtime); err != nil {
			return nil, err
		}
		arts = append(arts, record.Artifact{
			Name: pkg.Name, Path: dir + "/" + file, Platform: p.String(),
			OS: p.OS, Arch: p.Arch, Variant: p.Variant,
			SHA256: sum, Size: size, Package: pkg.ImportPath,
		})
	}
	fmt.Fprintf(c.log, "built %s (%d binaries) in %s\n", p, len(c.pkgs), time.Since(start).Round(100*time.Millisecond))
	return arts, os.Remove(tmp)
}

// overridesFromEnv re-applies a user's explicit GOARM-style setting when
// the platform did not name a variant, so --env GOAMD64=v3 still works.
func overridesFromEnv(env []string, p Platform) []string {
	if p.Variant != "" {
		return nil
	}
	v, ok := variants[p.Arch]
	if !ok {
		return nil
	}
	for i := len(env) - 1; i >= 0; i-- {
		if strings.HasPrefix(env[i], v.env+"=") {
			return []string{env[i]}
		}
	}
	return nil
}

var compilerLine = regexp.MustCompile(`^(.+?\.(?:go|s|c|h)):(\d+)(?::(\d+))?: (.+)$`)

// reportCompileErrors turns the compiler's file:line:col lines into
// annotations and passes every other line to the log.
func (c compiler) reportCompileErrors(out []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		m := compilerLine.FindStringSubmatch(line)
		if m == nil {
			fmt.Fprintln(c.log, line)
			continue
		}
		lineNo, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		c.annotate(ci.Annotation{
			Severity: ci.Error, File: c.relToRoot(m[1]), Line: lineNo, Col: col,
			Title: "go build", Message: m[4],
		})
		n++
	}
	return n
}

// relToRoot makes a compiler path relative to the repository root, which
// is what code hosts expect in annotations.
func (c compiler) relToRoot(file string) string {
	abs := file
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(c.dir, file)
	}
	root := c.root
	if root == "" {
		root = c.dir
	}
	if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(file)
}

// publish moves the staged binaries into out and writes SHA256SUMS and the
// record last, so a reader of the record never sees a half-built set. The
// directories of a previous record are removed first.
func publish(out, staging string, rec *record.Record) error {
	if old, err := record.Load(out); err == nil {
		for _, a := range old.Artifacts {
			dir := filepath.Dir(filepath.FromSlash(a.Path))
			if dir != "." && !strings.Contains(dir, "..") {
				os.RemoveAll(filepath.Join(out, dir))
			}
		}
	}
	for _, a := range rec.Artifacts {
		dir := filepath.Dir(filepath.FromSlash(a.Path))
		dst := filepath.Join(out, dir)
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("replacing %s: %w", dst, err)
		}
		if err := os.Rename(filepath.Join(staging, dir), dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("moving %s into place: %w", dir, err)
		}
	}
	var sums bytes.Buffer
	for _, a := range rec.Artifacts {
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Path)
	}
	if err := safefile.Write(filepath.Join(out, ChecksumsFile), sums.Bytes(), 0o644); err != nil {
		return err
	}
	return rec.Save(out)
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// buildEnv is the compiler's environment: the process's, then slipway's
// reproducible defaults, then the user's --env pairs.
func buildEnv(environ []string, user [][2]string) []string {
	env := append([]string{}, environ...)
	env = append(env, "CGO_ENABLED=0")
	for _, kv := range user {
		env = append(env, kv[0]+"="+kv[1])
	}
	return env
}

// ParseEnv reads the env option's KEY=VALUE pairs; a later KEY wins.
func ParseEnv(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fault.Optionf("env", "{option} %q is not KEY=VALUE, e.g. {option} CGO_ENABLED=1", p)
		}
		out[k] = v
	}
	_, err := checkEnv(out)
	return out, err
}

// checkEnv refuses what Platforms chooses, and returns the pairs in the
// order of their keys.
func checkEnv(env map[string]string) ([][2]string, error) {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == "" || strings.ContainsAny(k, "= \t") {
			return nil, fault.Optionf("env", "%q is not a variable name", k)
		}
		switch k {
		case "GOOS", "GOARCH":
			return nil, fault.Optionf("env", "%s=%s: choose targets with the platforms, not %s", k, env[k], k)
		}
		out = append(out, [2]string{k, env[k]})
	}
	return out, nil
}

func envMap(environ []string, user [][2]string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	for _, kv := range user {
		m[kv[0]] = kv[1]
	}
	return m
}

func goEnv(ctx context.Context, goCmd string, env []string, key string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "env", key)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reading go env %s: %s", key, goError(err))
	}
	return strings.TrimSpace(string(out)), nil
}

// warnIfTracked warns when the output directory is inside the work tree
// but not ignored: go build would then stamp vcs.modified=true from the
// second build on, and the binaries would stop being reproducible.
func warnIfTracked(ctx context.Context, log io.Writer, moduleDir, out string) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return
	}
	cmd := exec.CommandContext(ctx, "git", "-C", moduleDir, "check-ignore", "-q", "--no-index", abs)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		if rel, rerr := filepath.Rel(moduleDir, abs); rerr == nil && !strings.HasPrefix(rel, "..") {
			fmt.Fprintf(log, "warning: %s is not in .gitignore; go stamps vcs.modified=true into binaries while it holds untracked files\n", rel)
		}
	}
}
