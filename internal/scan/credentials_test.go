package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: --vulndb names a private mirror with its login in the URL
// (https://ci:PASSWORD@…; govulncheck takes no query). The login is used
// to fetch the database,
// and is in nothing the step writes or prints, from the statement that
// push attaches to the image to the log, the summary and the outputs.
func TestVulnDBCredentialsNotRecorded(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the sample app")
	}
	const password = "s3cr3t-pw"
	srv := scantest.ServeVulnDB(t)
	vulndb := strings.Replace(srv.URL, "http://", "http://ci:"+password+"@", 1)
	dir := testkit.SampleRepo(t, "vulnerable", t.TempDir())
	outFile := filepath.Join(t.TempDir(), "github-output")
	stdout, stderr, code := run(t, dir, []string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary.md")},
		"--image", "none", "--scanners", "govulncheck", "--vulndb", vulndb, "--fail-on", "none",
		"--format", "text,json=dist/report.json,sarif=dist/scan.sarif,gitlab=dist/gl.json,gitlab-sast=dist/sast.json,summary=dist/summary.md")
	if code != cli.ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !srv.Served("/index/modules.json.gz") || !strings.Contains(strings.Join(srv.Users(), ","), "ci") {
		t.Errorf("the database was not fetched with the login: paths %v, users %v", srv.Paths(), srv.Users())
	}
	// The one place the password may be is the command that has GitHub's
	// runner mask it, which the runner does not print.
	addMask := "::add-mask::" + password + "\n"
	if !strings.Contains(stdout, addMask) {
		t.Errorf("the password was not masked on GitHub:\n%s", stdout)
	}
	written := map[string]string{"stdout": strings.Replace(stdout, addMask, "", 1), "stderr": stderr}
	for _, f := range []string{"dist/" + FindingsFile, "dist/" + StatementFile, "summary.md", "dist/report.json", "dist/scan.sarif", "dist/gl.json", "dist/sast.json", "dist/summary.md"} {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		written[f] = string(data)
	}
	if data, err := os.ReadFile(outFile); err == nil {
		written["outputs"] = string(data)
	}
	for name, text := range written {
		if strings.Contains(text, password) {
			t.Errorf("%s holds the password:\n%s", name, text)
		}
	}
	// The database is still named, without its login.
	if host := strings.TrimPrefix(srv.URL, "http://"); !strings.Contains(written["dist/"+StatementFile], host) {
		t.Errorf("the statement does not name the database %s:\n%s", host, written["dist/"+StatementFile])
	}
}

// An error that quotes the URL as given (here govulncheck's, for a scheme
// it does not take) prints the login masked, on any platform.
func TestVulnDBCredentialsMaskedInErrors(t *testing.T) {
	dir := testkit.SampleRepo(t, "vulnerable", t.TempDir())
	for _, environ := range [][]string{nil, {"GITHUB_ACTIONS=true"}, {"GITLAB_CI=true"}} {
		_, stderr, code := run(t, dir, environ, "--image", "none", "--scanners", "govulncheck", "--vulndb", "ftp://ci:s3cr3t-pw@mirror.example.com/db")
		if code == cli.ExitOK {
			t.Fatalf("%v: an ftp:// database was accepted", environ)
		}
		if !strings.Contains(stderr, "mirror.example.com") {
			t.Errorf("%v: the error does not name the database:\n%s", environ, stderr)
		}
		if strings.Contains(stderr, "s3cr3t-pw") {
			t.Errorf("%v: the error shows the password:\n%s", environ, stderr)
		}
	}
}
