package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sample is the hello app, committed and built once per test run for
// linux/amd64 and linux/arm64; tests copy its dist before changing it.
var sample struct {
	once sync.Once
	root string
	repo string
	dist string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if sample.root != "" {
		os.RemoveAll(sample.root)
	}
	os.Exit(code)
}

// sampleDist returns the sample's repository and a fresh copy of its
// build output, which the test may change.
func sampleDist(t *testing.T) (repo, dist string) {
	t.Helper()
	sample.once.Do(func() {
		sample.root, sample.err = os.MkdirTemp("", "slipway-image-test-*")
		if sample.err != nil {
			return
		}
		sample.repo = testkit.SampleRepo(t, "hello", filepath.Join(sample.root, "repo"))
		sample.dist = filepath.Join(sample.root, "built")
		_, sample.err = build.Build(context.Background(), build.Options{
			Dir: sample.repo, Platforms: builtPlatforms(t, "linux/amd64,linux/arm64"), LDFlags: build.DefaultLDFlags,
			Out: sample.dist, Environ: testEnviron(),
		})
	})
	if sample.err != nil {
		t.Fatalf("building the sample: %v", sample.err)
	}
	dist = filepath.Join(t.TempDir(), "dist")
	testkit.CopyDir(t, sample.dist, dist)
	return sample.repo, dist
}

// sharedCache is a layer cache for tests that are not about the cache.
func sharedCache() string { return filepath.Join(sample.root, "cache") }

// testEnviron is a small environment: no CI variables, so steps run as
// they would in a terminal.
func testEnviron(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "GOEXPERIMENT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// runMain runs the step in-process in dir, and returns its output and exit
// code.
func runMain(t *testing.T, dir string, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := cli.Env{Args: args, Environ: environ, Stdout: &out, Stderr: &errb, Dir: dir}
	code = cli.ExitCode(&errb, "slipway image", Main(context.Background(), env))
	return out.String(), errb.String(), code
}

// buildImage runs Build on a fresh copy of the sample with o's settings.
func buildImage(t *testing.T, o Options) (Options, error) {
	t.Helper()
	repo, dist := sampleDist(t)
	o.Dist, o.Dir = dist, repo
	if o.Layout == "" {
		o.Layout = filepath.Join(dist, "image")
	}
	if o.Cache == "" {
		o.Cache = sharedCache()
	}
	if o.Environ == nil {
		o.Environ = testEnviron()
	}
	_, err := Build(context.Background(), o)
	return o, err
}

// platformImage returns the image for platform p in idx.
func imageFor(t *testing.T, idx v1.ImageIndex, p string) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && platformString(*d.Platform) == p {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s image in the index", p)
	return nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// builtPlatforms reads an os/arch list for build.Options.
func builtPlatforms(t testing.TB, list string) []build.Platform {
	t.Helper()
	ps, err := build.SplitPlatforms(list)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
