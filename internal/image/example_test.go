package image_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/image"
)

// Build used as a library: a module built for two platforms, then layered
// onto the built-in static base, with typed options and no command line.
func ExampleBuild() {
	dir, err := os.MkdirTemp("", "example-image-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)
	dist := filepath.Join(dir, "dist")
	platforms, _ := build.SplitPlatforms("linux/amd64,linux/arm64")
	ctx := context.Background()
	if _, err := build.Build(ctx, build.Options{Dir: dir, Platforms: platforms, Out: dist, Environ: os.Environ()}); err != nil {
		panic(err)
	}

	rec, err := image.Build(ctx, image.Options{
		Dist:    dist,
		Dir:     dir,
		Base:    image.BaseStatic,
		Env:     map[string]string{"GOMEMLIMIT": "200MiB"},
		Labels:  map[string]string{"org.example.team": "payments"},
		Ports:   []string{"8080"},
		Environ: os.Environ(),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Image.Entrypoint)
	for _, p := range rec.Image.Platforms {
		fmt.Println(p.Platform, len(p.SBOMs), "SBOMs")
	}
	// Output:
	// [/usr/local/bin/hello]
	// linux/amd64 2 SBOMs
	// linux/arm64 2 SBOMs
}
