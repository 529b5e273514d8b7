package registrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Auth is a user and password for the registry's htpasswd, if it has one.
type Auth struct{ User, Password string }

// Tags lists the tags of repo, straight from the registry.
func (r *Registry) Tags(ctx context.Context, repo string, a Auth) ([]string, error) {
	body, status, err := r.get(ctx, "/v2/"+repo+"/tags/list", "", a)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		return nil, nil
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	return list.Tags, nil
}

// Incomplete walks every tag of repo down to its blobs and returns what it
// found missing: a tag that names anything the registry does not hold in
// that repository. Empty means every tag names a whole image.
func (r *Registry) Incomplete(ctx context.Context, repo string, a Auth) ([]string, error) {
	tags, err := r.Tags(ctx, repo, a)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, tag := range tags {
		m, err := r.walk(ctx, repo, tag, a, map[string]bool{})
		if err != nil {
			return nil, err
		}
		for _, x := range m {
			missing = append(missing, fmt.Sprintf("%s:%s: %s", repo, tag, x))
		}
	}
	return missing, nil
}

const accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

func (r *Registry) walk(ctx context.Context, repo, ref string, a Auth, seen map[string]bool) ([]string, error) {
	if seen[ref] {
		return nil, nil
	}
	seen[ref] = true
	body, status, err := r.get(ctx, "/v2/"+repo+"/manifests/"+ref, accept, a)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return []string{"manifest " + ref + " missing"}, nil
	}
	var m struct {
		MediaType string          `json:"mediaType"`
		Manifests []v1.Descriptor `json:"manifests"`
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("reading manifest %s of %s: %w", ref, repo, err)
	}
	var missing []string
	for _, child := range m.Manifests {
		x, err := r.walk(ctx, repo, child.Digest.String(), a, seen)
		if err != nil {
			return nil, err
		}
		missing = append(missing, x...)
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range blobs {
		_, status, err := r.do(ctx, http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), "", a)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			missing = append(missing, "blob "+b.Digest.String()+" missing")
		}
	}
	return missing, nil
}

func (r *Registry) get(ctx context.Context, path, accept string, a Auth) ([]byte, int, error) {
	return r.do(ctx, http.MethodGet, path, accept, a)
}

// do sends one request to the registry itself, not through the proxy, so
// that checks are neither faulted nor counted.
func (r *Registry) do(ctx context.Context, method, path, accept string, a Auth) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.scheme+"://"+r.Direct+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if a.User != "" {
		req.SetBasicAuth(a.User, a.Password)
	}
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(resp.Body, 4<<20)); err != nil {
		return nil, 0, err
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(b.String()))
	}
	return b.Bytes(), resp.StatusCode, nil
}

// UploadedBytes sums the blob bytes that reached the registry in reqs.
func UploadedBytes(reqs []Request) int64 {
	var n int64
	for _, r := range reqs {
		if r.Upload() {
			n += r.Sent
		}
	}
	return n
}
