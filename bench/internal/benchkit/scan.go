package benchkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
}

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
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = in.Dir
	cmd.Env = in.Env
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && (ee.ExitCode() == 3 || ee.ExitCode() == 1) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(argv[0]), err, strings.TrimSpace(string(out)))
	}
	return nil
}
