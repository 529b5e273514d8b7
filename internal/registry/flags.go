package registry

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/version"
)

// Flags are the command-line flags of every step that reaches a registry,
// declared once: the login, TLS and plain HTTP, retries, timeouts and
// progress. Register binds them; Client turns them into a Client.
type Flags struct {
	Username      string
	PasswordStdin bool
	// Registry is the registry Username logs in to (default: the step's
	// own, e.g. the first destination's).
	Registry      string
	SkipTLSVerify cli.List
	PlainHTTP     cli.List
	// Insecure is the old --insecure, now only SkipTLSVerify.
	Insecure cli.List
	Retries  int
	Timeout  time.Duration
	// Progress is auto or one of ProgressModes.
	Progress string
}

// Register declares the flags on fs. registryDefault says, for --help,
// which registry --username logs in to by default.
func (f *Flags) Register(fs *flag.FlagSet, registryDefault string) {
	f.SkipTLSVerify.Comma, f.PlainHTTP.Comma, f.Insecure.Comma = true, true, true
	fs.StringVar(&f.Username, "username", "", "`user` to log in as, with --password-stdin")
	fs.BoolVar(&f.PasswordStdin, "password-stdin", false, "read the password for --username from standard input")
	fs.StringVar(&f.Registry, "registry", "", "`registry` --username logs in to (default: "+registryDefault+")")
	fs.Var(&f.SkipTLSVerify, "insecure-skip-tls-verify", "`registry` (host[:port]) whose TLS certificate is not verified; never plain HTTP (repeatable)")
	fs.Var(&f.PlainHTTP, "plain-http", "`registry` (host[:port]) that may be reached over plain HTTP; loopback always may (repeatable)")
	fs.Var(&f.Insecure, "insecure", "deprecated: means --insecure-skip-tls-verify; plain HTTP needs --plain-http")
	fs.IntVar(&f.Retries, "retries", DefaultRetries, "times a failed registry operation is retried, with backoff and Retry-After")
	fs.DurationVar(&f.Timeout, "registry-timeout", DefaultIdle, "how long a registry may leave a request without progress before it is retried; each operation may take five times this, retries included")
	fs.StringVar(&f.Progress, "progress", "auto", "how transfers are shown: auto, "+strings.Join(ProgressModes(), ", "))
}

// Login is what a Client needs of the step's process.
type Login struct {
	Env cli.Env
	// Mask hides a secret from every stream of the step; it is called
	// once per secret.
	Mask func(string)
	// Registry is the registry --username logs in to unless --registry
	// names one.
	Registry string
	// Warn receives deprecation notices.
	Warn io.Writer
	// OnRetry, if set, hears of every retry.
	OnRetry func(repo name.Repository, op string, err error, wait time.Duration)
}

// Client makes the client the flags describe: it reads the password from
// standard input, masks every secret it finds, and reads the step's
// SSL_CERT_FILE. Misused flags are usage errors.
func (f *Flags) Client(l Login) (*Client, error) {
	if f.Retries < 0 {
		return nil, cli.Usagef("--retries %d: want 0 or more", f.Retries)
	}
	if f.Timeout <= 0 {
		return nil, cli.Usagef("--registry-timeout %s: want a positive duration such as 30s", f.Timeout)
	}
	if f.Progress != "auto" && !slices.Contains(ProgressModes(), f.Progress) {
		return nil, cli.Usagef("--progress %q: want auto, %s", f.Progress, strings.Join(ProgressModes(), ", "))
	}
	masked := map[string]bool{}
	mask := func(s string) {
		if s != "" && !masked[s] && l.Mask != nil {
			masked[s] = true
			l.Mask(s)
		}
	}
	var password string
	switch {
	case f.PasswordStdin && f.Username == "":
		return nil, cli.Usagef("--password-stdin needs --username")
	case f.PasswordStdin:
		data, err := io.ReadAll(io.LimitReader(l.Env.Stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("reading the password from standard input: %w", err)
		}
		if password = strings.TrimRight(string(data), "\r\n"); password == "" {
			return nil, cli.Usagef("--password-stdin: standard input is empty")
		}
		mask(password)
	case f.Username != "":
		return nil, cli.Usagef("--username needs --password-stdin; a password on the command line would show in process lists and logs")
	}
	if len(f.Insecure.Values) > 0 && l.Warn != nil {
		fmt.Fprintf(l.Warn, "note: --insecure is deprecated and now only skips TLS verification: use --insecure-skip-tls-verify %s, and --plain-http for a registry without TLS\n", strings.Join(f.Insecure.Values, ","))
	}
	reg := f.Registry
	if reg == "" {
		reg = l.Registry
	}
	// Go's own roots honour the process's SSL_CERT_FILE, and load it only
	// when a certificate needs checking; a step run with an environment of
	// its own (tests do) needs its file read here.
	ca := l.Env.Getenv("SSL_CERT_FILE")
	if ca == os.Getenv("SSL_CERT_FILE") {
		ca = ""
	}
	b := DefaultBackoff()
	b.Retries = f.Retries
	c, err := New(Options{
		Keychain:      Credentials{Registry: reg, Username: f.Username, Password: password, Getenv: l.Env.Getenv, Mask: mask}.Keychain(),
		CAFile:        ca,
		SkipTLSVerify: append(slices.Clone(f.SkipTLSVerify.Values), f.Insecure.Values...),
		PlainHTTP:     f.PlainHTTP.Values,
		UserAgent:     "slipway/" + version.String(),
		Backoff:       b,
		Idle:          f.Timeout,
		OnRetry:       l.OnRetry,
	})
	if err != nil {
		return nil, cli.Usage(err)
	}
	return c, nil
}

// ProgressMode is the mode --progress asks for: auto is a live line in a
// terminal (if tty allows it), a line per blob elsewhere on a workstation,
// and only retries and results in CI, whose logs are read afterwards.
func (f *Flags) ProgressMode(platform string, w io.Writer, tty bool) string {
	if f.Progress != "auto" && f.Progress != "" {
		return f.Progress
	}
	if platform != "local" {
		return ProgressQuiet
	}
	if tty && isTerminal(w) {
		return ProgressTTY
	}
	return ProgressPlain
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
