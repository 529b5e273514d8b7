package benchkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ScanInputs are what the scan comparison runs on: the sample app in a
// repository with its image as an OCI layout, the app's binary, both
// databases, and the commands. bench/scan's benchmark makes them and,
// asked to keep them, saves them where other programs can time the same
// commands.
type ScanInputs struct {
	// Dir is the sample repository the commands run in; Layout the image.
	Dir, Layout string
	// Bin is the app's binary, for govulncheck -mode binary.
	Bin string
	// Cache holds trivy's database; VulnDB is govulncheck's, a file:// URL.
	Cache, VulnDB string
	// Slipway is the slipway-scan binary; CLIs the directory holding
	// trivy, govulncheck and gosec.
	Slipway, CLIs string
	// Env is the environment the commands run with: offline, vendored.
	Env []string
	// Service names a real service fetched as a Go module, for the
	// results, when the inputs are one: its module, version, lines of Go
	// (tests left out) and the modules its build list holds.
	Service *Service `json:",omitempty"`
}

// Service is a real open-source Go service scanned by the benchmark.
type Service struct {
	Module, Version string
	Lines, Modules  int
	// DropReplace is a module whose replace directive is dropped from
	// go.mod as fetched: one that points into the repository, outside the
	// module zip.
	DropReplace string
}

// RealService is the real service the scan benchmark runs on: an OAuth
// 2.0 server, 26k lines of Go and some 430 modules, with a year's worth
// of vulnerable dependencies. Its module zip leaves out the nested module
// its go.mod replaces the published client with, so that replace is
// dropped and the client of the same release comes from the proxy.
var RealService = Service{
	Module: "github.com/ory/hydra/v2", Version: "v2.3.0", DropReplace: "github.com/ory/hydra-client-go/v2",
}

// VulnDBModule is the pinned pseudo-version of golang.org/x/vulndb whose
// data/osv holds the real Go vulnerability records (4,789 of them).
const VulnDBModule = "golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018"

// ScanInputsFile is the file, in a directory of kept inputs, that
// describes them.
const ScanInputsFile = "inputs.json"

// Save writes in to dir/ScanInputsFile, readable only by its owner: the
// environment is the benchmark's own.
func (in ScanInputs) Save(dir string) error {
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ScanInputsFile), data, 0o600)
}

// LoadScanInputs reads what Save wrote into dir.
func LoadScanInputs(dir string) (ScanInputs, error) {
	var in ScanInputs
	data, err := os.ReadFile(filepath.Join(dir, ScanInputsFile))
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return in, fmt.Errorf("reading %s: %w", ScanInputsFile, err)
	}
	return in, nil
}

// SlipwayScan is the one slipway scan run, offline on the same databases.
func (in ScanInputs) SlipwayScan() []string {
	return []string{in.Slipway, "--offline", "--cache-dir", in.Cache, "--vulndb", in.VulnDB}
}

// CLIScans are the commands slipway scan replaces, run one after the
// other: trivy on the image, govulncheck on the source and on the binary,
// gosec on the source.
func (in ScanInputs) CLIScans() [][]string {
	return [][]string{
		{filepath.Join(in.CLIs, "trivy"), "image", "--input", in.Layout, "--cache-dir", in.Cache,
			"--skip-db-update", "--offline-scan", "--scanners", "vuln", "--format", "json", "--quiet"},
		{filepath.Join(in.CLIs, "govulncheck"), "-db", in.VulnDB, "-format", "json", "./..."},
		{filepath.Join(in.CLIs, "govulncheck"), "-db", in.VulnDB, "-format", "json", "-mode", "binary", in.Bin},
		{filepath.Join(in.CLIs, "gosec"), "-fmt", "json", "-quiet", "./..."},
	}
}

// RunScan runs one scan command in the sample repository. Exit status 3
// (slipway's policy) and 1 (gosec's findings) are results, not failures.
func (in ScanInputs) RunScan(argv []string) error {
	_, _, err := in.RunScanOutput(argv)
	return err
}

// RunScanOutput runs one scan command as RunScan does and returns what
// it printed on stdout and the peak resident memory of its process, in
// bytes.
func (in ScanInputs) RunScanOutput(argv []string) (stdout []byte, peakRSS int64, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = in.Dir
	cmd.Env = in.Env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peakRSS = ru.Maxrss * 1024 // kilobytes on Linux
		}
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && (ee.ExitCode() == 3 || ee.ExitCode() == 1) {
		return out, peakRSS, nil
	}
	if err != nil {
		return out, peakRSS, fmt.Errorf("%s: %v\n%s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr.String()))
	}
	return out, peakRSS, nil
}

// FetchService fetches s as a Go module through the proxy into dir,
// applies its edit, downloads its dependencies (so that it builds with
// GOPROXY=off), commits it in a new git repository and counts its lines
// and modules.
func FetchService(s Service, dir string) (Service, error) {
	src, err := ModuleDir(s.Module + "@" + s.Version)
	if err != nil {
		return s, err
	}
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		return s, err
	}
	// The module cache's files are read-only; the copy is a checkout.
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return s, err
	}
	if s.DropReplace != "" {
		if err := Sh(dir, nil, "go", "mod", "edit", "-dropreplace", s.DropReplace); err != nil {
			return s, err
		}
		// go.sum had no sum for the content of a module that was
		// replaced; naming it to go mod download records one.
		if err := Sh(dir, nil, "go", "mod", "download", s.DropReplace); err != nil {
			return s, err
		}
	}
	if err := Sh(dir, []string{"GOFLAGS=-mod=mod"}, "go", "mod", "download"); err != nil {
		return s, err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("dist/\n"), 0o644); err != nil {
		return s, err
	}
	if err := Sh(dir, gitEnv, "git", "init", "-q", "-b", "main"); err != nil {
		return s, err
	}
	if err := Commit(dir, s.Module+" "+s.Version); err != nil {
		return s, err
	}
	out, err := exec.Command("go", "-C", dir, "list", "-m", "all").Output()
	if err != nil {
		return s, fmt.Errorf("go list -m all in %s: %w", s.Module, err)
	}
	s.Modules = strings.Count(string(out), "\n")
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := os.ReadFile(p)
		s.Lines += strings.Count(string(data), "\n")
		return err
	})
	return s, err
}

// ModuleDir downloads a module (path@version) through the Go proxy and
// returns its directory in the module cache.
func ModuleDir(mod string) (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, m.Error)
	}
	return m.Dir, nil
}
