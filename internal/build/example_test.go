package build_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/internal/build"
)

// Build used as a library: a module written here, built for two
// platforms, with no command line in between.
func ExampleBuild() {
	dir, err := os.MkdirTemp("", "example-build-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)

	platforms, err := build.SplitPlatforms("linux/amd64,linux/arm64")
	if err != nil {
		panic(err)
	}
	rec, err := build.Build(context.Background(), build.Options{
		Dir:       dir,
		Platforms: platforms,
		Env:       map[string]string{"GOFLAGS": "-mod=mod"},
		Out:       filepath.Join(dir, "dist"),
		Environ:   os.Environ(),
	})
	if err != nil {
		panic(err)
	}
	for _, a := range rec.Artifacts {
		fmt.Println(a.Platform, a.Path)
	}
	// Output:
	// linux/amd64 hello_linux_amd64/hello
	// linux/arm64 hello_linux_arm64/hello
}
