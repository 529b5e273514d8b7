package promote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/push"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/trust"
	"github.com/slipwayci/slipway/internal/version"
)

// Options configure Promote and Rollback.
type Options struct {
	Config *Config
	// To is the environment to promote into.
	To *Environment
	// Source is the image to promote, repository@digest; Promote only.
	Source name.Digest
	// PlatformManifest allows Source to be one platform's manifest of an
	// index pushed with it, which is otherwise refused.
	PlatformManifest bool
	DryRun           bool
	Eval             EvalOptions
	// RunURL and Actor go into the record.
	RunURL, Actor string

	// Registry reaches the registries: credentials, transport, retries.
	// Nil means anonymous, with no retries.
	Registry *registry.Client
	Jobs     int
	Progress registry.Progress
	// Settle is how long an append waits before its last check
	// (DefaultSettle if zero).
	Settle time.Duration
	// Signer, if set, signs each record appended, so that environments
	// whose trust: names it count the promotion (from, soak).
	Signer *sign.Signer
}

// Result is what a promotion or rollback did, or would do.
type Result struct {
	Environment string
	Repository  name.Repository
	Digest      v1.Hash
	Source      string
	Verdicts    []Verdict
	// Copy is the copy into the environment's repository; nil for a
	// rollback or a dry run.
	Copy *push.Result
	// Record is the record appended, with its manifest digest in Entry;
	// both nil when the digest was in place already.
	Record *Record
	Entry  *Entry
	// Current is the head of the history when the promotion ended.
	Current *Entry
	Tags    []string
	DryRun  bool
	// Rollback is set for a rollback, with Undone the record undone.
	Rollback bool
	Undone   *Entry
	// Races is how many times another promotion of the environment got
	// to its head first and this one appended again.
	Races int
}

// Refused is the error when a gate refuses: exit code 3.
type Refused struct{ Failing []Verdict }

func (r *Refused) Error() string {
	names := make([]string, len(r.Failing))
	for i, v := range r.Failing {
		names[i] = v.Gate
	}
	return fmt.Sprintf("%d gate(s) refused the promotion: %s", len(names), strings.Join(names, ", "))
}

// ExitCode is 3, a policy refusal.
func (r *Refused) ExitCode() int { return 3 }

