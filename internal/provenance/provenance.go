// Package provenance writes SLSA provenance v1 for what slipway built:
// an in-toto statement whose subjects are the image's index and platform
// manifests and the binaries, and whose predicate says how they were made
// (slipway's build type, the parameters the run was given), from what
// (the source at its commit, the Go toolchain, the base image and every Go
// module linked into the binaries) and by whom (the CI workflow, the run).
// Everything comes from dist/slipway.json, the binaries' build info and
// the CI platform's environment.
package provenance

import (
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/sign"
)

// PredicateType is SLSA provenance v1.
const PredicateType = sign.SLSAProvenancePredicate

// BuildType names slipway's build: what externalParameters and
// resolvedDependencies mean.
const BuildType = "https://slipway.dev/provenance/buildtypes/go-image/v1"

// LocalBuilder is the builder id of a run outside CI, which vouches for
// nothing but that.
const LocalBuilder = "https://slipway.dev/provenance/builders/local"

// Input is what the provenance describes.
type Input struct {
	// Record is the build's record; Dir its directory, against which the
	// record's paths are read.
	Record *record.Record
	Dir    string
	// Getenv reads the CI environment.
	Getenv func(string) string
	// Info is the CI platform's description of the run.
	Info ci.Info
	// Flags are the parameters the run was given that shape its output
	// (e.g. "platforms", "base", "ldflags"), recorded as given.
	Flags map[string]string
	// Started and Finished bound the build; Finished defaults to now.
	Started, Finished time.Time
}

// Provenance is the SLSA v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is how the build was asked for.
type BuildDefinition struct {
	BuildType            string             `json:"buildType"`
	ExternalParameters   ExternalParameters `json:"externalParameters"`
	InternalParameters   map[string]string  `json:"internalParameters,omitempty"`
	ResolvedDependencies []ResourceDesc     `json:"resolvedDependencies"`
}

