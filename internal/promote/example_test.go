package promote_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/promote"
	"github.com/slipwayci/slipway/internal/registry"
)

// Promote used as a library: a digest in the CI repository moved into the
// staging environment of a configuration, recorded in its history, its
// tags moved last.
func ExamplePromote() {
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	idx, _ := random.Index(256, 1, 2)
	ci, _ := name.NewRepository(host + "/ci/app")
	if err := remote.WriteIndex(ci.Tag("1.0.0"), idx); err != nil {
		panic(err)
	}
	digest, _ := idx.Digest()

	cfg, err := promote.ParseConfig([]byte("environments:\n  staging:\n    repository: " + host + "/staging/app\n    tags: [staging]\n"))
	if err != nil {
		panic(err)
	}
	client, err := registry.New(registry.Options{Backoff: registry.DefaultBackoff()})
	if err != nil {
		panic(err)
	}
	res, err := promote.Promote(context.Background(), promote.Options{
		Config: cfg, To: cfg.Environments["staging"], Source: ci.Digest(digest.String()),
		Registry: client, Actor: "example", Settle: 10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Digest == digest, res.Tags, "record", res.Entry.Sequence)
	// Output: true [staging] record 1
}
