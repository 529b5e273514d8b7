package ci

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/slipwayci/slipway/internal/redact"
)

// github runs under GitHub Actions (and act). It uses go-githubactions to
// format and escape workflow commands, but writes the environment files
// itself: the library panics when a file is missing and
// uses a fixed heredoc delimiter that an untrusted value could close early.
type github struct {
	o       Options
	secrets *secrets
	stdout  *stream
	stderr  *stream
}

var _ Platform = (*github)(nil)

func newGitHub(o Options) *github {
	s := &secrets{}
	return &github{
		o:       o,
		secrets: s,
		stdout:  newStream(o.Stdout, s, true),
		stderr:  newStream(o.Stderr, s, true),
	}
}

func (g *github) Name() string      { return "github" }
func (g *github) Stdout() io.Writer { return g.stdout }
func (g *github) Stderr() io.Writer { return g.stderr }

// Input reads INPUT_<NAME>, the way actions receive inputs. A composite
// action sets these through env:, so dashes may appear as underscores.
func (g *github) Input(name string) (string, bool) {
	for _, key := range inputKeys("INPUT_", name) {
		if v := strings.TrimSpace(g.o.Getenv(key)); v != "" {
			return v, true
		}
	}
	return "", false
}

// inputKeys lists the environment names a flag may arrive under.
func inputKeys(prefix, name string) []string {
	upper := strings.ToUpper(strings.ReplaceAll(name, " ", "_"))
	keys := []string{prefix + upper}
	if u := strings.ReplaceAll(upper, "-", "_"); u != upper {
		keys = append(keys, prefix+u)
	}
	return keys
}

// SetOutput appends name<<DELIM … DELIM to GITHUB_OUTPUT with a delimiter
// drawn at random for each value, so no value can end the block early and
// write outputs of its own.
func (g *github) SetOutput(name, value string) error {
	path := g.o.Getenv("GITHUB_OUTPUT")
	if path == "" {
		// Old runners and hand-run scripts: show the value instead.
		fmt.Fprintf(g.stdout, "%s=%s\n", name, value)
		return nil
	}
	delim, err := delimiter(value)
	if err != nil {
		return err
	}
	block := fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim)
	return appendFile(path, block)
}

func delimiter(value string) (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("drawing an output delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(b[:])
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// WriteSummary appends Markdown to GITHUB_STEP_SUMMARY and also prints the
// terminal table, since the log is where people look first.
func (g *github) WriteSummary(s *Summary) error {
	fmt.Fprint(g.stdout, s.Text())
	path := g.o.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	return appendFile(path, string(g.secrets.mask([]byte(s.Markdown())))+"\n")
}

// Annotate issues ::error/::warning/::notice. The library escapes the
// message and properties, so untrusted text cannot start a new command.
func (g *github) Annotate(a Annotation) {
	props := githubactions.CommandProperties{}
	if a.File != "" {
		props["file"] = a.File
	}
	if a.Line > 0 {
		props["line"] = fmt.Sprint(a.Line)
	}
	if a.Col > 0 {
		props["col"] = fmt.Sprint(a.Col)
	}
	if a.Title != "" {
		props["title"] = string(g.secrets.mask([]byte(a.Title)))
	}
	g.command(string(a.Severity), props, string(g.secrets.mask([]byte(a.Message))))
}

func (g *github) Group(title string) func() {
	g.command("group", nil, string(g.secrets.mask([]byte(title))))
	return func() { g.command("endgroup", nil, "") }
}

// Mask registers the secret with the runner (::add-mask::) and with this
// process's streams, which mask it whatever the runner does.
func (g *github) Mask(secret string) {
	if strings.TrimSpace(secret) == "" {
		return
	}
	g.secrets.add(secret)
	for _, line := range strings.Split(secret, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			g.command("add-mask", nil, line)
		}
	}
}

func (g *github) command(name string, props githubactions.CommandProperties, msg string) {
	cmd := &githubactions.Command{Name: name, Properties: props, Message: msg}
	g.stdout.command(cmd.String())
}

func (g *github) Info() Info {
	get := g.o.Getenv
	info := Info{
		Platform:   "github",
		Commit:     get("GITHUB_SHA"),
		Ref:        get("GITHUB_REF"),
		Repository: get("GITHUB_REPOSITORY"),
		Actor:      get("GITHUB_ACTOR"),
	}
	switch get("GITHUB_REF_TYPE") {
	case "tag":
		info.Tag = get("GITHUB_REF_NAME")
	case "branch":
		info.Branch = get("GITHUB_REF_NAME")
	}
	if info.Tag == "" && strings.HasPrefix(info.Ref, "refs/tags/") {
		info.Tag = strings.TrimPrefix(info.Ref, "refs/tags/")
	}
	if strings.HasPrefix(info.Ref, "refs/pull/") {
		info.PR = strings.TrimSuffix(strings.TrimPrefix(info.Ref, "refs/pull/"), "/merge")
		info.Branch = get("GITHUB_HEAD_REF")
	}
	if server, id := get("GITHUB_SERVER_URL"), get("GITHUB_RUN_ID"); server != "" && info.Repository != "" && id != "" {
		// Recorded (promotion history, images): never with a login in it.
		info.RunURL = redact.URL(server + "/" + info.Repository + "/actions/runs/" + id)
	}
	return info
}
