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
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/text"
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

Signing (--sign, docs/sign.md): after the referrers and before the tags,
for the index and each platform manifest, the image itself (as cosign
sign signs it), SLSA provenance, the scan's statement and the SBOMs, each a
Sigstore bundle attached as cosign v3 attaches them, so cosign verify and
cosign verify-attestation accept them. Keyless by default where the CI
offers an OIDC token (GitHub's id-token: write, GitLab's id_tokens:
SIGSTORE_ID_TOKEN); --sign KEY signs with a key (COSIGN_PASSWORD decrypts
cosign's key files).

Credentials: --username with --password-stdin; Docker's config.json
(DOCKER_CONFIG), REGISTRY_AUTH_FILE and credential helpers; GitLab's
CI_REGISTRY_USER/CI_REGISTRY_PASSWORD or CI_JOB_TOKEN for CI_REGISTRY;
GITHUB_TOKEN for ghcr.io. SSL_CERT_FILE adds trusted CAs. A registry
without TLS needs --plain-http; --insecure-skip-tls-verify accepts any
certificate but never falls back to plain HTTP.

Flags:
`

// config is slipway push's command line, each flag bound to its field.
type config struct {
	dist                       string
	to, tags, flavor, attach   cli.List
	sbom, scanEvidence, dryRun bool
	parallel                   int
	dir                        string
	reg                        registry.Flags
	signing                    sign.Flags
}

func (c *config) register(fs *flag.FlagSet) {
	c.to.Comma = true
	fs.StringVar(&c.dist, "dist", "dist", "`directory` with slipway.json and its image section")
	fs.Var(&c.to, "to", "destination `repository`, e.g. ghcr.io/owner/app (repeatable)")
	fs.Var(&c.tags, "tag", "tag `spec`, e.g. type=semver,pattern={{major}}.{{minor}} or a raw tag (repeatable)")
	fs.Var(&c.flavor, "flavor", "metadata-action `flavor`: latest=auto|true|false, prefix=, suffix=, onlatest=")
	fs.Var(&c.attach, "attach", "`FILE[:ARTIFACT_TYPE]` to attach to the image index as a referrer, e.g. dist/scan.intoto.json (repeatable)")
	fs.BoolVar(&c.sbom, "sbom", true, "attach the image's SBOMs as OCI referrers")
	fs.BoolVar(&c.scanEvidence, "scan-evidence", true, "attach DIST/"+ScanStatementFile+", the scan step's evidence, when it is there")
	fs.IntVar(&c.parallel, "parallel", 4, "uploads at once per destination")
	fs.StringVar(&c.dir, "dir", ".", "a `directory` in the git checkout, for the branch and tag outside CI")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the destinations and tags, push nothing")
	c.reg.Register(fs, "the first --to's")
	c.signing.Register(fs)
}

// Main runs the push step with the given process environment.
func Main(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway push", flag.ContinueOnError)
	var c config
	c.register(fs)
	if done, err := cli.ParseFlags(fs, env, "push", usage); done {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %s; destinations go in --to", strings.Join(fs.Args(), " "))
	}
	p, err := ci.Start(fs, ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "push",
	}, func() string { return filepath.Join(c.dist, "push-summary.md") })
	if err != nil {
		return cli.Usage(err)
	}
	// From here on a secret may be known: errors go out through the
	// platform's masking stream, not as plain text.
	if err := run(ctx, env, p, &c); err != nil {
		return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway push", err)}
	}
	return nil
}

func run(ctx context.Context, env cli.Env, p ci.Platform, c *config) error {
	if len(c.to.Values) == 0 {
		return cli.Usagef("no destination: give --to REPOSITORY, e.g. --to ghcr.io/owner/app")
	}
	dests, err := parseDestinations(c.to.Values, c.reg.PlainHTTP.Values, p.Stderr())
	if err != nil {
		return cli.Usage(err)
	}
	mode := c.reg.ProgressMode(p.Name(), env.Stderr, true)
	progress := registry.NewProgress(p.Stderr(), mode, "pushing")
	client, err := c.reg.Client(registry.Login{Env: env, Mask: p.Mask, Registry: dests[0].RegistryStr(), Warn: p.Stderr()})
	if err != nil {
		return err
	}
	dist := env.Resolve(c.dist)
	rec, err := record.Load(dist)
	if err != nil {
		return cli.Usage(err)
	}
	if rec.Image == nil {
		return cli.Usagef("%s has no image section; run slipway image first", filepath.Join(c.dist, record.File))
	}
	digest, err := v1.NewHash(rec.Image.Digest)
	if err != nil {
		return fmt.Errorf("reading the record's image digest: %w", err)
	}
	tc, warnings := tagContext(ctx, rec, p.Info(), env.Getenv, env.Resolve(c.dir), needGit(c.tags.Values))
	for _, w := range warnings {
		p.Annotate(ci.Annotation{Severity: ci.Warning, Title: "slipway push", Message: w})
	}
	tagList, err := Tags(c.tags.Values, c.flavor.Values, tc)
	if err != nil {
		return cli.Usage(err)
	}
	if len(tagList) == 0 {
		fmt.Fprintln(p.Stderr(), "note: no tags apply to this run; pushing by digest only")
	}
	var atts []Attachment
	var scanStatement []byte
	if c.sbom {
		if atts, err = sbomAttachments(rec, dist); err != nil {
			return err
		}
	}
	named := map[string]bool{}
	for _, a := range c.attach.Values {
		att, err := fileAttachment(env.Dir, a, digest, rec)
		if err != nil {
			return cli.Usage(err)
		}
		named[att.Path] = true
		atts = append(atts, att)
	}
	// The scan's evidence in dist goes along unasked, so promote's scan
	// gate finds it; one left from a scan of another image is skipped.
	if scan := filepath.Join(dist, ScanStatementFile); c.scanEvidence && !named[scan] {
		if _, err := os.Stat(scan); err == nil {
			att, err := fileAttachment(env.Dir, scan, digest, rec)
			if err != nil {
				fmt.Fprintf(p.Stderr(), "warning: not attaching %s: %v\n", ScanStatementFile, err)
			} else {
				atts = append(atts, att)
				if scanStatement, err = os.ReadFile(scan); err != nil {
					return fmt.Errorf("reading the scan statement: %w", err)
				}
			}
		}
	}
	if c.dryRun {
		for _, d := range dests {
			fmt.Fprintf(p.Stdout(), "would push %s@%s with %d referrers, tags: %s\n", d, digest, len(atts), strings.Join(tagList, ", "))
		}
		return p.SetOutput("tags", strings.Join(tagList, ","))
	}

	signer, err := c.signer(ctx, env, p, rec, dist, scanStatement)
	if err != nil {
		return err
	}

	o := Options{
		Layout:      record.Path(dist, rec.Image.Layout),
		Digest:      digest,
		Attachments: atts,
		To:          dests,
		Tags:        tagList,
		Registry:    client,
		Jobs:        c.parallel,
		MountFrom:   baseRepository(rec.Image.Base),
		Progress:    progress,
	}
	if signer != nil {
		// Not a nil *imageSigner in a non-nil interface.
		o.Sign = signer
	}
	endGroup := p.Group(fmt.Sprintf("slipway push: %s", rec.Image.Digest))
	results, pushErr := Push(ctx, o)
	endGroup()
	if results == nil {
		return pushErr
	}
	if signer != nil && signer.signed != nil {
		fmt.Fprintln(p.Stderr(), signer.describe())
	}
	if err := report(p, rec, digest, tagList, results, signer); err != nil {
		return errors.Join(pushErr, err)
	}
	return pushErr
}

// signer sets up signing as the flags ask, or returns nil when it is off
// (saying why, when the choice was not the user's). The key and the
// token are checked here, before anything is published.
func (c *config) signer(ctx context.Context, env cli.Env, p ci.Platform, rec *record.Record, dist string, scan []byte) (*imageSigner, error) {
	s, notice, trusted, err := c.signing.Setup(ctx, env.Getenv, p.Mask)
	if notice != "" {
		fmt.Fprintln(p.Stderr(), notice)
	}
	if err != nil || s == nil {
		return nil, err
	}
	prov, err := provenance.Statement(provenance.Input{Record: rec, Dir: dist, Getenv: env.Getenv, Info: p.Info()})
	if err != nil {
		return nil, fmt.Errorf("making the provenance: %w", err)
	}
	return &imageSigner{
		signer: s, trusted: trusted, now: time.Now(),
		in: attest.Input{Record: rec, Dir: dist, Provenance: prov, Scan: scan},
	}, nil
}

// parseDestinations reads repositories, lowercased as registries require
// (a GitHub owner often is not), refusing a tag or digest: tags come from
// --tag.
func parseDestinations(values, plainHTTP []string, warn io.Writer) ([]name.Repository, error) {
	var out []name.Repository
	seen := map[string]bool{}
	for _, v := range values {
		lower := strings.ToLower(v)
		if _, err := name.NewTag(lower, name.StrictValidation); err == nil || strings.Contains(lower, "@") {
			return nil, fmt.Errorf("--to %s: give a repository without a tag or digest; tags come from --tag", v)
		}
		repo, err := registry.ParseRepository(lower, plainHTTP)
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
			mt := registry.MediaTypeSPDX
			if strings.HasPrefix(s.Format, "cyclonedx") {
				mt = registry.MediaTypeCycloneDX
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
	if a.MediaType == registry.MediaTypeInToto {
		pt, err := checkStatement(data, index, rec)
		if err != nil {
			return Attachment{}, fmt.Errorf("--attach %s: %w", spec, err)
		}
		a.Annotations[registry.AnnotationPredicateType] = pt
	}
	return a, nil
}

func mediaTypeOf(path, artifactType string) string {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(base, ".intoto.json"), strings.HasSuffix(base, ".intoto.jsonl"), artifactType == registry.MediaTypeInToto:
		return registry.MediaTypeInToto
	case strings.HasSuffix(base, ".spdx.json"):
		return registry.MediaTypeSPDX
	case strings.HasSuffix(base, ".cdx.json"), strings.Contains(base, "cyclonedx"):
		return registry.MediaTypeCycloneDX
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
func report(p ci.Platform, rec *record.Record, digest v1.Hash, tags []string, results []Result, signer *imageSigner) error {
	var refs []string
	for _, r := range results {
		if r.Err == nil {
			refs = append(refs, r.Repo.Digest(digest.String()).String())
		}
	}
	outputs := [][2]string{
		{"digest", digest.String()},
		{"refs", strings.Join(refs, ",")},
		{"tags", strings.Join(tags, ",")},
	}
	if signer != nil && signer.signed != nil {
		outputs = append(outputs, [2]string{"signer", signer.signer.Name()}, [2]string{"signed", strings.Join(signer.predicateTypes(), ",")})
	}
	for _, o := range outputs {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	sum := Summary(rec, digest, tags, results)
	if signer != nil && signer.signed != nil {
		sum.Lines = append(sum.Lines, signer.describe())
	}
	return p.WriteSummary(sum)
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
			res = "failed: " + text.OneLine(r.Err.Error())
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
