package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/version"
)

const usage = `usage: slipway push --to REPOSITORY [--to REPOSITORY]... [flags]

Publishes the image that slipway image wrote (the OCI layout named in
dist/slipway.json) to each repository: blobs, then manifests, then the
index, then the SBOMs as OCI referrers, and the tags last, so a tag never
names an incomplete image. Blobs already there are skipped, blobs in another
destination on the same registry are mounted, failures are retried, and a
rerun after a failure sends only what is missing.

Tags (--tag, repeatable) use docker/metadata-action's specs, by default:
  type=schedule  type=semver,pattern={{version}}
  type=semver,pattern={{major}}.{{minor}}  type=semver,pattern={{major}}
  type=ref,event=branch  type=ref,event=pr  type=sha
so a tag v1.2.3 gives 1.2.3, 1.2, 1 and latest. A bare value is a raw tag.

--attach FILE[:ARTIFACT_TYPE] attaches a file to the image index as an OCI
referrer, e.g. --attach dist/scan.intoto.json for the scan's evidence,
which slipway promote's scan gate reads. An in-toto statement must name the
image among its subjects.

Credentials: --username with --password-stdin; Docker's config.json
(DOCKER_CONFIG), REGISTRY_AUTH_FILE and credential helpers; GitLab's
CI_REGISTRY_USER/CI_REGISTRY_PASSWORD or CI_JOB_TOKEN for CI_REGISTRY;
GITHUB_TOKEN for ghcr.io. SSL_CERT_FILE adds trusted CAs.

Flags:
`

// Main runs the push step with the given process environment.
func Main(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway push", flag.ContinueOnError)
	var (
		dist          = fs.String("dist", "dist", "`directory` with slipway.json and its image section")
		to            = cli.List{Comma: true}
		tags          cli.List
		flavor        cli.List
		insecure      = cli.List{Comma: true}
		attach        cli.List
		username      = fs.String("username", "", "`user` to log in as, with --password-stdin")
		passwordStdin = fs.Bool("password-stdin", false, "read the password for --username from standard input")
		loginRegistry = fs.String("registry", "", "`registry` --username logs in to (default: the first --to's)")
		sbom          = fs.Bool("sbom", true, "attach the image's SBOMs as OCI referrers")
		scanEvidence  = fs.Bool("scan-evidence", true, "attach DIST/"+ScanStatementFile+", the scan step's evidence, when it is there")
		parallel      = fs.Int("parallel", 4, "uploads at once per destination")
		retries       = fs.Int("retries", DefaultBackoff.Retries, "times a failed request is retried, with backoff")
		dir           = fs.String("dir", ".", "a `directory` in the git checkout, for the branch and tag outside CI")
		dryRun        = fs.Bool("dry-run", false, "print the destinations and tags, push nothing")
	)
	fs.Var(&to, "to", "destination `repository`, e.g. ghcr.io/owner/app (repeatable)")
	fs.Var(&tags, "tag", "tag `spec`, e.g. type=semver,pattern={{major}}.{{minor}} or a raw tag (repeatable)")
	fs.Var(&flavor, "flavor", "metadata-action `flavor`: latest=auto|true|false, prefix=, suffix=, onlatest=")
	fs.Var(&insecure, "insecure", "`registry` that may be reached over plain HTTP or unverified TLS (repeatable)")
	fs.Var(&attach, "attach", "`FILE[:ARTIFACT_TYPE]` to attach to the image index as a referrer, e.g. dist/scan.intoto.json (repeatable)")
	if done, err := cli.ParseFlags(fs, env, "push", usage); done {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %s; destinations go in --to", strings.Join(fs.Args(), " "))
	}
	p, err := ci.Start(fs, ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "push",
	}, func() string { return filepath.Join(*dist, "push-summary.md") })
	if err != nil {
		return cli.Usage(err)
	}
	// From here on a secret may be known: errors go out through the
	// platform's masking stream, not as plain text.
	err = run(ctx, env, p, runOptions{
		dist: env.Resolve(*dist), distArg: *dist, to: to.Values, tags: tags.Values, flavor: flavor.Values,
		insecure: insecure.Values, attach: attach.Values, username: *username, passwordStdin: *passwordStdin, registry: *loginRegistry,
		sbom: *sbom, scanEvidence: *scanEvidence, parallel: *parallel, retries: *retries, dir: env.Resolve(*dir), dryRun: *dryRun,
	})
	if err == nil {
		return nil
	}
	return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway push", err)}
}

