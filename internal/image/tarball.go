package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/safefile"
)

// tarballPlan is what --tarball will write: a daemon holds one platform
// per tag, so a docker-archive carries one image, this machine's unless
// --tarball-platform names another.
type tarballPlan struct {
	target *target
	tag    name.Tag
}

// planTarball checks the --tarball flags before any work is done.
func planTarball(o Options, targets []*target, entrypoint, version string) (*tarballPlan, error) {
	if o.Tarball == "" {
		return nil, nil
	}
	want := o.TarballPlatform
	if want == "" {
		want = hostPlatform()
	}
	var list []string
	plan := &tarballPlan{}
	for _, t := range targets {
		p := platformString(t.platform)
		list = append(list, p)
		if p == want || platformString(t.built) == want {
			plan.target = t
		}
	}
	switch {
	case plan.target == nil && o.TarballPlatform != "":
		return nil, fault.Optionf("tarball-platform", "%s is not in the index; it has %s", want, strings.Join(list, ", "))
	case plan.target == nil:
		plan.target = targets[0]
	}
	tag := o.TarballTag
	if tag == "" {
		tag = strings.ToLower(path.Base(entrypoint)) + ":" + layoutRef(version)
	}
	var err error
	if plan.tag, err = name.NewTag(tag); err != nil {
		return nil, fault.Optionf("tarball-tag", "%q is not name:tag: %v", tag, err)
	}
	return plan, nil
}

// hostPlatform is this machine's linux platform, the default for --tarball.
func hostPlatform() string { return "linux/" + runtime.GOARCH }

// write writes the docker-archive to o.Tarball.
func (p *tarballPlan) write(o Options) (*record.Tarball, error) {
	h := sha256.New()
	err := safefile.WriteFrom(o.Tarball, 0o644, func(w io.Writer) error {
		return tarball.Write(p.tag, p.target.image, io.MultiWriter(w, h))
	})
	if err != nil {
		return nil, fmt.Errorf("writing docker-archive: %w", err)
	}
	return &record.Tarball{
		Path: relSlash(o.Dist, o.Tarball), Platform: platformString(p.target.platform), Tag: p.tag.String(),
		SHA256: hex.EncodeToString(h.Sum(nil)),
	}, nil
}
