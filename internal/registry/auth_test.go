package registry

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// login resolves the keychain for repo and returns the user and password
// it would send ("" for anonymous).
func login(t *testing.T, kc authn.Keychain, repo string) (string, string) {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kc.Resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	if a == authn.Anonymous {
		return "", ""
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username, cfg.Password
}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func dockerConfig(t *testing.T, dir, json string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func TestKeychainOrder(t *testing.T) {
	home := t.TempDir()
	dockerConfig(t, filepath.Join(home, ".docker"), `{"auths":{
		"registry.gitlab.com":{"auth":"`+basic("from-config", "config-pw")+`"},
		"ghcr.io":{"auth":"`+basic("gh-config", "gh-config-pw")+`"},
		"https://index.docker.io/v1/":{"auth":"`+basic("hub", "hub-pw")+`"}}}`)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"auths":{"quay.io":{"auth":"`+basic("podman", "podman-pw")+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := map[string]string{
		"HOME":                 home,
		"REGISTRY_AUTH_FILE":   authFile,
		"CI_REGISTRY":          "registry.gitlab.com",
		"CI_REGISTRY_USER":     "gitlab-ci-token",
		"CI_REGISTRY_PASSWORD": "job-token",
		"GITHUB_TOKEN":         "ghs_token",
		"GITHUB_ACTOR":         "octocat",
	}
	var masked []string
	kc := Credentials{Registry: "r.example:5000", Username: "me", Password: "flag-pw", Getenv: env(ev), Mask: func(s string) { masked = append(masked, s) }}.Keychain()
	for _, tc := range []struct{ repo, user, pass string }{
		{"r.example:5000/app", "me", "flag-pw"},                   // --username for its registry
		{"r.example:5001/app", "", ""},                            // and no other
		{"registry.gitlab.com/g/app", "from-config", "config-pw"}, // a login done on purpose beats CI's
		{"ghcr.io/o/app", "gh-config", "gh-config-pw"},            // likewise for GitHub
		{"quay.io/o/app", "podman", "podman-pw"},                  // REGISTRY_AUTH_FILE
		{"docker.io/library/app", "hub", "hub-pw"},                // Docker Hub's historical key
		{"elsewhere.example/app", "", ""},                         // anonymous
	} {
		if u, p := login(t, kc, tc.repo); u != tc.user || p != tc.pass {
			t.Errorf("%s: logged in as %q/%q, want %q/%q", tc.repo, u, p, tc.user, tc.pass)
		}
	}
	for _, s := range []string{"flag-pw", basic("me", "flag-pw"), "job-token", "ghs_token", "config-pw", "gh-config-pw", "podman-pw", "hub-pw"} {
		if !slices.Contains(masked, s) {
			t.Errorf("%q was not masked", s)
		}
	}
}

func TestKeychainCIEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		repo       string
		user, pass string
	}{
		{"GitLab registry user and password", map[string]string{"CI_REGISTRY": "registry.gitlab.com", "CI_REGISTRY_USER": "u", "CI_REGISTRY_PASSWORD": "p"}, "registry.gitlab.com/g/p", "u", "p"},
		{"GitLab job token", map[string]string{"CI_REGISTRY": "gitlab.example:5050", "CI_JOB_TOKEN": "jt"}, "gitlab.example:5050/g/p", "gitlab-ci-token", "jt"},
		{"GitLab credentials stay on CI_REGISTRY", map[string]string{"CI_REGISTRY": "registry.gitlab.com", "CI_JOB_TOKEN": "jt"}, "ghcr.io/o/p", "", ""},
		{"GITHUB_TOKEN for ghcr.io", map[string]string{"GITHUB_TOKEN": "t", "GITHUB_ACTOR": "octocat"}, "ghcr.io/o/p", "octocat", "t"},
		{"GITHUB_TOKEN without an actor", map[string]string{"GITHUB_TOKEN": "t"}, "ghcr.io/o/p", "x-access-token", "t"},
		{"GITHUB_TOKEN not sent elsewhere", map[string]string{"GITHUB_TOKEN": "t"}, "docker.io/o/p", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["HOME"] = t.TempDir()
			kc := Credentials{Getenv: env(tc.env)}.Keychain()
			if u, p := login(t, kc, tc.repo); u != tc.user || p != tc.pass {
				t.Errorf("logged in as %q/%q, want %q/%q", u, p, tc.user, tc.pass)
			}
		})
	}
}

func TestKeychainDockerConfigEnvAndHelper(t *testing.T) {
	// A credential helper is a program on PATH named docker-credential-*.
	bin := t.TempDir()
	helper := "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"helped\",\"Secret\":\"helper-secret\"}'\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-slipwaytest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfg := t.TempDir()
	dockerConfig(t, cfg, `{"credHelpers":{"helped.example":"slipwaytest"},"auths":{"plain.example":{"auth":"`+basic("u", "p")+`"}}}`)
	var masked []string
	kc := Credentials{Getenv: env(map[string]string{"DOCKER_CONFIG": cfg, "HOME": t.TempDir()}), Mask: func(s string) { masked = append(masked, s) }}.Keychain()
	if u, p := login(t, kc, "helped.example/app"); u != "helped" || p != "helper-secret" {
		t.Errorf("through the helper: %q/%q", u, p)
	}
	if u, p := login(t, kc, "plain.example/app"); u != "u" || p != "p" {
		t.Errorf("from DOCKER_CONFIG: %q/%q", u, p)
	}
	if !slices.Contains(masked, "helper-secret") {
		t.Errorf("the helper's secret was not masked: %q", masked)
	}
}

func TestKeychainRefusesABrokenConfig(t *testing.T) {
	cfg := t.TempDir()
	dockerConfig(t, cfg, `{"auths": nope}`)
	r, _ := name.NewRepository("r.example/app")
	_, err := Credentials{Getenv: env(map[string]string{"DOCKER_CONFIG": cfg})}.Keychain().Resolve(r)
	if err == nil {
		t.Error("a config.json that does not parse was ignored")
	}
}