type runOptions struct {
	dist, distArg       string
	to, tags, flavor    []string
	insecure, attach    []string
	username, registry  string
	passwordStdin, sbom bool
	scanEvidence        bool
	parallel, retries   int
	dir                 string
	dryRun              bool
}

func run(ctx context.Context, env cli.Env, p ci.Platform, ro runOptions) error {
	if len(ro.to) == 0 {
		return cli.Usagef("no destination: give --to REPOSITORY, e.g. --to ghcr.io/owner/app")
	}
	dests, err := parseDestinations(ro.to, ro.insecure, p.Stderr())
	if err != nil {
		return cli.Usage(err)
	}
	if ro.passwordStdin && ro.username == "" {
		return cli.Usagef("--password-stdin needs --username")
	}
	// Each secret is announced to the platform once (on GitHub, each
	// ::add-mask:: is a line of the log).
	masked := map[string]bool{}
	mask := func(s string) {
		if s != "" && !masked[s] {
			masked[s] = true
			p.Mask(s)
		}
	}
	var password string
	if ro.passwordStdin {
		data, err := io.ReadAll(io.LimitReader(env.Stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("reading the password from standard input: %w", err)
		}
		password = strings.TrimRight(string(data), "\r\n")
		if password == "" {
			return cli.Usagef("--password-stdin: standard input is empty")
		}
		mask(password)
	} else if ro.username != "" {
		return cli.Usagef("--username needs --password-stdin; a password on the command line would show in process lists and logs")
	}
	loginReg := ro.registry
	if loginReg == "" {
		loginReg = dests[0].RegistryStr()
	}

	rec, err := record.Load(ro.dist)
	if err != nil {
		return cli.Usage(err)
	}
	if rec.Image == nil {
		return cli.Usagef("%s has no image section; run slipway image first", filepath.Join(ro.distArg, record.File))
	}
	digest, err := v1.NewHash(rec.Image.Digest)
	if err != nil {
		return fmt.Errorf("reading the record's image digest: %w", err)
	}
	tc, warnings := tagContext(ctx, rec, p.Info(), env.Getenv, ro.dir, needGit(ro.tags))
	for _, w := range warnings {
		p.Annotate(ci.Annotation{Severity: ci.Warning, Title: "slipway push", Message: w})
	}
	tagList, err := Tags(ro.tags, ro.flavor, tc)
	if err != nil {
		return cli.Usage(err)
	}
	if len(tagList) == 0 {
		fmt.Fprintln(p.Stderr(), "note: no tags apply to this run; pushing by digest only")
	}
	var atts []Attachment
	if ro.sbom {
		if atts, err = sbomAttachments(rec, ro.dist); err != nil {
			return err
		}
	}
	named := map[string]bool{}
	for _, a := range ro.attach {
		att, err := fileAttachment(env.Dir, a, digest, rec)
		if err != nil {
			return cli.Usage(err)
		}
		named[att.Path] = true
		atts = append(atts, att)
	}
	// The scan's evidence in dist goes along unasked, so promote's scan
	// gate finds it; one left from a scan of another image is skipped.
	if scan := filepath.Join(ro.dist, ScanStatementFile); ro.scanEvidence && !named[scan] {
		if _, err := os.Stat(scan); err == nil {
			att, err := fileAttachment(env.Dir, scan, digest, rec)
			if err != nil {
				fmt.Fprintf(p.Stderr(), "warning: not attaching %s: %v\n", ScanStatementFile, err)
			} else {
				atts = append(atts, att)
			}
		}
	}
	if ro.dryRun {
		for _, d := range dests {
			fmt.Fprintf(p.Stdout(), "would push %s@%s with %d referrers, tags: %s\n", d, digest, len(atts), strings.Join(tagList, ", "))
		}
		return p.SetOutput("tags", strings.Join(tagList, ","))
	}

	// Go's own roots honour the process's SSL_CERT_FILE, and load it only
	// when a certificate needs checking; a step run with an environment of
	// its own (tests do) needs its file read here.
	ca := env.Getenv("SSL_CERT_FILE")
	if ca == os.Getenv("SSL_CERT_FILE") {
		ca = ""
	}
	rt, err := NewTransport(TransportOptions{CAFile: ca, Insecure: ro.insecure, UserAgent: "slipway/" + version.String()})
	if err != nil {
		return cli.Usage(err)
	}
	keychain := Credentials{Registry: loginReg, Username: ro.username, Password: password, Getenv: env.Getenv, Mask: mask}.Keychain()
	mode := "ci"
	if p.Name() == "local" {
		mode = "log"
		if isTerminal(env.Stderr) {
			mode = "tty"
		}
	}
	b := DefaultBackoff
	b.Retries = max(ro.retries, 0)
	endGroup := p.Group(fmt.Sprintf("slipway push: %s", rec.Image.Digest))
	results, pushErr := Push(ctx, Options{
		Layout:      record.Path(ro.dist, rec.Image.Layout),
		Digest:      digest,
		Attachments: atts,
		To:          dests,
		Tags:        tagList,
		Keychain:    keychain,
		Transport:   rt,
		Jobs:        ro.parallel,
		Backoff:     b,
		MountFrom:   baseRepository(rec.Image.Base),
		Progress:    newPrinter(p.Stderr(), mode),
	})
	endGroup()
	if results == nil {
		return pushErr
	}
	if err := report(p, rec, digest, tagList, results); err != nil {
		return errors.Join(pushErr, err)
	}
	return pushErr
}

// parseDestinations reads repositories, lowercased as registries require
// (a GitHub owner often is not), refusing a tag or digest: tags come from
// --tag.
func parseDestinations(values, insecure []string, warn io.Writer) ([]name.Repository, error) {
	var out []name.Repository
	seen := map[string]bool{}
	for _, v := range values {
		lower := strings.ToLower(v)
		var opts []name.Option
		for _, reg := range insecure {
			if strings.HasPrefix(lower, strings.ToLower(reg)+"/") {
				opts = append(opts, name.Insecure)
			}
		}
		if _, err := name.NewTag(lower, append(opts, name.StrictValidation)...); err == nil || strings.Contains(lower, "@") {
			return nil, fmt.Errorf("--to %s: give a repository without a tag or digest; tags come from --tag", v)
		}
		repo, err := name.NewRepository(lower, opts...)
		if err != nil {
			return nil, fmt.Errorf("--to %s: %w", v, err)
		}
		if lower != v {
			fmt.Fprintf(warn, "note: pushing to %s; repository names are lower case\n", lower)
		}
		if !seen[repo.String()] {
			seen[repo.String()] = true
			out = append(out, repo)
		}
	}
	return out, nil
}

// baseRepository is the base image's repository, if it came from a
// registry: its layers may be mounted rather than uploaded.
func baseRepository(base string) []name.Repository {
	switch {
	case base == "", base == "static", base == "scratch", strings.HasPrefix(base, "oci:"):
		return nil
	}
	ref, err := name.ParseReference(base)
	if err != nil {
		return nil
	}
	return []name.Repository{ref.Context()}
}

// sbomAttachments makes each platform's SBOMs referrers of its manifest,
// checking that the files are still those the image step wrote.
func sbomAttachments(rec *record.Record, dist string) ([]Attachment, error) {
	var out []Attachment
	for _, pi := range rec.Image.Platforms {
		subject, err := v1.NewHash(pi.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading the record's %s digest: %w", pi.Platform, err)
		}
		for _, s := range pi.SBOMs {
			path := filepath.Join(dist, filepath.FromSlash(s.Path))
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("reading SBOM: %w", err)
			}
			if sum := sha256.Sum256(data); s.SHA256 != "" && hex.EncodeToString(sum[:]) != s.SHA256 {
				return nil, fmt.Errorf("SBOM %s changed since slipway image wrote it; run slipway image again", s.Path)
			}
			mt := MediaTypeSPDX
			if strings.HasPrefix(s.Format, "cyclonedx") {
				mt = MediaTypeCycloneDX
			}
			out = append(out, Attachment{
				Path: path, MediaType: mt, Subject: subject,
				Annotations: map[string]string{
					"org.opencontainers.image.created": rec.Date,
					"dev.slipway.sbom.format":          s.Format,
				},
			})
		}
	}
	return out, nil
}

