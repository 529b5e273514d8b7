// Package cli holds what every slipway step binary shares: the process
// environment handed to a step, and the mapping from errors to exit codes.
//
// Exit codes: 0 ok, 1 failure, 2 usage or configuration, 3 policy refusal.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/fault"
)

// Exit codes shared by every step.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitPolicy  = 3
)

// Env is everything a step takes from its process, so tests can run a step
// in-process with their own environment and streams.
type Env struct {
	Args []string
	// Environ is the environment as KEY=VALUE pairs.
	Environ []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// Dir is the working directory; relative paths are resolved against it.
	Dir string
}

// OS returns the Env of the running process.
func OS() (Env, error) {
	dir, err := os.Getwd()
	if err != nil {
		return Env{}, fmt.Errorf("finding working directory: %w", err)
	}
	return Env{
		Args:    os.Args[1:],
		Environ: os.Environ(),
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Dir:     dir,
	}, nil
}

// Getenv returns the value of key in Environ; the last one wins, as in
// os/exec.
func (e Env) Getenv(key string) string {
	for i := len(e.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e.Environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Usage marks err as a usage or configuration error (exit 2).
func Usage(err error) error { return fault.As(fault.Invalid, err) }

// Usagef formats a usage or configuration error (exit 2).
func Usagef(format string, args ...any) error {
	return Usage(fmt.Errorf(format, args...))
}

// Policy marks err as a policy refusal (exit 3).
func Policy(err error) error { return fault.As(fault.Refused, err) }

// Flags renames the options that errors from a step's library name
// (fault.OptionError) to the flags that set them: base is --base.
func Flags(err error) error { return fault.Rename(err, fault.Flag) }

// Silent is returned when the step already reported the failure itself (for
// example as annotations) and only the exit code is left to give.
type Silent struct{ Code int }

func (s *Silent) Error() string { return fmt.Sprintf("exit status %d", s.Code) }
func (s *Silent) ExitCode() int { return s.Code }

// ExitCode returns the exit code for err, and prints err as one line on w
// prefixed by prog, naming the options the step's library names (see
// Flags) as their flags. A nil error is 0; an error without a code is 1.
func ExitCode(w io.Writer, prog string, err error) int {
	if err == nil {
		return ExitOK
	}
	err = Flags(err)
	code := ExitFailure
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		code = coder.ExitCode()
	}
	var silent *Silent
	if !errors.As(err, &silent) {
		// One line, always: a multi-line error is a hard read in a CI log.
		msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
		fmt.Fprintf(w, "%s: %s\n", prog, msg)
	}
	return code
}

// Reported prints err as ExitCode does, on w, and returns an error that
// carries only its exit code, for Run not to print it again. A step whose
// platform is known hands it that platform's stderr, which masks secrets
// and, on GitHub, defuses workflow commands in text the step does not
// control: an input, a registry's error body, a waiver id.
func Reported(w io.Writer, prog string, err error) error {
	if err == nil {
		return nil
	}
	return &Silent{Code: ExitCode(w, prog, err)}
}

// Run runs a step's main function with the process environment and a
// context cancelled on SIGINT or SIGTERM, and returns the exit code, having
// printed any error as one line on stderr.
func Run(prog string, main func(context.Context, Env) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := OS()
	if err != nil {
		return ExitCode(os.Stderr, prog, err)
	}
	return run(ctx, env, os.Stderr, prog, main)
}

// run is Run with its process given. An error the step has not printed
// itself (one from before it knew its platform, quoting the command line)
// goes through a platform stream all the same, which on GitHub defuses
// what would read as a workflow command.
func run(ctx context.Context, env Env, stderr io.Writer, prog string, main func(context.Context, Env) error) int {
	w := ci.Detect(ci.Options{Getenv: env.Getenv, Stderr: stderr}).Stderr()
	return ExitCode(w, prog, main(ctx, env))
}
