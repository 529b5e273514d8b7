package promote

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/registry"
)

// parent is the index a single platform's manifest was pushed in.
type parent struct {
	index    v1.Hash
	tag      string
	platform string
	img      *image
}

// findParent looks for the index that lists d among the tags slipway push
// gives a release's index (its version, v-version, sha-<commit>, latest),
// read from the manifest's own annotations: promoting d alone would tag
// one platform as the release and drop the others.
func findParent(ctx context.Context, r *registry.Repository, d v1.Hash, ann map[string]string) (*parent, error) {
	var tags []string
	if v := ann["org.opencontainers.image.version"]; v != "" {
		tags = append(tags, v, "v"+strings.TrimPrefix(v, "v"))
	}
	if rev := ann["org.opencontainers.image.revision"]; len(rev) >= 7 {
		tags = append(tags, "sha-"+rev[:7])
	}
	tags = append(tags, "latest")
	for _, tag := range slices.Compact(tags) {
		raw, mt, found, err := r.Manifest(ctx, tag)
		if err != nil {
			return nil, err
		}
		if !found || !mt.IsIndex() {
			continue
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		for _, m := range idx.Manifests {
			if m.Digest != d {
				continue
			}
			h, _, err := v1.SHA256(bytes.NewReader(raw))
			if err != nil {
				return nil, err
			}
			p := &parent{index: h, tag: tag, platform: "one platform"}
			if m.Platform != nil {
				p.platform = m.Platform.String()
			}
			if p.img, err = readImage(ctx, r, p.index); err != nil {
				return nil, err
			}
			return p, nil
		}
	}
	return nil, nil
}

// refusePlatformManifest is the configuration error for promoting one
// platform of an index without --platform-manifest.
func refusePlatformManifest(repo string, d v1.Hash, p *parent) error {
	return fault.Optionf("platform-manifest", "%s@%s is the %s manifest of index %s (tag %s); promoting it alone drops the other platforms: give --digest %s@%s, or {option} if one platform is meant",
		repo, d, p.platform, p.index, p.tag, repo, p.index)
}

// explainScan says, when the scan gate found nothing on a platform's
// manifest, what it found on its index instead, read as base reads
// evidence (under the same trust, at the same time).
func explainScan(ctx context.Context, base *registryEvidence, d v1.Hash, p *parent, verdicts []Verdict) {
	for i, v := range verdicts {
		if v.Gate != "scan" || v.Pass || v.Evidence != "" {
			continue
		}
		ev := &registryEvidence{src: base.src, digest: p.index, manifests: p.img.manifests, platforms: p.img.platforms,
			verifier: base.verifier, now: base.now}
		scans, err := ev.Scans(ctx)
		if err != nil {
			return
		}
		for _, s := range scans {
			if !slices.ContainsFunc(s.Unscanned, func(u string) bool { return strings.HasPrefix(u, d.String()) }) {
				verdicts[i].Detail = fmt.Sprintf("no scan attestation on this %s manifest itself; index %s (tag %s) has one naming it (%s), which is evidence about the index: promote the index, or scan and push this manifest by digest",
					p.platform, p.index, p.tag, s.Record)
				return
			}
		}
	}
}
