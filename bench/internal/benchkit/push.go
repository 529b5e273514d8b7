package benchkit

import (
	"fmt"
	"slices"

	"github.com/slipwayci/slipway/internal/registrytest"
)

// PushTool is one way of pushing the same image to a repository.
type PushTool struct {
	Name string
	// Slug tells the tool's repositories apart.
	Slug string
	// Command pushes to repo.
	Command func(repo string) []string
}

// The tools PushTools returns, by name.
const (
	CranePush        = "crane push"
	SlipwayPush      = "slipway push --sbom=false"
	SlipwayPushSBOMs = "slipway push (with SBOM referrers)"
)

// PushTools are the cases compared: crane pushing the OCI layout, and
// slipway pushing the dist that holds it, without its SBOMs (the same
// content as crane) and with them as referrers.
func PushTools(crane, slipwayPush, dist, layout string) []PushTool {
	return []PushTool{
		{CranePush, "crane", func(repo string) []string {
			return []string{crane, "push", layout, repo + ":v1"}
		}},
		{SlipwayPush, "slipway-nosbom", func(repo string) []string {
			return []string{slipwayPush, "--dist", dist, "--to", repo, "--tag", "v1", "--sbom=false"}
		}},
		{SlipwayPushSBOMs, "slipway-sbom", func(repo string) []string {
			return []string{slipwayPush, "--dist", dist, "--to", repo, "--tag", "v1"}
		}},
	}
}

// Push phases: to a repository that does not have the image, then the
// same push again.
const (
	PushNew       = "new"
	PushUnchanged = "unchanged"
)

// PushRounds pushes with every tool, rounds times, each round to a fresh
// repository and then again unchanged, alternating which tool goes first
// from round to round. It returns the samples by phase and tool name,
// counted at the registry; done, if set, hears of each finished round.
func PushRounds(reg *registrytest.Registry, dir string, tools []PushTool, rounds int, done func(round int)) (map[string]map[string][]Sample, error) {
	results := map[string]map[string][]Sample{PushNew: {}, PushUnchanged: {}}
	for i := range rounds {
		order := slices.Clone(tools)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			repo := fmt.Sprintf("%s/bench/%s-%d", reg.Host, t.Slug, i)
			for _, phase := range []string{PushNew, PushUnchanged} {
				c := t.Command(repo)
				s, err := Counted(func() error { return Sh(dir, nil, c[0], c[1:]...) }, reg.Proxy)
				if err != nil {
					return nil, fmt.Errorf("%s (%s, round %d): %w", t.Name, phase, i+1, err)
				}
				results[phase][t.Name] = append(results[phase][t.Name], s)
			}
		}
		if done != nil {
			done(i + 1)
		}
	}
	return results, nil
}
