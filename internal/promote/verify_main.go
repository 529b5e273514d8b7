package promote

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
)

const verifyUsage = `usage: slipway verify REPOSITORY@sha256:… [--env ENVIRONMENT] [flags]

Checks, reading only, what slipway promote would: the image's signature
under the trust: of .slipway.yaml (an environment's own, with --env), and,
with --env, every gate of that environment that reads evidence (from, soak,
scan, sbom, provenance). Signed evidence counts only if it verifies under
trust:. Exits 0 when every check passes, 3 when one fails; prints a table,
or JSON with --format json.

--emit kyverno|policy-controller writes instead the admission policy that
enforces the same identities, keys and attestation types in a cluster.

Flags:
`

// VerifyMain runs slipway verify with the given process environment.
func VerifyMain(ctx context.Context, env cli.Env) error { return Command{}.Verify(ctx, env) }

type verifyFlags struct {
	common
	env, format, emit string
}

func (a *verifyFlags) register(fs *flag.FlagSet) {
	a.common.register(fs)
	fs.StringVar(&a.env, "env", "", "the `environment` whose trust: and gates apply")
	fs.StringVar(&a.format, "format", "table", "`table` or json")
	fs.StringVar(&a.emit, "emit", "", "write the admission policy for `kyverno|policy-controller` instead of verifying")
}

// Verify runs slipway verify.
func (c Command) Verify(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway verify", flag.ContinueOnError)
	var a verifyFlags
	a.register(fs)
	// The image may come before the flags: slipway verify REF --env production.
	var ref string
	args := env.Args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		ref, args = args[0], args[1:]
	}
	env.Args = args
	if done, err := cli.ParseFlags(fs, env, "verify", verifyUsage); done {
		return err
	}
	rest := fs.Args()
	if ref == "" && len(rest) > 0 {
		ref, rest = rest[0], rest[1:]
	}
	p := ci.Detect(ci.Options{Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "verify"})
	var err error
	if len(rest) > 0 {
		err = cli.Usagef("unexpected arguments %s", strings.Join(rest, " "))
	} else {
		err = c.verify(ctx, env, p, &a, ref)
	}
	if err == nil {
		return nil
	}
	var silent *cli.Silent
	if errors.As(err, &silent) {
		return err
	}
	return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway verify", err)}
}

func (c Command) verify(ctx context.Context, env cli.Env, p ci.Platform, a *verifyFlags, ref string) error {
	if a.format != "table" && a.format != "json" {
		return cli.Usagef("--format %q: use table or json", a.format)
	}
	cfg, err := LoadConfig(env.Resolve(a.config))
	if err != nil {
		return cli.Usage(err)
	}
	var target *Environment
	if a.env != "" {
		if target, err = cfg.Environment(a.env); err != nil {
			return cli.Usage(err)
		}
	}
	if a.emit != "" {
		return emitPolicy(p.Stdout(), cfg, target, a.emit, ref)
	}
	if ref == "" {
		return cli.Usagef("no image: give REPOSITORY@sha256:…")
	}
	src, err := verifyDigest(ref, a.reg.PlainHTTP.Values)
	if err != nil {
		return cli.Usage(err)
	}
	client, err := a.client(env, p, src.RegistryStr())
	if err != nil {
		return err
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	res, err := Verify(ctx, Options{Config: cfg, To: target, Source: src, Registry: client, Eval: EvalOptions{Now: now}})
	var refused *Refused
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	if a.format == "json" {
		out, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return jerr
		}
		fmt.Fprintf(p.Stdout(), "%s\n", out)
	} else {
		fmt.Fprint(p.Stdout(), verifyTable(res).Text())
	}
	if refused != nil {
		for _, v := range refused.Failing {
			fmt.Fprintf(p.Stderr(), "slipway verify: %s failed: %s\n", v.Gate, v.Detail)
		}
		return &cli.Silent{Code: cli.ExitPolicy}
	}
	return nil
}

func verifyTable(res *VerifyResult) *ci.Summary {
	title := "slipway verify " + res.Image
	if res.Environment != "" {
		title += " for " + res.Environment
	}
	s := &ci.Summary{Title: title, Table: ci.Table{Header: []string{"Check", "Result", "Detail", "Evidence"}}}
	for _, v := range res.Checks {
		r := "pass"
		if !v.Pass {
			r = "FAIL"
		}
		s.Table.Rows = append(s.Table.Rows, []string{v.Gate, r, v.Detail, short(v.Evidence)})
	}
	return s
}
