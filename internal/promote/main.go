package promote

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/gitops"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
)

const usage = `usage: slipway promote --digest REPOSITORY@sha256:… --to ENVIRONMENT [flags]
       slipway promote --rollback --to ENVIRONMENT [flags]

Moves an image that exists already, by digest, into an environment of
.slipway.yaml when the evidence attached to the digest passes the
environment's gates (from, scan, sbom, soak, health, approval). It copies the
index, manifests and blobs into the environment's repository (mounting them
on the same registry, uploading each once across registries) with what
refers to them (SBOMs, scan evidence, signatures, earlier promotion records),
appends a promotion record to the environment's history, and moves the
environment's tags to the digest last.

A refusing gate exits 3 with one line per failing gate; --dry-run shows every
verdict and changes nothing. --rollback points the tags back at the digest
promoted before the current one. --manifests DIR pins the image by digest in
the Kubernetes YAML, kustomizations and Helm values under DIR, for the
workflow to commit. 'slipway history ENVIRONMENT' lists the promotions.

--digest sha256:… alone is looked for in the repository of the environment
named by gates.from. Credentials are found as slipway push finds them.

Flags:
`

const historyUsage = `usage: slipway history ENVIRONMENT [flags]

Lists the promotions and rollbacks of an environment of .slipway.yaml, oldest
first, from the history kept in its repository; the current one is marked.

Flags:
`

// Command is the promote step with what tests replace.
type Command struct {
	// Now is the clock the gates and records use (default time.Now).
	Now func() time.Time
	// Settle overrides DefaultSettle.
	Settle time.Duration
	// Client probes the health gate's URL (default http.DefaultClient).
	Client *http.Client
}

// Main runs slipway promote with the given process environment.
func Main(ctx context.Context, env cli.Env) error { return Command{}.Promote(ctx, env) }

// HistoryMain runs slipway history with the given process environment.
func HistoryMain(ctx context.Context, env cli.Env) error { return Command{}.History(ctx, env) }

// common are the flags both commands share: the configuration and how to
// reach registries.
type common struct {
	config string
	reg    registry.Flags
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", ConfigFile, "`file` describing the environments")
	c.reg.Register(fs, "the environment's")
}

// client makes the registry client, masking every secret on the platform.
func (c *common) client(env cli.Env, p ci.Platform, defaultRegistry string) (*registry.Client, error) {
	return c.reg.Client(registry.Login{Env: env, Mask: p.Mask, Registry: defaultRegistry, Warn: p.Stderr()})
}

// promoteFlags is slipway promote's command line, each flag bound to its
// field.
type promoteFlags struct {
	common
	digest, to                   string
	rollback, repair, dryRun     bool
	platformManifest             bool
	approvedBy, ghEnv, manifests string
	match                        cli.List
	parallel                     int
	sign                         sign.Config
	rekorAPI                     uint
}

func (a *promoteFlags) register(fs *flag.FlagSet) {
	a.common.register(fs)
	fs.StringVar(&a.digest, "digest", "", "the image, `REPOSITORY@sha256:…` (or sha256:… in the repository of gates.from)")
	fs.StringVar(&a.to, "to", "", "the `environment` to promote into")
	fs.BoolVar(&a.rollback, "rollback", false, "point the environment back at the digest promoted before the current one")
	fs.BoolVar(&a.repair, "repair", false, "only make the environment's tags agree with its history (after a promotion was killed halfway)")
	fs.BoolVar(&a.platformManifest, "platform-manifest", false, "allow --digest to be one platform's manifest of a pushed index, promoting that platform alone")
	fs.BoolVar(&a.dryRun, "dry-run", false, "show every gate's verdict and what would change; change nothing")
	fs.StringVar(&a.approvedBy, "approved-by", "", "`name` of who approved, for the approval gate")
	fs.StringVar(&a.ghEnv, "github-environment", "", "on GitHub, the job's `environment`, whose protection rules approved the job")
	fs.StringVar(&a.manifests, "manifests", "", "`directory` of Kubernetes YAML, kustomizations and Helm values to pin to the digest")
	fs.Var(&a.match, "match", "with --manifests, another `repository` whose references are the same image (repeatable)")
	fs.IntVar(&a.parallel, "parallel", 4, "uploads at once")
	fs.StringVar(&a.sign.Sign, "sign", "", "sign the promotion record: `keyless`, off, or a private key file (default: keyless where the CI offers an OIDC token and the environment has trust:)")
	fs.StringVar(&a.sign.IdentityToken, "identity-token", "", "`file` holding the OIDC token for keyless signing")
	fs.StringVar(&a.sign.FulcioURL, "fulcio-url", "", "Fulcio's `URL` (default "+sign.PublicFulcio+")")
	fs.StringVar(&a.sign.TSAURL, "tsa-url", "", "the timestamp authority's `URL`, or none (default "+sign.PublicTSA+")")
	fs.StringVar(&a.sign.RekorURL, "rekor-url", "", "the transparency log's `URL`, or none (default "+sign.PublicRekor+")")
	fs.UintVar(&a.rekorAPI, "rekor-api", 1, "the log's API `version`: 1 or 2")
}

