// Package e2e runs slipway's CI integrations end to end: the GitHub action
// under act and the GitLab template under gitlab-ci-local, both in a
// temporary git repository holding a copy of this one and the sample app.
//
// The tests are gated, since they need act, gitlab-ci-local, git and rsync
// (scripts/install-test-deps.sh installs them) and take seconds, not
// milliseconds:
//
//	SLIPWAY_E2E=1 go test ./internal/e2e/   # or: make test
//
// With SLIPWAY_E2E=1 a missing tool fails the tests rather than skipping
// them, so CI cannot pass by not running them.
package e2e
