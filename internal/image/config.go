package image

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/fault"
)

// OCI annotation keys the step fills in.
const (
	annSource     = "org.opencontainers.image.source"
	annRevision   = "org.opencontainers.image.revision"
	annVersion    = "org.opencontainers.image.version"
	annCreated    = "org.opencontainers.image.created"
	annTitle      = "org.opencontainers.image.title"
	annLicenses   = "org.opencontainers.image.licenses"
	annBaseName   = "org.opencontainers.image.base.name"
	annBaseDigest = "org.opencontainers.image.base.digest"
	annRefName    = "org.opencontainers.image.ref.name"
)

// config is what the step sets in every image's config; empty fields keep
// the base's value.
type config struct {
	entrypoint []string
	user       string
	env        []string // KEY=VALUE, replacing the base's value of KEY
	workdir    string
	ports      []string // 8080/tcp
	labels     map[string]string
	created    time.Time
}

// apply returns the image config for one platform: the base's, with this
// config laid over it. Cmd is cleared, as a Dockerfile's ENTRYPOINT clears
// an inherited CMD: the base's arguments were meant for its own program.
func (c config) apply(base *v1.ConfigFile, p v1.Platform) *v1.ConfigFile {
	cf := base.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: c.created}
	cf.Config.Entrypoint = c.entrypoint
	cf.Config.Cmd = nil
	if c.user != "" {
		cf.Config.User = c.user
	}
	if c.workdir != "" {
		cf.Config.WorkingDir = c.workdir
	}
	cf.Config.Env = mergeEnv(cf.Config.Env, c.env)
	if len(c.ports) > 0 && cf.Config.ExposedPorts == nil {
		cf.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, port := range c.ports {
		cf.Config.ExposedPorts[port] = struct{}{}
	}
	if len(c.labels) > 0 && cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range c.labels {
		cf.Config.Labels[k] = v
	}
	return cf
}

// mergeEnv sets each KEY=VALUE of add in env, in place of an earlier KEY.
func mergeEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

var (
	// metaKey is a label or annotation key: reverse-DNS style words, as
	// the OCI image spec recommends, without spaces or '='.
	metaKey = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`)
	envKey  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ParseMeta reads the KEY=VALUE pairs of a label or annotation option:
// keys in reverse-DNS style, values without control characters.
func ParseMeta(option string, pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fault.Optionf(option, "{option} %q is not KEY=VALUE, e.g. {option} org.example.team=payments", p)
		}
		if !metaKey.MatchString(k) {
			return nil, fault.Optionf(option, "%q: key %q must be letters, digits and . _ / - (reverse-DNS style, e.g. org.example.team)", p, k)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) {
			return nil, fault.Optionf(option, "%s: the value has a control character", k)
		}
		out[k] = v
	}
	return out, nil
}

// ParseEnv reads the env option's KEY=VALUE pairs, KEY a variable name;
// a later KEY wins.
func ParseEnv(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !envKey.MatchString(k) {
			return nil, fault.Optionf("env", "{option} %q is not KEY=VALUE with KEY a variable name, e.g. {option} GOMEMLIMIT=200MiB", p)
		}
		out[k] = v
	}
	return out, nil
}

// pairs writes m as KEY=VALUE pairs in the order of their keys, so the
// same options give the same image.
func pairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// parsePorts normalises the port option's values to PORT/PROTO, sorted.
func parsePorts(list []string) ([]string, error) {
	var out []string
	for _, s := range list {
		num, proto, ok := strings.Cut(s, "/")
		if !ok {
			proto = "tcp"
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fault.Optionf("port", "{option} %q is not PORT[/tcp|udp|sctp] with PORT 1-65535, e.g. {option} 8080", s)
		}
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	sort.Strings(out)
	return out, nil
}