func (o *Options) defaults() error {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Registry == nil {
		c, err := registry.New(registry.Options{})
		if err != nil {
			return err
		}
		o.Registry = c
	}
	if o.Eval.Now == nil {
		o.Eval.Now = time.Now
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	return nil
}

func (o *Options) dial(ctx context.Context, repo name.Repository, write bool) (*registry.Repository, error) {
	return o.Registry.Dial(ctx, repo, registry.DialOptions{
		Push: write, Settle: min(o.Settle, 200*time.Millisecond),
		OnRetry: func(op string, err error, wait time.Duration) {
			if o.Progress != nil {
				o.Progress.Retry(repo, op, err, wait)
			}
		},
	})
}

// history opens env's history in its repository.
func (o *Options) history(ctx context.Context, env *Environment, write bool) (*History, error) {
	repo, err := o.Registry.ParseRepository(env.Repository)
	if err != nil {
		return nil, err
	}
	r, err := o.dial(ctx, repo, write)
	if err != nil {
		return nil, err
	}
	h := NewHistory(r, env.Name)
	h.Now, h.Settle = o.Eval.Now, o.Settle
	return h, nil
}

// Promote promotes o.Source into o.To: it evaluates the gates against the
// evidence attached to the digest, and if they all pass (and this is no
// dry run) copies the image with its referrers into the environment's
// repository, appends a record to the environment's history and moves the
// environment's tags to the digest. A refusal is a *Refused error, with
// the result describing every verdict.
func Promote(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	env := o.To
	dst, err := o.Registry.ParseRepository(env.Repository)
	if err != nil {
		return nil, err
	}
	digest, err := v1.NewHash(o.Source.DigestStr())
	if err != nil {
		return nil, err
	}
	srcRepo := o.Source.Context()
	// The evidence is what the from environment's repository holds: a
	// digest named in another repository, with whatever its owner
	// attached there, would otherwise bring its own evidence along. So the
	// digest is read, evidence and all, from there.
	var fromRepo *name.Repository
	if from := env.Gates.From; from != "" {
		fe, err := o.Config.Environment(from)
		if err != nil {
			return nil, err
		}
		fr, err := o.Registry.ParseRepository(fe.Repository)
		if err != nil {
			return nil, err
		}
		if fr.Name() != srcRepo.Name() {
			fromRepo = &fr
		}
	}
	var verifier *trust.Verifier
	if t := o.Config.TrustFor(env); t != nil {
		if verifier, err = t.Verifier(); err != nil {
			return nil, err
		}
		o.Eval.Trusted = true
	}
	res := &Result{Environment: env.Name, Repository: dst, Digest: digest, Source: o.Source.String(), DryRun: o.DryRun}

	if fromRepo != nil {
		src, err := o.dial(ctx, *fromRepo, false)
		if err != nil {
			return nil, err
		}
		if _, _, found, err := src.Manifest(ctx, digest.String()); err != nil {
			return nil, err
		} else if !found {
			v := Verdict{Gate: "from", Detail: fmt.Sprintf("the digest was never promoted to %s: it is not in %s's repository %s", env.Gates.From, env.Gates.From, *fromRepo)}
			res.Verdicts = []Verdict{v}
			return res, &Refused{Failing: res.Verdicts}
		}
		srcRepo = *fromRepo
		res.Source = srcRepo.Digest(digest.String()).String()
	}
	src, err := o.dial(ctx, srcRepo, false)
	if err != nil {
		return nil, err
	}
	img, err := readImage(ctx, src, digest)
	if err != nil {
		return nil, err
	}
	var par *parent
	if len(img.manifests) == 1 {
		if par, err = findParent(ctx, src, digest, img.annotations); err != nil {
			return nil, err
		}
		if par != nil && !o.PlatformManifest {
			return nil, refusePlatformManifest(srcRepo.String(), digest, par)
		}
	}
	ev := o.evidence(src, digest, img, verifier)
	if res.Verdicts, err = Evaluate(ctx, env, ev, o.Eval); err != nil {
		return nil, err
	}
	if par != nil {
		explainScan(ctx, ev, digest, par, res.Verdicts)
	}
	if res.Tags, err = renderTags(env, digest, img.annotations); err != nil {
		return nil, err
	}
	if !Passed(res.Verdicts) {
		var failing []Verdict
		for _, v := range res.Verdicts {
			if !v.Pass {
				failing = append(failing, v)
			}
		}
		return res, &Refused{Failing: failing}
	}
	if o.DryRun {
		return res, nil
	}

	results, err := push.Push(ctx, push.Options{
		From: &srcRepo, Digest: digest, To: []name.Repository{dst},
		Registry: o.Registry, Jobs: o.Jobs, Progress: o.Progress,
		Keep: keepVerified(verifier),
	})
	if len(results) == 1 {
		res.Copy = &results[0]
	}
	if err != nil {
		return res, err
	}
	h, err := o.history(ctx, env, true)
	if err != nil {
		return res, err
	}
	defer func() { res.Races = int(h.Races.Load()) }()
	res.Entry, err = h.Append(ctx, func(ctx context.Context, head *Entry) (*Record, error) {
		if head != nil && head.Digest == digest {
			return nil, nil
		}
		res.Record = &Record{
			Repository: dst.String(), Digest: digest.String(), From: env.Gates.From, Source: res.Source,
			Tags: res.Tags, Gates: append([]Verdict{}, res.Verdicts...), RunURL: o.RunURL, Actor: o.Actor,
			ApprovedBy: o.Eval.ApprovedBy, Slipway: version.String(),
		}
		return res.Record, nil
	})
	if err != nil {
		return res, err
	}
	if res.Entry == nil {
		res.Record = nil
	}
	if err := o.signRecord(ctx, h, res.Entry); err != nil {
		return res, err
	}
	res.Current, err = h.Head(ctx)
	return res, err
}

// keepVerified is what a promotion under trust copies on: only signature
// bundles that verify under v and are about the manifest they refer to.
// Unsigned statements, SBOMs and forged or foreign bundles stay behind,
// so the next environment never inherits them. Without trust (v nil)
// everything is copied, as before.
func keepVerified(v *trust.Verifier) func(context.Context, push.Referrer) (bool, error) {
	if v == nil {
		return nil
	}
	return func(ctx context.Context, r push.Referrer) (bool, error) {
		if r.ArtifactType != sign.BundleMediaType {
			return false, nil
		}
		data, err := r.Blob(ctx, sign.BundleMediaType)
		if err != nil || data == nil {
			return false, err
		}
		_, err = v.Verify(data, trust.Expect{Digest: r.Subject})
		var te *trust.Error
		if errors.As(err, &te) {
			return false, nil
		}
		return err == nil, err
	}
}

// signRecord signs the statement of the record e and attaches the bundle
// to the digest it is about, beside the record. A record that was
// appended and could not be signed stays in the history, unsigned: it
// counts where no trust: asks for signed records.
func (o *Options) signRecord(ctx context.Context, h *History, e *Entry) error {
	if o.Signer == nil || e == nil {
		return nil
	}
	st, err := h.repo.Blob(ctx, e.statement.Digest, 1<<20)
	if err != nil {
		return fmt.Errorf("reading record %s to sign it: %w", e.Ref, err)
	}
	b, err := o.Signer.Sign(ctx, st)
	if err != nil {
		return fmt.Errorf("signing record %s: %w", e.Ref, err)
	}
	raw, mt, found, err := h.repo.Manifest(ctx, e.Digest.String())
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("signing record %s: %s is not in %s", e.Ref, e.Digest, h.repo.Name())
	}
	attach := sign.AttachFunc(func(ctx context.Context, subject v1.Descriptor, data []byte, mediaType, artifactType string, ann map[string]string) (v1.Descriptor, error) {
		return h.repo.Attach(ctx, subject, registry.Artifact{Data: data, MediaType: mediaType, ArtifactType: artifactType, Annotations: ann})
	})
	_, err = sign.Publish(ctx, attach, v1.Descriptor{MediaType: mt, Digest: e.Digest, Size: int64(len(raw))}, b, o.Eval.Now())
	return err
}

