// Command demoregistry serves an in-memory OCI registry on loopback for
// make demo, so the demo needs no registry installed. It prints its
// address, then serves until killed. Tests use Debian's docker-registry.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("demoregistry: listening: %v", err)
	}
	fmt.Println(l.Addr().String())
	os.Stdout.Close()
	quiet := log.New(nopWriter{}, "", 0)
	log.Fatal(http.Serve(l, registry.New(registry.Logger(quiet), registry.WithReferrersSupport(true))))
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
