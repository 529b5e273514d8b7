package registrytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

func needRegistry(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		if os.Getenv("SLIPWAY_E2E") == "1" {
			t.Fatal("SLIPWAY_E2E=1 but docker-registry is not on PATH; scripts/install-test-deps.sh installs it")
		}
		t.Skip("needs docker-registry; run make test")
	}
}

// put uploads data as a blob of repo through the proxy, monolithically.
func put(t *testing.T, r *Registry, c *http.Client, a Auth, repo string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	req, _ := http.NewRequest(http.MethodPost, r.Proxy.URL+"/v2/"+repo+"/blobs/uploads/", nil)
	req.SetBasicAuth(a.User, a.Password)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
	req.SetBasicAuth(a.User, a.Password)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %s", resp.Status)
	}
	return digest
}

func TestRegistryTLSAuthKillRestart(t *testing.T) {
	needRegistry(t)
	a := Auth{User: "ci", Password: "s3cret"}
	r := New(t, Options{TLS: true, Users: map[string]string{a.User: a.Password}})
	c := &http.Client{Transport: r.Transport(), Timeout: 10 * time.Second}
	ctx := context.Background()

	// Without credentials the registry refuses; with them it serves.
	resp, err := c.Get(r.Proxy.URL + "/v2/")
	if err != nil {
		t.Fatalf("TLS through the proxy with the test CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without credentials: %s, want 401", resp.Status)
	}
	data := []byte("registrytest blob")
	digest := put(t, r, c, a, "e2e/app", data)
	if n := UploadedBytes(r.Proxy.Requests()); n != int64(len(data)) {
		t.Errorf("the proxy counted %d uploaded bytes, want %d", n, len(data))
	}

	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(ctx); err == nil {
		t.Error("the registry still answers after Kill")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	_, status, err := r.do(ctx, http.MethodHead, "/v2/e2e/app/blobs/"+digest, "", a)
	if err != nil || status != http.StatusOK {
		t.Errorf("after a restart the blob is gone: %d %v", status, err)
	}
	var served bool
	for _, s := range r.Served() {
		if s.Method == http.MethodPut && s.Status == http.StatusCreated {
			served = true
		}
	}
	if !served {
		t.Errorf("the registry's own log shows no PUT it answered 201:\n%s", r.Log())
	}
}

func TestProxyFaults(t *testing.T) {
	needRegistry(t)
	r := New(t, Options{})
	c := &http.Client{Timeout: 10 * time.Second}
	ping := regexp.MustCompile(`^/v2/$`)
	r.Proxy.Inject(
		Fault{Path: ping, Status: http.StatusTooManyRequests, RetryAfter: "3"},
		Fault{Path: ping, Drop: true},
		Fault{Path: ping, Skip: 1, Status: http.StatusInternalServerError},
	)
	resp, err := c.Get(r.Proxy.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("first request: %s Retry-After %q, want 429 and 3", resp.Status, resp.Header.Get("Retry-After"))
	}
	if _, err := c.Get(r.Proxy.URL + "/v2/"); err == nil {
		t.Error("second request got an answer; want a dropped connection")
	}
	for i, want := range []int{http.StatusOK, http.StatusInternalServerError, http.StatusOK} {
		resp, err := c.Get(r.Proxy.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %s, want %d", i+3, resp.Status, want)
		}
	}
	var faults []string
	for _, q := range r.Proxy.Requests() {
		faults = append(faults, q.Fault)
	}
	if want := []string{"status", "drop", "", "status", ""}; !equal(faults, want) {
		t.Errorf("recorded faults %q, want %q", faults, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