// ScanStatementFile is the scan step's evidence, attached when present.
const ScanStatementFile = "scan.intoto.json"

// fileAttachment reads --attach FILE[:ARTIFACT_TYPE]: the file becomes a
// referrer of the index. Its media type follows its name (or the artifact
// type given); an in-toto statement is checked to be about this image,
// since evidence about another image attached here would be a lie, and
// its predicate type is noted where a reader of referrers can filter on it.
func fileAttachment(dir, spec string, index v1.Hash, rec *record.Record) (Attachment, error) {
	path, at := spec, ""
	if i := strings.LastIndex(spec, ":"); i > 0 && strings.Contains(spec[i+1:], "/") {
		path, at = spec[:i], spec[i+1:]
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Attachment{}, fmt.Errorf("--attach %s: %w", spec, err)
	}
	a := Attachment{Path: path, MediaType: mediaTypeOf(path, at), ArtifactType: at, Subject: index,
		Annotations: map[string]string{"org.opencontainers.image.created": rec.Date}}
	if a.MediaType == MediaTypeInToto {
		pt, err := checkStatement(data, index, rec)
		if err != nil {
			return Attachment{}, fmt.Errorf("--attach %s: %w", spec, err)
		}
		a.Annotations[AnnotationPredicateType] = pt
	}
	return a, nil
}