// evidence reads what the gates need about the image digest in src, and
// the histories of the environments it names.
func (o *Options) evidence(src *registry.Repository, digest v1.Hash, img *image, verifier *trust.Verifier) *registryEvidence {
	histories := map[string]*History{}
	return &registryEvidence{src: src, digest: digest, manifests: img.manifests, platforms: img.platforms,
		verifier: verifier, now: o.Eval.Now,
		history: func(ctx context.Context, name string) (*History, error) {
			if h, ok := histories[name]; ok {
				return h, nil
			}
			e, err := o.Config.Environment(name)
			if err != nil {
				return nil, err
			}
			h, err := o.history(ctx, e, false)
			histories[name] = h
			return h, err
		}}
}

// Rollback points o.To's tags back at the digest of the promotion in
// effect before the current one, as its history says, and records that.
func Rollback(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	env := o.To
	h, err := o.history(ctx, env, !o.DryRun)
	if err != nil {
		return nil, err
	}
	res := &Result{Environment: env.Name, Repository: h.repo.Name(), DryRun: o.DryRun, Rollback: true}
	var verifier *trust.Verifier
	if o.Config != nil {
		if t := o.Config.TrustFor(env); t != nil {
			if verifier, err = t.Verifier(); err != nil {
				return nil, err
			}
		}
	}
	plan := func(ctx context.Context, head *Entry) (*Record, error) {
		if head == nil {
			return nil, fault.Invalidf("nothing to roll back: %s has no promotions yet", env.Name)
		}
		var c counts
		var records *signedRecords
		if verifier != nil {
			records = h.signedBy(verifier, o.Eval.Now())
			c = records.signs
		}
		eff, err := h.inEffect(ctx, head, 2, c)
		if err != nil {
			return nil, err
		}
		if len(eff) < 2 {
			return nil, fault.Invalidf("nothing to roll back to: %s has one promotion in effect (%s)", env.Name, head.Digest)
		}
		cur, prev := eff[0], eff[1]
		if records != nil {
			// Under trust:, only a promotion a trusted identity recorded
			// is one to return to: anyone who can push here can append.
			signed, err := records.signs(ctx, prev)
			if err != nil {
				return nil, err
			}
			if !signed {
				return nil, &Refused{Failing: []Verdict{{Gate: "rollback", Evidence: prev.Ref.String(),
					Detail: fmt.Sprintf("the record of %s (#%d) that it would return to is not signed by a trusted identity", prev.Digest, prev.Sequence)}}}
			}
		}
		img, err := readImage(ctx, h.repo, prev.Digest)
		if err != nil {
			return nil, fmt.Errorf("rolling back to %s: %w", prev.Digest, err)
		}
		tags, err := renderTags(env, prev.Digest, img.annotations)
		if err != nil {
			return nil, err
		}
		res.Digest, res.Tags, res.Undone = prev.Digest, tags, cur
		res.Record = &Record{
			Repository: h.repo.Name().String(), Digest: prev.Digest.String(), Tags: tags,
			Rollback: true, Undoes: cur.Ref.String(), Gates: []Verdict{},
			RunURL: o.RunURL, Actor: o.Actor, ApprovedBy: o.Eval.ApprovedBy, Slipway: version.String(),
		}
		return res.Record, nil
	}
	if o.DryRun {
		head, err := h.Head(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := plan(ctx, head); err != nil {
			return res, err
		}
		res.Current = head
		return res, nil
	}
	res.Entry, err = h.Append(ctx, plan)
	res.Races = int(h.Races.Load())
	if err != nil {
		return res, err
	}
	if err := o.signRecord(ctx, h, res.Entry); err != nil {
		return res, err
	}
	res.Current, err = h.Head(ctx)
	return res, err
}

// Repair makes env's tags agree with its history's head, as the end of
// every promotion does; for a promotion that was killed halfway.
func Repair(ctx context.Context, o Options) (*Entry, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	h, err := o.history(ctx, o.To, true)
	if err != nil {
		return nil, err
	}
	return h.Converge(ctx)
}

// image is what the promotion reads of the image itself.
type image struct {
	manifests   []v1.Hash       // the image, then the manifests it lists
	platforms   []v1.Descriptor // what a scan must cover: each platform's image, or the image
	annotations map[string]string
}

func readImage(ctx context.Context, r *registry.Repository, d v1.Hash) (*image, error) {
	raw, mt, found, err := r.Manifest(ctx, d.String())
	if err != nil {
		return nil, err
	}
	if !found {
		// The digest names content: it will never appear by retrying.
		return nil, fault.Invalidf("%s@%s does not exist; check the digest (slipway push prints it, and its digest output holds it)", r.Name(), d)
	}
	img := &image{manifests: []v1.Hash{d}}
	if mt.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("reading %s@%s: %w", r.Name(), d, err)
		}
		for _, m := range idx.Manifests {
			img.manifests = append(img.manifests, m.Digest)
			// Attestation manifests ride along as unknown/unknown.
			if m.MediaType.IsImage() && (m.Platform == nil || m.Platform.OS != "unknown") {
				img.platforms = append(img.platforms, m)
			}
		}
		img.annotations = idx.Annotations
	} else {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("reading %s@%s: %w", r.Name(), d, err)
		}
		img.annotations = m.Annotations
		img.platforms = []v1.Descriptor{{MediaType: mt, Digest: d}}
	}
	return img, nil
}

