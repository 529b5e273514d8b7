package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/registry"
)

// Base names for --base.
const (
	BaseStatic  = "static"
	BaseScratch = "scratch"
)

// base is what the images are built on: one image for each platform it
// offers.
type base struct {
	spec string // as given to --base
	// name and digest fill the base.name and base.digest annotations of
	// the index; digest is the index, or the one image, the base resolved
	// to.
	name   string
	digest string
	// images are what a registry or layout base offers.
	images []baseImage
	// builtin makes the image for any linux platform (static, scratch).
	builtin func(p v1.Platform) (v1.Image, error)
}

type baseImage struct {
	platform v1.Platform
	image    v1.Image
}

// resolveBase finds the base that spec names: static, scratch, oci:DIR with
// an optional :tag or @digest, or an image reference in a registry, read
// through reg.
func resolveBase(ctx context.Context, reg *registry.Client, spec, dir string, cache caches) (*base, error) {
	switch {
	case spec == BaseStatic:
		src, err := staticBaseSource()
		if err != nil {
			return nil, err
		}
		l, _, err := cache.layers.layer(ctx, src)
		if err != nil {
			return nil, err
		}
		return &base{spec: spec, name: BaseStatic, builtin: func(p v1.Platform) (v1.Image, error) {
			return staticImage(p, blobLayer{l})
		}}, nil
	case spec == BaseScratch:
		return &base{spec: spec, builtin: func(p v1.Platform) (v1.Image, error) {
			return ociImage(&v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
		}}, nil
	case strings.HasPrefix(spec, "oci:"):
		return layoutBase(spec, dir)
	}
	b, err := remoteBase(ctx, reg, spec)
	if err != nil {
		return nil, err
	}
	for i := range b.images {
		b.images[i].image = cacheImage(b.images[i].image, cache.blobs)
	}
	return b, nil
}

// ociImage is an empty image with OCI media types and the given config.
func ociImage(cf *v1.ConfigFile) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf.RootFS.Type = "layers"
	return mutate.ConfigFile(img, cf)
}

// staticImage is the static base for one platform: its one layer, the
// nonroot user and the environment distroless/static sets.
func staticImage(p v1.Platform, l v1.Layer) (v1.Image, error) {
	img, err := ociImage(&v1.ConfigFile{
		OS: p.OS, Architecture: p.Architecture, Variant: p.Variant,
		Created: v1.Time{Time: staticEpoch},
		Config: v1.Config{
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=" + CACertsFile,
			},
			User:       NonRoot,
			WorkingDir: "/home/nonroot",
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{
		Created:   v1.Time{Time: staticEpoch},
		CreatedBy: "slipway static base " + StaticVersion,
		Comment:   "users root and nonroot (65532), CA roots from golang.org/x/crypto/x509roots, tzdata " + TZDataVersion,
	}})
}

// remoteBase pulls the index or image spec names from its registry, with
// the credentials, transport and retries every step uses.
func remoteBase(ctx context.Context, reg *registry.Client, spec string) (*base, error) {
	ref, err := reg.ParseReference(spec)
	if err != nil {
		return nil, fault.Optionf("base", "%q is not static, scratch, oci:DIR or an image reference: %v", spec, err)
	}
	desc, err := reg.Get(ctx, ref)
	if err != nil {
		return nil, baseError(spec, err)
	}
	b := &base{spec: spec, name: ref.Name(), digest: desc.Digest.String()}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, baseError(spec, err)
		}
		return b, b.addIndex(idx)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, baseError(spec, err)
	}
	return b, b.addImage(img, nil)
}

// baseError explains a failed pull in one line. A base that is missing or
// refused is a configuration error; a network failure may pass, so it
// stays a plain failure.
func baseError(spec string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fault.Invalidf("pulling base %s: not found; check the name and tag", spec)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fault.Invalidf("pulling base %s: access denied (%d); log in to the registry (docker login, or a username and password) or use a public base", spec, te.StatusCode)
		}
	}
	return fmt.Errorf("pulling base %s: registry unreachable or failing: %w", spec, err)
}

