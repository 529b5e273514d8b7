package registry_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/registry"
)

// A Repository attaches an artifact to an image and lists what refers to
// it, through the referrers API or the fallback tag, whichever the
// registry has: what a signing or verifying step does.
func ExampleRepository_Attach() {
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo, _ := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	img, _ := random.Image(256, 1)
	remote.Write(repo.Tag("v1"), img)

	ctx := context.Background()
	client, err := registry.New(registry.Options{Backoff: registry.DefaultBackoff()})
	if err != nil {
		panic(err)
	}
	r, err := client.Dial(ctx, repo, registry.DialOptions{Push: true})
	if err != nil {
		panic(err)
	}
	digest, found, err := r.Resolve(ctx, "v1")
	if err != nil || !found {
		panic(fmt.Sprint("resolving v1: ", found, err))
	}
	_, mt, _, err := r.Manifest(ctx, digest.String())
	if err != nil {
		panic(err)
	}
	att, err := r.Attach(ctx, v1.Descriptor{MediaType: mt, Digest: digest}, registry.Artifact{
		Data: []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), MediaType: registry.MediaTypeInToto,
	})
	if err != nil {
		panic(err)
	}
	refs, err := r.Referrers(ctx, digest)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(refs), refs[0].Digest == att.Digest, refs[0].ArtifactType)
	// Output: 1 true application/vnd.in-toto+json
}
