// Package fault is how a step's library says what kind of error it
// returns, without knowing the command line: an invalid configuration, a
// policy refusal, or a plain failure; and, for a bad option, which option.
// The step's command maps the kind to an exit code (package cli) and the
// option to the flag or CI input that set it.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is what an error means for the step's exit code.
type Kind int

const (
	// Failure is anything that may pass on another try: exit 1.
	Failure Kind = 1
	// Invalid is a usage or configuration error, a value that can never
	// work: exit 2.
	Invalid Kind = 2
	// Refused is a policy refusal: exit 3.
	Refused Kind = 3
)

type kinded struct {
	kind Kind
	err  error
}

func (e *kinded) Error() string { return e.err.Error() }
func (e *kinded) Unwrap() error { return e.err }

// ExitCode is the kind as an exit code, for cli.ExitCode.
func (e *kinded) ExitCode() int { return int(e.kind) }

// As marks err with kind; nil stays nil.
func As(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kinded{kind: kind, err: err}
}

// Invalidf formats an Invalid error.
func Invalidf(format string, args ...any) error {
	return As(Invalid, fmt.Errorf(format, args...))
}

// Of returns err's kind: the first in its chain, Failure if none.
func Of(err error) Kind {
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		return Kind(coder.ExitCode())
	}
	return Failure
}

// OptionError is an option whose value can never work. The library names
// the option as its Options documentation does (base, platforms), in front
// of the message or where it says {option}; the command renames it
// (Rename) to what the user typed (--base).
type OptionError struct {
	Option string
	Err    error
}

// Option is an Invalid error about option.
func Option(option string, err error) error {
	return As(Invalid, &OptionError{Option: option, Err: err})
}

// Optionf formats an Invalid error about option.
func Optionf(option, format string, args ...any) error {
	return Option(option, fmt.Errorf(format, args...))
}

// Error puts the option's name where the message has {option}, else in
// front of it.
func (e *OptionError) Error() string {
	msg := e.Err.Error()
	switch {
	case strings.Contains(msg, "{option}"):
		return strings.ReplaceAll(msg, "{option}", e.Option)
	case strings.HasPrefix(msg, ":"):
		return e.Option + msg
	}
	return e.Option + " " + msg
}
func (e *OptionError) Unwrap() error { return e.Err }

// Rename returns err with its OptionError's option named as name says,
// in the whole message: wrappers made with fmt.Errorf keep the message
// they were made with, so the rename is done on the text, once.
func Rename(err error, name func(option string) string) error {
	var oe *OptionError
	if !errors.As(err, &oe) {
		return err
	}
	renamed := (&OptionError{Option: name(oe.Option), Err: oe.Err}).Error()
	return &renamedError{err: err, msg: strings.Replace(err.Error(), oe.Error(), renamed, 1)}
}

type renamedError struct {
	err error
	msg string
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// Flag names an option as its flag: base is --base.
func Flag(option string) string { return "--" + option }