// layoutBase reads oci:DIR, oci:DIR:TAG or oci:DIR@sha256:… from a local
// OCI image layout. Without a tag or digest the layout must hold one
// image or index.
func layoutBase(spec, dir string) (*base, error) {
	path, tag, digest := parseLayoutSpec(strings.TrimPrefix(spec, "oci:"))
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	p, err := layout.FromPath(path)
	if err != nil {
		return nil, fault.Optionf("base", "%s: reading OCI layout: %v", spec, err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, fault.Optionf("base", "%s: reading OCI layout: %v", spec, err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, fault.Optionf("base", "%s: reading OCI layout index.json: %v", spec, err)
	}
	var found []v1.Descriptor
	var refs []string
	for _, d := range im.Manifests {
		ref := d.Annotations[annRefName]
		refs = append(refs, ref)
		switch {
		case digest != "" && d.Digest.String() == digest,
			digest == "" && tag != "" && ref == tag,
			digest == "" && tag == "":
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0 && tag != "":
		return nil, fault.Optionf("base", "%s: no image tagged %q in the layout; it has: %s", spec, tag, strings.Join(refs, ", "))
	case len(found) == 0:
		return nil, fault.Optionf("base", "%s: no image in the layout has that digest", spec)
	case len(found) > 1:
		return nil, fault.Optionf("base", "%s: the layout holds %d images; name one as oci:DIR:TAG or oci:DIR@DIGEST (tags: %s)", spec, len(found), strings.Join(refs, ", "))
	}
	d := found[0]
	b := &base{spec: spec, name: spec, digest: d.Digest.String()}
	switch {
	case d.MediaType.IsIndex():
		idx, err := root.ImageIndex(d.Digest)
		if err != nil {
			return nil, fault.Optionf("base", "%s: %v", spec, err)
		}
		return b, b.addIndex(idx)
	case d.MediaType.IsImage():
		img, err := root.Image(d.Digest)
		if err != nil {
			return nil, fault.Optionf("base", "%s: %v", spec, err)
		}
		return b, b.addImage(img, d.Platform)
	}
	return nil, fault.Optionf("base", "%s: %s is a %s, not an image or index", spec, d.Digest, d.MediaType)
}

// parseLayoutSpec splits DIR[:tag|@digest]. A colon inside the directory
// path is not a tag: the tag is what follows the last colon after the
// last slash.
func parseLayoutSpec(s string) (path, tag, digest string) {
	if i := strings.LastIndex(s, "@"); i >= 0 && strings.Contains(s[i:], ":") {
		return s[:i], "", s[i+1:]
	}
	slash := strings.LastIndex(s, "/")
	if i := strings.LastIndex(s, ":"); i > slash {
		return s[:i], s[i+1:], ""
	}
	return s, "", ""
}

// addIndex adds every image of an index. Attestations (BuildKit's
// provenance manifests) are not platforms and are skipped; an index inside
// the index is refused, as its images' platforms would be ambiguous.
func (b *base) addIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading base %s: %w", b.spec, err)
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			return fault.Invalidf("base %s is an index that holds another index (%s); give the inner one's digest as the base", b.spec, d.Digest)
		case isAttestation(d), !d.MediaType.IsImage():
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("reading base %s: %w", b.spec, err)
		}
		if err := b.addImage(img, d.Platform); err != nil {
			return err
		}
	}
	if len(b.images) == 0 {
		return fault.Invalidf("base %s offers no images", b.spec)
	}
	return nil
}

// addImage adds one image, for the platform its descriptor or else its
// config names.
func (b *base) addImage(img v1.Image, p *v1.Platform) error {
	if p == nil || p.OS == "" {
		cf, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("reading base %s config: %w", b.spec, err)
		}
		p = cf.Platform()
		if p == nil {
			return fault.Invalidf("base %s has an image with no platform in its config", b.spec)
		}
	}
	b.images = append(b.images, baseImage{platform: *p, image: img})
	return nil
}

func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// image returns the base image for p and the platform the built image
// declares (p, with the base's variant when p names none), or false.
func (b *base) image(p v1.Platform) (v1.Image, v1.Platform, bool, error) {
	if b.builtin != nil {
		if p.OS != "linux" {
			return nil, p, false, nil
		}
		img, err := b.builtin(p)
		return img, p, err == nil, err
	}
	var best *baseImage
	for i := range b.images {
		bi := &b.images[i]
		if !platformMatches(p, bi.platform) {
			continue
		}
		if best == nil || (bi.platform.Variant == p.Variant && best.platform.Variant != p.Variant) {
			best = bi
		}
	}
	if best == nil {
		return nil, p, false, nil
	}
	if p.Variant == "" {
		p.Variant = best.platform.Variant
	}
	return best.image, p, true, nil
}

// platformMatches says whether a binary built for built runs on an image
// for offered. A variant on only one side matches (linux/arm64 and
// linux/arm64/v8 are the same thing; GOAMD64=v3 still runs on amd64).
func platformMatches(built, offered v1.Platform) bool {
	if built.OS != offered.OS || built.Architecture != offered.Architecture {
		return false
	}
	return built.Variant == "" || offered.Variant == "" || built.Variant == offered.Variant
}

// offers lists what the base offers, for messages.
func (b *base) offers() string {
	if b.builtin != nil {
		return "linux/* (any linux platform)"
	}
	var list []string
	for _, bi := range b.images {
		list = append(list, platformString(bi.platform))
	}
	sort.Strings(list)
	return strings.Join(list, ", ")
}

func (b *base) offersOS(os string) bool {
	if b.builtin != nil {
		return os == "linux"
	}
	for _, bi := range b.images {
		if bi.platform.OS == os {
			return true
		}
	}
	return false
}

// platformString is os/arch[/variant].
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// parsePlatform reads os/arch[/variant].
func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q is not os/arch[/variant], e.g. linux/arm64", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
