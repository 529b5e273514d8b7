package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Platform is a GOOS/GOARCH target with an optional variant.
type Platform struct {
	OS      string
	Arch    string
	Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// dirSuffix is how the platform appears in an output directory name.
func (p Platform) dirSuffix() string {
	return strings.ReplaceAll(p.String(), "/", "_")
}

// variants maps an architecture to its environment variable and the
// variants Go accepts for it, as written in a platform ("linux/arm/v7").
var variants = map[string]struct {
	env    string
	values map[string]string // variant -> value of env
}{
	"amd64":    {"GOAMD64", map[string]string{"v1": "v1", "v2": "v2", "v3": "v3", "v4": "v4"}},
	"arm":      {"GOARM", map[string]string{"v5": "5", "v6": "6", "v7": "7"}},
	"arm64":    {"GOARM64", armv8and9()},
	"386":      {"GO386", map[string]string{"sse2": "sse2", "softfloat": "softfloat"}},
	"ppc64":    {"GOPPC64", map[string]string{"power8": "power8", "power9": "power9", "power10": "power10"}},
	"ppc64le":  {"GOPPC64", map[string]string{"power8": "power8", "power9": "power9", "power10": "power10"}},
	"mips":     {"GOMIPS", map[string]string{"hardfloat": "hardfloat", "softfloat": "softfloat"}},
	"mipsle":   {"GOMIPS", map[string]string{"hardfloat": "hardfloat", "softfloat": "softfloat"}},
	"mips64":   {"GOMIPS64", map[string]string{"hardfloat": "hardfloat", "softfloat": "softfloat"}},
	"mips64le": {"GOMIPS64", map[string]string{"hardfloat": "hardfloat", "softfloat": "softfloat"}},
	"riscv64":  {"GORISCV64", map[string]string{"rva20u64": "rva20u64", "rva22u64": "rva22u64", "rva23u64": "rva23u64"}},
}

func armv8and9() map[string]string {
	m := map[string]string{"v8": "v8.0", "v9": "v9.0"}
	for i := 0; i <= 9; i++ {
		m[fmt.Sprintf("v8.%d", i)] = fmt.Sprintf("v8.%d", i)
	}
	for i := 0; i <= 5; i++ {
		m[fmt.Sprintf("v9.%d", i)] = fmt.Sprintf("v9.%d", i)
	}
	return m
}

// env returns the environment that selects the platform.
func (p Platform) env() []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	if p.Variant != "" {
		v := variants[p.Arch]
		env = append(env, v.env+"="+v.values[p.Variant])
	}
	return env
}

// ParsePlatforms parses a comma- or space-separated list of os/arch[/variant]
// and checks each against the toolchain's own list (go tool dist list).
func ParsePlatforms(list string, known []string) ([]Platform, error) {
	ps, err := SplitPlatforms(list)
	if err != nil {
		return nil, err
	}
	return ps, checkKnown(ps, known)
}

// SplitPlatforms reads a comma- or space-separated list of
// os/arch[/variant], checking the form and the variants but not asking the
// toolchain which platforms it knows (Build does).
func SplitPlatforms(list string) ([]Platform, error) {
	var out []Platform
	seen := map[string]bool{}
	for _, s := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		parts := strings.Split(s, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("platform %q is not os/arch[/variant], e.g. linux/arm64 or linux/arm/v7", s)
		}
		p := Platform{OS: parts[0], Arch: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
			if err := p.checkVariant(); err != nil {
				return nil, err
			}
		}
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platforms given; e.g. linux/amd64,linux/arm64")
	}
	return out, nil
}

func (p Platform) checkVariant() error {
	if p.Variant == "" {
		return nil
	}
	v, ok := variants[p.Arch]
	if !ok {
		return fmt.Errorf("platform %q: %s has no variants; use %s/%s", p, p.Arch, p.OS, p.Arch)
	}
	if _, ok := v.values[p.Variant]; !ok {
		return fmt.Errorf("platform %q: unknown %s variant %q; valid: %s", p, p.Arch, p.Variant, strings.Join(sortedKeys(v.values), ", "))
	}
	return nil
}

// checkKnown refuses platforms the toolchain cannot build, or with a
// variant Go does not know.
func checkKnown(ps []Platform, known []string) error {
	knownSet := make(map[string]bool, len(known))
	for _, k := range known {
		knownSet[k] = true
	}
	if len(ps) == 0 {
		return fmt.Errorf("no platforms given; e.g. linux/amd64,linux/arm64")
	}
	for _, p := range ps {
		if !knownSet[p.OS+"/"+p.Arch] {
			return fmt.Errorf("unknown platform %q; valid platforms (go tool dist list): %s", p, strings.Join(known, ", "))
		}
		if err := p.checkVariant(); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// distList asks the toolchain which platforms it can build.
func distList(ctx context.Context, goCmd string) ([]string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "tool", "dist", "list", "-json").Output()
	if err != nil {
		return nil, fmt.Errorf("listing platforms with go tool dist list: %w", err)
	}
	var entries []struct{ GOOS, GOARCH string }
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, fmt.Errorf("reading go tool dist list: %w", err)
	}
	list := make([]string, 0, len(entries))
	for _, e := range entries {
		list = append(list, e.GOOS+"/"+e.GOARCH)
	}
	return list, nil
}
