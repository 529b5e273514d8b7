package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// peers are the other tools' binaries and the versions found in them.
type peers struct {
	ko, crane string
	// clis is the directory with trivy, govulncheck and gosec.
	clis     string
	versions map[string]string // by binary name
}

// A peer binary: the module its version is read from.
type peerBin struct{ name, module string }

var (
	koBin    = peerBin{"ko", "github.com/google/ko"}
	craneBin = peerBin{"crane", "github.com/google/go-containerregistry"}
	scanBins = []peerBin{
		{"trivy", "github.com/aquasecurity/trivy"},
		{"govulncheck", "golang.org/x/vuln"},
		{"gosec", "github.com/securego/gosec/v2"},
	}
)

// installPeers makes sure ko and crane are at their pinned releases in
// GOBIN, and the scanners' CLIs at the versions slipway links in
// SLIPWAY_SCAN_CLIS, installing only what is missing or another version.
func installPeers(root string) (peers, error) {
	gopath, err := goEnv("GOPATH")
	if err != nil {
		return peers{}, err
	}
	gobin, err := goEnv("GOBIN")
	if err != nil {
		return peers{}, err
	}
	if gobin == "" {
		gobin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin")
	}
	p := peers{ko: filepath.Join(gobin, "ko"), crane: filepath.Join(gobin, "crane"), versions: map[string]string{}}
	for _, x := range []struct {
		bin     peerBin
		path    string
		version string
		pkg     string
	}{
		{koBin, p.ko, benchkit.KoVersion, "github.com/google/ko"},
		{craneBin, p.crane, benchkit.CraneVersion, "github.com/google/go-containerregistry/cmd/crane"},
	} {
		if moduleVersion(x.path, x.bin.module) != x.version {
			step("go install " + x.pkg + "@" + x.version)
			if err := benchkit.Sh(root, nil, "go", "install", x.pkg+"@"+x.version); err != nil {
				return peers{}, err
			}
		}
		if p.versions[x.bin.name] = moduleVersion(x.path, x.bin.module); p.versions[x.bin.name] != x.version {
			return peers{}, fmt.Errorf("%s is %q after go install, want %s", x.path, p.versions[x.bin.name], x.version)
		}
	}

	p.clis = os.Getenv("SLIPWAY_SCAN_CLIS")
	if p.clis == "" {
		p.clis = filepath.Join(gopath, "slipway-scan-clis")
	}
	want, err := required(root)
	if err != nil {
		return peers{}, err
	}
	stale := func() bool {
		return slices.ContainsFunc(scanBins, func(s peerBin) bool {
			return moduleVersion(filepath.Join(p.clis, s.name), s.module) != want[s.module]
		})
	}
	if stale() {
		step("bench/scan/install-clis.sh " + p.clis)
		if err := benchkit.Sh(root, nil, "bash", filepath.Join(root, "bench", "scan", "install-clis.sh"), p.clis); err != nil {
			return peers{}, err
		}
		if stale() {
			return peers{}, fmt.Errorf("the CLIs in %s are not at go.mod's versions after install-clis.sh", p.clis)
		}
	}
	for _, s := range scanBins {
		p.versions[s.name] = want[s.module]
	}
	return p, nil
}

// moduleVersion is the version of module built into the Go binary at
// path, or "" if there is none.
func moduleVersion(path, module string) string {
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == module {
			return f[2]
		}
	}
	return ""
}

// required is what slipway's go.mod requires, by module.
func required(root string) (map[string]string, error) {
	file := filepath.Join(root, "go.mod")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	mf, err := modfile.ParseLax(file, data, nil)
	if err != nil {
		return nil, err
	}
	req := map[string]string{}
	for _, r := range mf.Require {
		req[r.Mod.Path] = r.Mod.Version
	}
	return req, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildSlipway builds every command under cmd/ into bin as make build
// does, slipway-scan with GOEXPERIMENT=jsonv2. The dispatcher and the
// build, image and push steps must build; a step that does not (promote
// is still being written) is returned with the reason, for its rows.
func buildSlipway(root, bin string) (map[string]string, error) {
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		return nil, err
	}
	missing := map[string]string{"slipway-promote": "cmd/slipway-promote does not exist yet"}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		var env []string
		if d.Name() == "slipway-scan" {
			env = []string{"GOEXPERIMENT=jsonv2"}
		}
		delete(missing, d.Name())
		err := benchkit.Sh(root, env, "go", "build", "-o", bin+string(filepath.Separator), "./cmd/"+d.Name())
		switch {
		case err == nil:
		case slices.Contains([]string{"slipway", "slipway-build", "slipway-image", "slipway-push"}, d.Name()):
			return nil, err
		default:
			missing[d.Name()] = "cmd/" + d.Name() + " does not build: " + commandError(err)
		}
	}
	return missing, nil
}