// AnnotationPredicateType notes an in-toto statement's predicate type on
// its artifact, as cosign and oras do.
const AnnotationPredicateType = "in-toto.io/predicate-type"

func mediaTypeOf(path, artifactType string) string {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(base, ".intoto.json"), strings.HasSuffix(base, ".intoto.jsonl"), artifactType == MediaTypeInToto:
		return MediaTypeInToto
	case strings.HasSuffix(base, ".spdx.json"):
		return MediaTypeSPDX
	case strings.HasSuffix(base, ".cdx.json"), strings.Contains(base, "cyclonedx"):
		return MediaTypeCycloneDX
	case artifactType != "":
		return artifactType
	case strings.HasSuffix(base, ".json"):
		return "application/json"
	}
	return "application/octet-stream"
}

// checkStatement returns the predicate type of an in-toto statement whose
// subjects include the index or one of the record's platform images.
func checkStatement(data []byte, index v1.Hash, rec *record.Record) (string, error) {
	var st struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.PredicateType == "" {
		return "", fmt.Errorf("not an in-toto statement (no predicateType)")
	}
	ours := map[string]bool{index.String(): true}
	for _, p := range rec.Image.Platforms {
		ours[p.Digest] = true
	}
	var named []string
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			if ours[alg+":"+hex] {
				return st.PredicateType, nil
			}
			named = append(named, alg+":"+hex)
		}
	}
	return "", fmt.Errorf("the statement is about %s, not this image (%s); was it made for another build?", strings.Join(named, ", "), index)
}

// report hands the results to the platform: outputs and a summary.
func report(p ci.Platform, rec *record.Record, digest v1.Hash, tags []string, results []Result) error {
	var refs []string
	for _, r := range results {
		if r.Err == nil {
			refs = append(refs, r.Repo.Digest(digest.String()).String())
		}
	}
	for _, o := range [][2]string{
		{"digest", digest.String()},
		{"refs", strings.Join(refs, ",")},
		{"tags", strings.Join(tags, ",")},
	} {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	return p.WriteSummary(Summary(rec, digest, tags, results))
}

// Summary is the push's step summary: one row per destination.
func Summary(rec *record.Record, digest v1.Hash, tags []string, results []Result) *ci.Summary {
	quoted := make([]string, len(tags))
	for i, t := range tags {
		quoted[i] = "`" + t + "`"
	}
	tagLine := "no tags"
	if len(tags) > 0 {
		tagLine = "tags " + strings.Join(quoted, " ")
	}
	s := &ci.Summary{
		Title: fmt.Sprintf("Slipway push: %s %s", rec.Module, rec.Version),
		Lines: []string{fmt.Sprintf("index `%s` · %s", digest, tagLine)},
		Table: ci.Table{Header: []string{"Destination", "Result", "Uploaded", "Existing", "Mounted", "Referrers", "Requests", "Time"}},
	}
	for _, r := range results {
		res := "pushed"
		if r.Err != nil {
			res = "failed: " + oneLine(r.Err)
		}
		existing := fmt.Sprintf("%d (%s)", r.Stats.Existing, cli.HumanSize(r.Stats.ExistingBytes))
		if r.Stats.ImageExisted {
			existing = "whole image"
		}
		refs := map[string]string{"api": "API", "tag": "fallback tag", "": "–"}[r.Referrers]
		s.Table.Rows = append(s.Table.Rows, []string{
			r.Repo.String(), res,
			fmt.Sprintf("%d (%s)", r.Stats.Uploaded, cli.HumanSize(r.Stats.UploadedBytes)),
			existing,
			fmt.Sprintf("%d (%s)", r.Stats.Mounted, cli.HumanSize(r.Stats.MountedBytes)),
			refs, fmt.Sprint(r.Stats.Requests), r.Duration.Round(10_000_000).String(),
		})
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
