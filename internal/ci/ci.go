// Package ci is slipway's one abstraction over where a step runs: GitHub
// Actions, GitLab CI, or a terminal. A step asks it for inputs, hands it
// outputs, a summary and annotations, and never needs to know which
// platform is underneath.
package ci

import (
	"fmt"
	"io"
	"strings"
)

// Platform is where a step runs. One file per platform implements it.
type Platform interface {
	// Name is "github", "gitlab" or "local".
	Name() string
	// Input returns a value the platform supplies for a flag the command
	// line left unset: INPUT_<NAME> on GitHub, SLIPWAY_<NAME> on GitLab.
	Input(name string) (string, bool)
	// SetOutput hands a value to later steps or jobs.
	SetOutput(name, value string) error
	// WriteSummary publishes the step's summary.
	WriteSummary(s *Summary) error
	// Annotate attaches a message to a file and line where the platform
	// can show it, and prints it otherwise.
	Annotate(a Annotation)
	// Group starts a collapsible section of the log; call the returned
	// function to end it.
	Group(title string) (end func())
	// Mask makes sure secret never appears in anything the step prints.
	Mask(secret string)
	// Stdout and Stderr are the step's streams, with secrets masked and,
	// on GitHub, lines that would read as workflow commands defused.
	Stdout() io.Writer
	Stderr() io.Writer
	// Info describes the commit, ref and run as the platform reports them.
	Info() Info
}

// Info is what a CI platform says about the run.
type Info struct {
	Platform   string
	Commit     string
	Ref        string // full ref, e.g. refs/heads/main
	Branch     string
	Tag        string
	PR         string // pull or merge request number
	Repository string // owner/name or group/project
	RunURL     string
	Actor      string
}

// Severity of an annotation.
type Severity string

// Annotation severities, named as GitHub names its commands.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Notice  Severity = "notice"
)

// Annotation is a message tied to a place in the source.
type Annotation struct {
	Severity Severity
	File     string // relative to the repository root
	Line     int
	Col      int
	Title    string
	Message  string
}

// String renders the annotation as a compiler-style line.
func (a Annotation) String() string {
	var b strings.Builder
	if a.File != "" {
		b.WriteString(a.File)
		if a.Line > 0 {
			fmt.Fprintf(&b, ":%d", a.Line)
			if a.Col > 0 {
				fmt.Fprintf(&b, ":%d", a.Col)
			}
		}
		b.WriteString(": ")
	}
	b.WriteString(string(a.Severity))
	b.WriteString(": ")
	if a.Title != "" {
		b.WriteString(a.Title + ": ")
	}
	b.WriteString(a.Message)
	return b.String()
}

// Options configure Detect.
type Options struct {
	// Getenv reads the environment.
	Getenv func(string) string
	// Stdout and Stderr are the raw process streams.
	Stdout, Stderr io.Writer
	// Dir is the working directory, for relative paths.
	Dir string
	// Step names the step ("build"); it prefixes GitLab dotenv keys.
	Step string
	// SummaryFile is where the Markdown summary goes off GitHub, unless
	// SLIPWAY_SUMMARY_FILE names another file.
	SummaryFile string
}

// Detect returns the platform the process runs on: GitHub Actions when
// GITHUB_ACTIONS=true, GitLab CI when GITLAB_CI=true, local otherwise.
func Detect(o Options) Platform {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	switch {
	case o.Getenv("GITHUB_ACTIONS") == "true":
		return newGitHub(o)
	case o.Getenv("GITLAB_CI") == "true":
		return newGitLab(o)
	default:
		return newLocal(o)
	}
}

// Names lists the platforms, for messages.
func Names() []string { return []string{"github", "gitlab", "local"} }

// Getenv looks keys up in environ, KEY=VALUE pairs such as a step's
// process environment; the last one wins, as in os/exec.
func Getenv(environ []string) func(string) string {
	return func(key string) string {
		for i := len(environ) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
				return v
			}
		}
		return ""
	}
}
