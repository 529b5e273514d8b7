package redact

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
		secrets        []string
	}{
		{"user and password", "https://ci:s3cr3t@vuln.example.com/db", "https://vuln.example.com/db", []string{"s3cr3t"}},
		{"token as user", "https://ghp_abc123@vuln.example.com/db", "https://vuln.example.com/db", []string{"ghp_abc123"}},
		{"escaped password", "https://u:p%40ss%2Fw@host/db", "https://host/db", []string{"p%40ss%2Fw", "p@ss/w"}},
		{"at sign in the password", "https://u:p@ss@host/db", "https://host/db", []string{"p@ss"}},
		{"no path", "https://u:pw9@host", "https://host", []string{"pw9"}},
		{"query token", "https://host/db?token=t0k&v=2", "https://host/db?v=2", []string{"t0k"}},
		{"presigned URL", "https://bucket.s3.amazonaws.com/db?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcd&X-Amz-Security-Token=st",
			"https://bucket.s3.amazonaws.com/db?X-Amz-Algorithm=AWS4", []string{"AKIA%2F1", "AKIA/1", "abcd", "st"}},
		{"azure SAS", "https://acct.blob.core.windows.net/c/db?sv=2024&sig=S1G%3D", "https://acct.blob.core.windows.net/c/db?sv=2024", []string{"S1G%3D", "S1G="}},
		{"only secrets in the query", "https://host/db?access_token=xq7", "https://host/db", []string{"xq7"}},
		{"fragment kept", "https://u:pw9@host/db?private_token=xq7#frag", "https://host/db#frag", []string{"pw9", "xq7"}},
		{"port kept", "http://u:pw9@127.0.0.1:8080/db", "http://127.0.0.1:8080/db", []string{"pw9"}},
		{"nothing to strip", "https://vuln.go.dev", "https://vuln.go.dev", nil},
		{"file URL", "file:///srv/vulndb", "file:///srv/vulndb", nil},
		{"not a URL", "ghcr.io/aquasecurity/trivy-db:2", "ghcr.io/aquasecurity/trivy-db:2", nil},
		{"path with an at sign", "https://host/a@b/db", "https://host/a@b/db", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if diff := cmp.Diff(tt.secrets, Secrets(tt.in)); diff != "" {
				t.Errorf("Secrets(%q) (-want +got):\n%s", tt.in, diff)
			}
			for _, s := range tt.secrets {
				if got := URL(tt.in); strings.Contains(got, s) {
					t.Errorf("URL(%q) = %q still holds %q", tt.in, got, s)
				}
			}
		})
	}
}