// signer is who signs the records: as --sign says, or, unset, keyless
// where the CI offers a token and the environment has trust: (whose from
// gates downstream then count the record).
func (a *promoteFlags) signer(ctx context.Context, env cli.Env, p ci.Platform, trusted bool) (*sign.Signer, error) {
	if a.sign.Sign == "" && !trusted {
		return nil, nil
	}
	c := a.sign
	c.RekorVersion, c.Getenv, c.Mask = uint32(a.rekorAPI), env.Getenv, p.Mask
	s, notice, err := sign.Setup(ctx, c)
	if notice != "" {
		fmt.Fprintf(p.Stderr(), "note: %s\n", notice)
	}
	return s, err
}

// Promote runs slipway promote.
func (c Command) Promote(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway promote", flag.ContinueOnError)
	var a promoteFlags
	a.register(fs)
	if done, err := cli.ParseFlags(fs, env, "promote", usage); done {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %s", strings.Join(fs.Args(), " "))
	}
	p, err := ci.Start(fs, ci.Options{Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "promote"}, nil)
	if err != nil {
		return cli.Usage(err)
	}
	err = c.promote(ctx, env, p, &a)
	if err == nil {
		return nil
	}
	var silent *cli.Silent
	if errors.As(err, &silent) {
		return err
	}
	return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway promote", err)}
}

