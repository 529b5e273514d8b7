package push_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipwayci/slipway/internal/push"
	"github.com/slipwayci/slipway/internal/registry"
)

// Push used as a library: an OCI layout pushed to a registry, tags last,
// with the retries and credentials of a registry.Client.
func ExamplePush() {
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	dir, err := os.MkdirTemp("", "example-push-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	idx, _ := random.Index(256, 1, 2)
	p, _ := layout.Write(dir, empty.Index)
	p.AppendIndex(idx)
	digest, _ := idx.Digest()

	client, err := registry.New(registry.Options{Backoff: registry.DefaultBackoff()})
	if err != nil {
		panic(err)
	}
	to, _ := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	results, err := push.Push(context.Background(), push.Options{
		Layout: dir, Digest: digest, To: []name.Repository{to},
		Tags: []string{"1.2.3", "latest"}, Registry: client,
	})
	if err != nil {
		panic(err)
	}
	r := results[0]
	fmt.Println(r.Digest == digest, r.Stats.Uploaded, "blobs uploaded; tags", r.Tags)
	// Output: true 4 blobs uploaded; tags [1.2.3 latest]
}
