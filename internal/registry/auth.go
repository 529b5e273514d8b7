package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Credentials say where a push finds its logins. Keychain tries them in
// this order, and the first that knows the registry wins:
//
//  1. Username and Password (--username, --password-stdin) for Registry;
//  2. Docker's config.json (DOCKER_CONFIG, else ~/.docker), then
//     REGISTRY_AUTH_FILE, then containers/auth.json (XDG_RUNTIME_DIR,
//     XDG_CONFIG_HOME), each with its credential helpers;
//  3. GitLab CI: CI_REGISTRY_USER and CI_REGISTRY_PASSWORD, or
//     gitlab-ci-token and CI_JOB_TOKEN, for CI_REGISTRY;
//  4. GitHub: GITHUB_TOKEN for ghcr.io, as GITHUB_ACTOR.
//
// A login done on purpose (1, 2) wins over what CI provides anyway.
type Credentials struct {
	Registry, Username, Password string
	// Getenv reads the step's environment.
	Getenv func(string) string
	// Mask is called with every secret before it is used, so that no
	// stream of the step can print it.
	Mask func(string)
}

// Keychain returns the keychain the credentials describe. It masks the
// secrets from the environment at once, and those from config files when it
// reads them.
func (c Credentials) Keychain() authn.Keychain {
	if c.Mask == nil {
		c.Mask = func(string) {}
	}
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	var chain []authn.Keychain
	if c.Username != "" || c.Password != "" {
		c.maskLogin(c.Username, c.Password)
		chain = append(chain, static{registry: c.Registry, auth: &authn.Basic{Username: c.Username, Password: c.Password}})
	}
	chain = append(chain, &configKeychain{files: c.configFiles(), mask: c.Mask})
	if reg := strings.TrimSpace(c.Getenv("CI_REGISTRY")); reg != "" {
		user, pass := c.Getenv("CI_REGISTRY_USER"), c.Getenv("CI_REGISTRY_PASSWORD")
		if user == "" || pass == "" {
			user, pass = "gitlab-ci-token", c.Getenv("CI_JOB_TOKEN")
		}
		if pass != "" {
			c.maskLogin(user, pass)
			chain = append(chain, static{registry: reg, auth: &authn.Basic{Username: user, Password: pass}})
		}
	}
	if tok := c.Getenv("GITHUB_TOKEN"); tok != "" {
		user := c.Getenv("GITHUB_ACTOR")
		if user == "" {
			user = "x-access-token"
		}
		c.maskLogin(user, tok)
		chain = append(chain, static{registry: "ghcr.io", auth: &authn.Basic{Username: user, Password: tok}})
	}
	return authn.NewMultiKeychain(chain...)
}

// maskLogin masks a password and the Basic header value made from it.
func (c Credentials) maskLogin(user, pass string) {
	if pass == "" {
		return
	}
	c.Mask(pass)
	c.Mask(base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)))
}

// configFiles lists the auth files to read, in order.
func (c Credentials) configFiles() []string {
	var files []string
	home := c.Getenv("HOME")
	if d := c.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, config.ConfigFileName))
	} else if home != "" {
		files = append(files, filepath.Join(home, ".docker", config.ConfigFileName))
	}
	if f := c.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := c.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	xdg := c.Getenv("XDG_CONFIG_HOME")
	if xdg == "" && home != "" {
		xdg = filepath.Join(home, ".config")
	}
	if xdg != "" {
		files = append(files, filepath.Join(xdg, "containers", "auth.json"))
	}
	return files
}

// static is one login for one registry.
type static struct {
	registry string
	auth     authn.Authenticator
}

func (s static) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if sameRegistry(r.RegistryStr(), s.registry) {
		return s.auth, nil
	}
	return authn.Anonymous, nil
}

// sameRegistry compares registry names as the name package writes them:
// Docker Hub is index.docker.io whatever it was called.
func sameRegistry(a, b string) bool {
	norm := func(s string) string {
		r, err := name.NewRegistry(strings.TrimSpace(s))
		if err != nil {
			return strings.ToLower(s)
		}
		return r.RegistryStr()
	}
	return norm(a) == norm(b)
}

// configKeychain reads Docker-format auth files from paths taken from the
// step's environment, not the process's, and consults them in order.
type configKeychain struct {
	files []string
	mask  func(string)

	once   sync.Once
	loaded []*configfile.ConfigFile
	err    error
}

var _ authn.ContextKeychain = (*configKeychain)(nil)

func (k *configKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

func (k *configKeychain) ResolveContext(_ context.Context, r authn.Resource) (authn.Authenticator, error) {
	k.once.Do(k.load)
	if k.err != nil {
		return nil, k.err
	}
	keys := []string{r.String(), r.RegistryStr()}
	if r.RegistryStr() == name.DefaultRegistry {
		keys = []string{authn.DefaultAuthKey}
	}
	for _, cf := range k.loaded {
		for _, key := range keys {
			ac, err := cf.GetAuthConfig(key)
			if err != nil {
				return nil, fmt.Errorf("reading credentials for %s from %s: %w", key, cf.Filename, err)
			}
			if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
				continue
			}
			for _, s := range []string{ac.Password, ac.Auth, ac.IdentityToken, ac.RegistryToken} {
				k.mask(s)
			}
			if ac.Password != "" {
				k.mask(base64.StdEncoding.EncodeToString([]byte(ac.Username + ":" + ac.Password)))
			}
			return authn.FromConfig(authn.AuthConfig{
				Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
				IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}

func (k *configKeychain) load() {
	for _, path := range k.files {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			k.err = fmt.Errorf("reading credentials: %w", err)
			return
		}
		cf, err := config.LoadFromReader(f)
		f.Close()
		if err != nil {
			k.err = fmt.Errorf("reading credentials from %s: %w", path, err)
			return
		}
		cf.Filename = path
		k.loaded = append(k.loaded, cf)
	}
}
