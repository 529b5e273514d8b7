// Command hello is Slipway's sample service: it prints the version it was
// stamped with, reports what it finds in its container (user, CA roots) and
// can serve HTTP.
package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	listen := flag.String("listen", "", "serve HTTP on this address, e.g. :8080")
	check := flag.Bool("check", false, "report user and CA roots, then exit")
	flag.Parse()

	fmt.Printf("hello %s (commit %s, built %s, %s/%s)\n", version, commit, date, runtime.GOOS, runtime.GOARCH)
	if *check {
		pool, err := x509.SystemCertPool()
		if err != nil {
			fmt.Println("ca-roots: error:", err)
			os.Exit(1)
		}
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
		fmt.Printf("ca-roots: %d\n", len(pool.Subjects())) //nolint:staticcheck // a count is all we need
	}
	if *listen != "" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello %s\n", version)
		})
		log.Fatal(http.ListenAndServe(*listen, nil))
	}
}