// ExternalParameters are the inputs a consumer should check: where the
// source came from and what the run was told to build.
type ExternalParameters struct {
	Repository string            `json:"repository,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	Workflow   *Workflow         `json:"workflow,omitempty"`
	Module     string            `json:"module"`
	Version    string            `json:"version,omitempty"`
	Platforms  []string          `json:"platforms"`
	Flags      map[string]string `json:"flags,omitempty"`
}

// Workflow is the CI definition that ran the build.
type Workflow struct {
	Repository string `json:"repository,omitempty"`
	Path       string `json:"path"`
	Ref        string `json:"ref,omitempty"`
}

// ResourceDesc is an in-toto ResourceDescriptor.
type ResourceDesc struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// RunDetails is who ran the build, and when.
type RunDetails struct {
	Builder  Builder  `json:"builder"`
	Metadata Metadata `json:"metadata"`
}

// Builder is the trusted party that ran the build.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata identifies the run.
type Metadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Statement returns the provenance as an in-toto statement about the
// image's index and platform manifests and the binaries, checked against
// SLSA v1's shape.
func Statement(in Input) ([]byte, error) {
	p, err := New(in)
	if err != nil {
		return nil, err
	}
	subjects, err := Subjects(in.Record)
	if err != nil {
		return nil, err
	}
	st, err := sign.NewStatement(PredicateType, p, subjects...)
	if err != nil {
		return nil, err
	}
	if err := Validate(st); err != nil {
		return nil, fmt.Errorf("checking the provenance: %w", err)
	}
	return st, nil
}

// Subjects lists what the provenance is about: the image index and each
// platform's manifest (named as the layout names the image), and each
// binary (named by its path in the record's directory).
func Subjects(r *record.Record) ([]sign.Subject, error) {
	var out []sign.Subject
	add := func(name, digest string) error {
		alg, hexd, ok := strings.Cut(digest, ":")
		if !ok {
			alg, hexd = "sha256", digest
		}
		if b, err := hex.DecodeString(hexd); err != nil || alg != "sha256" || len(b) != 32 {
			return fmt.Errorf("reading the record: %s has no sha256 digest (%q)", name, digest)
		}
		out = append(out, sign.Subject{Name: name, Digest: map[string]string{"sha256": hexd}})
		return nil
	}
	if img := r.Image; img != nil {
		name := img.Ref
		if name == "" {
			name = r.Module
		}
		if err := add(name, img.Digest); err != nil {
			return nil, err
		}
		for _, p := range img.Platforms {
			if err := add(name+" ("+p.Platform+")", p.Digest); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range r.Artifacts {
		if err := add(a.Path, a.SHA256); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("reading the record: no image and no binaries to describe")
	}
	return out, nil
}

// New builds the predicate.
func New(in Input) (*Provenance, error) {
	r := in.Record
	if r == nil {
		return nil, errors.New("provenance needs the build's record")
	}
	get := in.Getenv
	if get == nil {
		get = func(string) string { return "" }
	}
	finished := in.Finished
	if finished.IsZero() {
		finished = time.Now()
	}
	run := describeRun(in.Info, get)
	p := &Provenance{
		BuildDefinition: BuildDefinition{
			BuildType: BuildType,
			ExternalParameters: ExternalParameters{
				Repository: run.repoURL,
				Ref:        in.Info.Ref,
				Workflow:   run.workflow,
				Module:     r.Module,
				Version:    r.Version,
				Platforms:  platforms(r),
				Flags:      in.Flags,
			},
			InternalParameters: map[string]string{"slipway": r.Slipway, "ci": in.Info.Platform},
		},
		RunDetails: RunDetails{
			Builder:  Builder{ID: run.builder},
			Metadata: Metadata{InvocationID: run.invocation, FinishedOn: finished.UTC().Format(time.RFC3339)},
		},
	}
	if !in.Started.IsZero() {
		p.RunDetails.Metadata.StartedOn = in.Started.UTC().Format(time.RFC3339)
	}
	if r.Slipway != "" {
		p.RunDetails.Builder.Version = map[string]string{"slipway": r.Slipway}
	}
	deps, err := dependencies(in, run)
	if err != nil {
		return nil, err
	}
	p.BuildDefinition.ResolvedDependencies = deps
	return p, nil
}

// run is what the CI platform says about who ran the build.
type run struct {
	repoURL    string // https://github.com/owner/repo
	workflow   *Workflow
	builder    string
	invocation string
}

// describeRun reads the platform's variables. The builder ids are the
// identities Fulcio certifies for the same job (the workflow file at its
// ref on GitHub, the pipeline definition on GitLab), so a verifier can
// hold the provenance's builder to the signer's certificate.
func describeRun(info ci.Info, get func(string) string) run {
	switch info.Platform {
	case "github":
		server := strings.TrimSuffix(get("GITHUB_SERVER_URL"), "/")
		if server == "" {
			server = "https://github.com"
		}
		r := run{invocation: info.RunURL}
		if info.Repository != "" {
			r.repoURL = server + "/" + info.Repository
		}
		if a := get("GITHUB_RUN_ATTEMPT"); a != "" && r.invocation != "" {
			r.invocation += "/attempts/" + a
		}
		// GITHUB_WORKFLOW_REF is owner/repo/.github/workflows/file.yml@ref.
		if wref := get("GITHUB_WORKFLOW_REF"); wref != "" {
			r.builder = server + "/" + wref
			path, ref, _ := strings.Cut(strings.TrimPrefix(wref, info.Repository+"/"), "@")
			r.workflow = &Workflow{Repository: r.repoURL, Path: path, Ref: ref}
		}
		if r.builder == "" {
			r.builder = server + "/" + info.Repository + "/actions"
		}
		return r
	case "gitlab":
		r := run{repoURL: get("CI_PROJECT_URL"), invocation: info.RunURL}
		host := get("CI_SERVER_HOST")
		cfg := get("CI_CONFIG_PATH")
		if cfg == "" {
			cfg = ".gitlab-ci.yml"
		}
		if host != "" && info.Repository != "" {
			// Fulcio's GitLab identity: the ci_config_ref_uri claim.
			r.builder = "https://" + host + "/" + info.Repository + "//" + cfg + "@" + info.Ref
		}
		r.workflow = &Workflow{Repository: r.repoURL, Path: cfg, Ref: info.Ref}
		if r.builder == "" {
			r.builder = r.repoURL + "/-/pipelines"
		}
		return r
	}
	return run{builder: LocalBuilder}
}

func platforms(r *record.Record) []string {
	seen := map[string]bool{}
	var out []string
	if r.Image != nil {
		for _, p := range r.Image.Platforms {
			if !seen[p.Platform] {
				seen[p.Platform] = true
				out = append(out, p.Platform)
			}
		}
	}
	for _, a := range r.Artifacts {
		if !seen[a.Platform] {
			seen[a.Platform] = true
			out = append(out, a.Platform)
		}
	}
	sort.Strings(out)
	return out
}

// dependencies lists the source at its commit, the Go toolchain, the
// base image by digest and every module the binaries link, as their
// build info records it (a module replaced by another is listed as the
// replacement, which is what was linked).
func dependencies(in Input, run run) ([]ResourceDesc, error) {
	r := in.Record
	var deps []ResourceDesc
	if run.repoURL != "" && r.Commit != "" {
		src := ResourceDesc{URI: "git+" + run.repoURL, Digest: map[string]string{"gitCommit": r.Commit}}
		if in.Info.Ref != "" {
			src.URI += "@" + in.Info.Ref
		}
		deps = append(deps, src)
	} else if r.Commit != "" {
		deps = append(deps, ResourceDesc{Name: r.Module, Digest: map[string]string{"gitCommit": r.Commit}})
	}
	if r.GoVersion != "" {
		deps = append(deps, ResourceDesc{Name: "go", URI: "https://go.dev/dl/" + r.GoVersion})
	}
	if img := r.Image; img != nil && img.BaseDigest != "" {
		alg, hexd, _ := strings.Cut(img.BaseDigest, ":")
		deps = append(deps, ResourceDesc{Name: "base image", URI: img.Base, Digest: map[string]string{alg: hexd}})
	}
	mods, err := modules(in)
	if err != nil {
		return nil, err
	}
	return append(deps, mods...), nil
}

func modules(in Input) ([]ResourceDesc, error) {
	seen := map[string]ResourceDesc{}
	for _, a := range in.Record.Artifacts {
		path := filepath.Join(in.Dir, filepath.FromSlash(a.Path))
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the build info of %s: %w", a.Path, err)
		}
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			d := ResourceDesc{Name: m.Path, URI: "pkg:golang/" + m.Path + "@" + m.Version}
			if m.Version == "" || strings.HasPrefix(m.Path, ".") || strings.HasPrefix(m.Path, "/") {
				// A replacement by a local directory has no version or sum.
				d.URI = ""
			}
			if h, ok := goModuleH1(m.Sum); ok {
				d.Digest = map[string]string{"goModuleH1": h}
			}
			seen[d.Name+"@"+m.Version] = d
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ResourceDesc, 0, len(keys))
	for _, k := range keys {
		out = append(out, seen[k])
	}
	return out, nil
}

// goModuleH1 turns go.sum's "h1:<base64>" into the hex the in-toto digest
// set's goModuleH1 holds.
func goModuleH1(sum string) (string, bool) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != 32 {
		return "", false
	}
	return hex.EncodeToString(b), true
}
