package ci

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/internal/redact"
	"github.com/slipwayci/slipway/internal/safefile"
)

// gitlab runs under GitLab CI. Outputs go to a dotenv file that the
// template declares under artifacts:reports:dotenv, so later jobs receive
// them as variables.
type gitlab struct {
	o       Options
	secrets *secrets
	stdout  *stream
	stderr  *stream
	section atomic.Int64
}

var _ Platform = (*gitlab)(nil)

func newGitLab(o Options) *gitlab {
	s := &secrets{}
	return &gitlab{o: o, secrets: s, stdout: newStream(o.Stdout, s, false), stderr: newStream(o.Stderr, s, false)}
}

func (g *gitlab) Name() string      { return "gitlab" }
func (g *gitlab) Stdout() io.Writer { return g.stdout }
func (g *gitlab) Stderr() io.Writer { return g.stderr }

// Input reads SLIPWAY_<NAME>, which a job sets under variables:.
func (g *gitlab) Input(name string) (string, bool) {
	for _, key := range inputKeys("SLIPWAY_", name) {
		if v := strings.TrimSpace(g.o.Getenv(key)); v != "" {
			return v, true
		}
	}
	return "", false
}

// DotenvFile is where GitLab outputs go unless SLIPWAY_DOTENV names
// another file; the template's artifacts:reports:dotenv names the same.
const DotenvFile = "slipway.env"

// dotenvLimit keeps the file under GitLab's 5 KB limit on dotenv reports.
const dotenvLimit = 5000

var dotenvKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// DotenvKey is the variable a step's output becomes on GitLab:
// SLIPWAY_<STEP>_<NAME>.
func DotenvKey(step, name string) string {
	k := "SLIPWAY_"
	if step != "" {
		k += step + "_"
	}
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(k + name))
}

// SetOutput sets SLIPWAY_<STEP>_<NAME>=value in the dotenv file, replacing
// an earlier value of the same key. GitLab's dotenv has no quoting and no
// multi-line values, so such values are refused rather than mangled.
func (g *gitlab) SetOutput(name, value string) error {
	key := DotenvKey(g.o.Step, name)
	if !dotenvKey.MatchString(key) {
		return fmt.Errorf("setting output %q: %s is not a valid variable name", name, key)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("setting output %s: GitLab dotenv values cannot span lines", key)
	}
	path := g.o.Getenv("SLIPWAY_DOTENV")
	if path == "" {
		path = DotenvFile
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(g.o.Dir, path)
	}
	lines, err := readDotenv(path)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	replaced := false
	for _, l := range lines {
		if k, _, _ := strings.Cut(l, "="); k == key {
			l, replaced = key+"="+value, true
		}
		out.WriteString(l + "\n")
	}
	if !replaced {
		out.WriteString(key + "=" + value + "\n")
	}
	if out.Len() > dotenvLimit {
		fmt.Fprintf(g.stderr, "warning: output %s left out of %s: GitLab refuses dotenv reports over 5 KB\n", key, filepath.Base(path))
		return nil
	}
	return safefile.Write(path, out.Bytes(), 0o644)
}

func readDotenv(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), dotenvLimit*4)
	for sc.Scan() {
		if l := sc.Text(); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// WriteSummary writes the Markdown summary to a file (keep it as an
// artifact) and prints the terminal table in the job log.
func (g *gitlab) WriteSummary(s *Summary) error { return writeSummaryFile(g.o, g.stdout, g.secrets, s) }

func (g *gitlab) Annotate(a Annotation) {
	fmt.Fprintln(g.stderr, a.String())
}

// Group prints GitLab's collapsible section markers.
func (g *gitlab) Group(title string) func() {
	name := fmt.Sprintf("slipway_%d", g.section.Add(1))
	fmt.Fprintf(g.stdout, "\x1b[0Ksection_start:%d:%s[collapsed=true]\r\x1b[0K%s\n", time.Now().Unix(), name, title)
	return func() {
		fmt.Fprintf(g.stdout, "\x1b[0Ksection_end:%d:%s\r\x1b[0K\n", time.Now().Unix(), name)
	}
}

// Mask keeps the secret out of this process's output. GitLab masks only
// variables declared masked in the project, so the stream does the work.
func (g *gitlab) Mask(secret string) { g.secrets.add(secret) }

func (g *gitlab) Info() Info {
	get := g.o.Getenv
	info := Info{
		Platform:   "gitlab",
		Commit:     get("CI_COMMIT_SHA"),
		Tag:        get("CI_COMMIT_TAG"),
		Branch:     get("CI_COMMIT_BRANCH"),
		PR:         get("CI_MERGE_REQUEST_IID"),
		Repository: get("CI_PROJECT_PATH"),
		RunURL:     redact.URL(get("CI_JOB_URL")),
		Actor:      get("GITLAB_USER_LOGIN"),
	}
	switch {
	case info.Tag != "":
		info.Ref = "refs/tags/" + info.Tag
	case info.Branch != "":
		info.Ref = "refs/heads/" + info.Branch
	case info.PR != "":
		info.Branch = get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
		info.Ref = "refs/merge-requests/" + info.PR + "/head"
	}
	return info
}
