package registrytest

import (
	"context"
	"fmt"
	"net/http"
)

// BlobSize asks the registry itself whether repo holds the blob, and its
// size: what really landed, whatever the client heard before a crash.
func (r *Registry) BlobSize(ctx context.Context, repo, digest string, a Auth) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, r.scheme+"://"+r.Direct+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		return 0, false, err
	}
	if a.User != "" {
		req.SetBasicAuth(a.User, a.Password)
	}
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength, true, nil
	case http.StatusNotFound:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("HEAD blob %s in %s: %s", digest, repo, resp.Status)
}