func (c Command) promote(ctx context.Context, env cli.Env, p ci.Platform, a *promoteFlags) error {
	cfg, err := LoadConfig(env.Resolve(a.config))
	if err != nil {
		return cli.Usage(err)
	}
	if a.to == "" {
		return cli.Usagef("no environment: give --to, one of %s", strings.Join(cfg.Names(), ", "))
	}
	target, err := cfg.Environment(a.to)
	if err != nil {
		return cli.Usage(err)
	}
	if g := target.Gates; cfg.TrustFor(target) == nil && (g.Scan != nil || g.SBOM) && !a.rollback && !a.repair {
		fmt.Fprintf(p.Stderr(), "warning: %s has no trust: in %s, so its gates count unsigned evidence that anyone who can push to the repository could attach (see docs/promote.md#trust)\n", target.Name, a.config)
	}
	if a.digest == "" && !a.rollback && !a.repair && p.Name() == "gitlab" {
		// A job that needs: the push job has its refs from the dotenv
		// report; GitLab does not expand them in variables: reliably.
		a.digest = env.Getenv("SLIPWAY_PUSH_REFS")
	}
	modes := 0
	for _, m := range []bool{a.rollback, a.repair, a.digest != ""} {
		if m {
			modes++
		}
	}
	if modes != 1 {
		return cli.Usagef("give one of --digest REPOSITORY@sha256:…, --rollback or --repair")
	}
	plain := a.reg.PlainHTTP.Values
	var src name.Digest
	if a.digest != "" {
		if src, err = sourceDigest(cfg, target, a.digest, plain); err != nil {
			return cli.Usage(err)
		}
	}
	ghEnv := a.ghEnv
	if ghEnv != "" && p.Name() != "github" {
		// Only a GitHub job's environment has protection rules to trust.
		fmt.Fprintf(p.Stderr(), "note: --github-environment %s ignored outside GitHub Actions\n", ghEnv)
		ghEnv = ""
	}
	dst, err := registry.ParseRepository(target.Repository, plain)
	if err != nil {
		return cli.Usage(err)
	}
	client, err := a.client(env, p, dst.RegistryStr())
	if err != nil {
		return err
	}
	claims := c.jobClaims(ctx, env, p, cfg, target, a)
	var signer *sign.Signer
	if !a.dryRun && !a.repair {
		if signer, err = a.signer(ctx, env, p, cfg.TrustFor(target) != nil); err != nil {
			return err
		}
	}
	info := p.Info()
	actor := info.Actor
	if actor == "" {
		actor = env.Getenv("USER")
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	// Gate verdicts and notes interleave with the copy: no live line.
	mode := a.reg.ProgressMode(p.Name(), env.Stderr, false)
	o := Options{
		Config: cfg, To: target, Source: src, DryRun: a.dryRun, PlatformManifest: a.platformManifest,
		Eval:   EvalOptions{Now: now, ApprovedBy: a.approvedBy, GitHubEnvironment: ghEnv, Client: c.Client, JobClaims: claims},
		RunURL: info.RunURL, Actor: actor,
		Registry: client, Jobs: a.parallel,
		Progress: registry.NewProgress(p.Stderr(), mode, "copying"), Settle: c.Settle, Signer: signer,
	}

	if a.repair {
		head, err := Repair(ctx, o)
		if err != nil {
			return err
		}
		if head == nil {
			fmt.Fprintf(p.Stdout(), "%s has no history yet; nothing to repair\n", target.Name)
			return nil
		}
		fmt.Fprintf(p.Stdout(), "%s: tags agree with record #%d, %s\n", target.Name, head.Sequence, head.Digest)
		return nil
	}

	// The manifests are planned before anything is copied: one that cannot
	// be edited in place is a configuration error, and finding it after
	// the promotion would leave the environment promoted and the GitOps
	// repository behind. The edits do not depend on the digest written
	// (a rollback's is known only later), so a stand-in plans them.
	manifestTarget := func(digest string) gitops.Target {
		match := append([]string{}, a.match.Values...)
		if !a.rollback {
			match = append(match, src.Context().String())
		}
		return gitops.Target{Match: match, Repository: dst.String(), Digest: digest}
	}
	if a.manifests != "" {
		plan := "sha256:" + strings.Repeat("0", 64)
		if !a.rollback {
			plan = src.DigestStr()
		}
		if _, err := gitops.Rewrite(env.Resolve(a.manifests), manifestTarget(plan), true); err != nil {
			return cli.Usagef("--manifests: %v; nothing was promoted", err)
		}
	}

	var res *Result
	title := "slipway promote: " + src.String() + " to " + target.Name
	if a.rollback {
		title = "slipway promote: rollback of " + target.Name
	}
	endGroup := p.Group(title)
	if a.rollback {
		res, err = Rollback(ctx, o)
	} else {
		res, err = Promote(ctx, o)
	}
	endGroup()
	var refused *Refused
	if errors.As(err, &refused) {
		for _, v := range refused.Failing {
			fmt.Fprintf(p.Stderr(), "slipway promote: gate %s refused: %s\n", v.Gate, v.Detail)
		}
		if serr := p.WriteSummary(Summary(res, nil, err)); serr != nil {
			return serr
		}
		return &cli.Silent{Code: cli.ExitPolicy}
	}
	if err != nil {
		if res != nil {
			// The error itself ends the step's output; the summary says
			// how far the promotion got.
			p.WriteSummary(Summary(res, nil, err))
		}
		return err
	}

	var changes *gitops.Result
	if a.manifests != "" {
		r, err := gitops.Rewrite(env.Resolve(a.manifests), manifestTarget(res.Digest.String()), a.dryRun)
		if err != nil {
			return err
		}
		changes = &r
	}
	if err := report(p, res, changes); err != nil {
		return err
	}
	return nil
}

// jobClaims are the verified claims of the GitHub job's OIDC token, for
// an approval gate under trust:; nil (with a note saying why) when there
// is no token or it does not verify, and the gate then refuses.
func (c Command) jobClaims(ctx context.Context, env cli.Env, p ci.Platform, cfg *Config, target *Environment, a *promoteFlags) *JobClaims {
	g := target.Gates.Approval
	if g == nil || cfg.TrustFor(target) == nil || a.rollback || a.repair {
		return nil
	}
	var tok, issuer string
	switch p.Name() {
	case "github":
		url := env.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL")
		if url == "" {
			return nil
		}
		src := &sign.GitHubActions{RequestURL: url, RequestToken: env.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"), Audience: ApprovalAudience}
		var err error
		if tok, err = src.Token(ctx); err != nil {
			fmt.Fprintf(p.Stderr(), "note: no OIDC token for the approval gate: %v\n", err)
			return nil
		}
		issuer = g.Issuer
	case "gitlab":
		// id_tokens: {SLIPWAY_ID_TOKEN: {aud: slipway-approval}} in the job.
		if tok = strings.TrimSpace(env.Getenv("SLIPWAY_ID_TOKEN")); tok == "" {
			return nil
		}
		issuer = g.Issuer
		if issuer == GitHubIssuer {
			issuer = strings.TrimSuffix(env.Getenv("CI_SERVER_URL"), "/")
		}
	default:
		return nil
	}
	p.Mask(tok)
	claims, err := VerifyJobToken(ctx, issuer, tok)
	if err != nil {
		fmt.Fprintf(p.Stderr(), "note: the job's OIDC token does not count for the approval gate: %v\n", err)
		return nil
	}
	return claims
}

// signedEntries says, under the environment's trust:, which entries a
// trusted identity signed; nil without trust:.
func signedEntries(ctx context.Context, cfg *Config, env *Environment, h *History, entries []*Entry) ([]bool, error) {
	t := cfg.TrustFor(env)
	if t == nil {
		return nil, nil
	}
	v, err := t.Verifier()
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(entries))
	byDigest := map[v1.Hash]map[v1.Hash]time.Time{}
	for i, e := range entries {
		signed, ok := byDigest[e.Digest]
		if !ok {
			if signed, err = h.SignedRecords(ctx, e.Digest, v, time.Now()); err != nil {
				return nil, err
			}
			byDigest[e.Digest] = signed
		}
		_, out[i] = signed[e.statement.Digest]
	}
	return out, nil
}

// sourceDigest reads --digest: REPOSITORY@sha256:…, or sha256:… in the
// repository of the environment's gates.from. A list (slipway push's refs
// output, one per destination) gives the one in gates.from's repository if
// there is one, else the first.
func sourceDigest(cfg *Config, to *Environment, s string, plainHTTP []string) (name.Digest, error) {
	refs := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' })
	if len(refs) == 0 {
		return name.Digest{}, fmt.Errorf("--digest is empty")
	}
	var parsed []name.Digest
	for _, ref := range refs {
		d, err := parseDigest(cfg, to, ref, plainHTTP)
		if err != nil {
			return name.Digest{}, err
		}
		parsed = append(parsed, d)
	}
	if from := to.Gates.From; from != "" {
		for _, d := range parsed {
			if r, err := registry.ParseRepository(cfg.Environments[from].Repository, plainHTTP); err == nil && d.Context().Name() == r.Name() {
				return d, nil
			}
		}
	}
	return parsed[0], nil
}

func parseDigest(cfg *Config, to *Environment, s string, plainHTTP []string) (name.Digest, error) {
	if strings.HasPrefix(s, "sha256:") {
		if to.Gates.From == "" {
			return name.Digest{}, fmt.Errorf("--digest %s: name its repository (REPOSITORY@sha256:…); %s has no gates.from to find it in", s, to.Name)
		}
		s = cfg.Environments[to.Gates.From].Repository + "@" + s
	}
	repoPart, dig, ok := strings.Cut(s, "@")
	if !ok {
		return name.Digest{}, fmt.Errorf("--digest %s: give REPOSITORY@sha256:…; a promotion moves a digest, never a tag", s)
	}
	repo, err := registry.ParseRepository(repoPart, plainHTTP)
	if err != nil {
		return name.Digest{}, fmt.Errorf("--digest %s: %w", s, err)
	}
	d := repo.Digest(dig)
	if _, err := name.NewDigest(d.String()); err != nil {
		return name.Digest{}, fmt.Errorf("--digest %s: %w", s, err)
	}
	return d, nil
}

// report hands the result to the platform: outputs and the summary.
func report(p ci.Platform, res *Result, changes *gitops.Result) error {
	outputs := [][2]string{
		{"digest", res.Digest.String()},
		{"refs", res.Repository.Digest(res.Digest.String()).String()},
		{"tags", strings.Join(res.Tags, ",")},
		{"environment", res.Environment},
	}
	if res.Entry != nil {
		outputs = append(outputs, [2]string{"record", res.Entry.Ref.String()})
	}
	if changes != nil {
		files := map[string]bool{}
		var list []string
		for _, c := range changes.Changes {
			if !files[c.File] {
				files[c.File] = true
				list = append(list, c.File)
			}
		}
		outputs = append(outputs, [2]string{"manifests", strings.Join(list, ",")})
	}
	for _, o := range outputs {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	return p.WriteSummary(Summary(res, changes, nil))
}

// History runs slipway history.
func (c Command) History(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway history", flag.ContinueOnError)
	var hf common
	hf.register(fs)
	asJSON := fs.Bool("json", false, "print the records as JSON, one per line, oldest first")
	// The environment may come before the flags: slipway history production --json.
	args := env.Args
	var envName string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		envName, args = args[0], args[1:]
	}
	env.Args = args
	if done, err := cli.ParseFlags(fs, env, "history", historyUsage); done {
		return err
	}
	rest := fs.Args()
	if envName == "" && len(rest) > 0 {
		envName, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return cli.Usagef("unexpected arguments %s", strings.Join(rest, " "))
	}
	p := ci.Detect(ci.Options{Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "history"})
	err := c.history(ctx, env, p, &hf, envName, *asJSON)
	if err == nil {
		return nil
	}
	return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway history", err)}
}

func (c Command) history(ctx context.Context, env cli.Env, p ci.Platform, hf *common, envName string, asJSON bool) error {
	cfg, err := LoadConfig(env.Resolve(hf.config))
	if err != nil {
		return cli.Usage(err)
	}
	if envName == "" {
		return cli.Usagef("no environment: give one of %s", strings.Join(cfg.Names(), ", "))
	}
	target, err := cfg.Environment(envName)
	if err != nil {
		return cli.Usage(err)
	}
	repo, err := registry.ParseRepository(target.Repository, hf.reg.PlainHTTP.Values)
	if err != nil {
		return cli.Usage(err)
	}
	client, err := hf.client(env, p, repo.RegistryStr())
	if err != nil {
		return err
	}
	o := Options{Registry: client}
	if err := o.defaults(); err != nil {
		return err
	}
	h, err := o.history(ctx, target, false)
	if err != nil {
		return err
	}
	entries, err := h.Entries(ctx)
	if err != nil {
		return err
	}
	recs := make([]*Record, len(entries))
	for i, e := range entries {
		if recs[i], err = h.Record(ctx, e); err != nil {
			return err
		}
	}
	signed, err := signedEntries(ctx, cfg, target, h, entries)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONLines(p.Stdout(), entries, recs, signed)
	}
	if len(entries) == 0 {
		fmt.Fprintf(p.Stdout(), "%s (%s) has no promotions yet\n", target.Name, repo)
		return nil
	}
	fmt.Fprint(p.Stdout(), HistoryTable(target.Name, repo.String(), entries, recs).Text())
	var unsigned []string
	for i, ok := range signed {
		if !ok {
			unsigned = append(unsigned, fmt.Sprintf("#%d", entries[i].Sequence))
		}
	}
	if len(unsigned) > 0 {
		fmt.Fprintf(p.Stdout(), "not signed by a trusted identity (no evidence for from, soak or --rollback): %s\n", strings.Join(unsigned, ", "))
	}
	return nil
}