// TagData is what an environment's tag templates may use.
type TagData struct {
	Environment string
	Digest      string // sha256:…
	ShortDigest string // the first 12 hex digits
	// From the image's OCI annotations, as slipway image writes them.
	Version, Revision, Created, Source string
}

// renderTags expands env's tag templates for the image.
func renderTags(env *Environment, d v1.Hash, ann map[string]string) ([]string, error) {
	data := TagData{
		Environment: env.Name, Digest: d.String(), ShortDigest: d.Hex[:12],
		Version:  ann["org.opencontainers.image.version"],
		Revision: ann["org.opencontainers.image.revision"],
		Created:  ann["org.opencontainers.image.created"],
		Source:   ann["org.opencontainers.image.source"],
	}
	var out []string
	for _, t := range env.Tags {
		tmpl, err := template.New("tag").Option("missingkey=error").Parse(t)
		if err != nil {
			return nil, templateError(t, err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, templateError(t, err)
		}
		// Rendered values are sanitised as push sanitises its tags:
		// 1.2.3+dirty becomes 1.2.3-dirty, feature/x becomes feature-x.
		tag := push.SanitizeTag(b.String())
		if !tagName.MatchString(tag) {
			return nil, fmt.Errorf("tag template %q gives %q for %s, which is not a valid tag", t, tag, d)
		}
		out = append(out, tag)
	}
	return out, nil
}
