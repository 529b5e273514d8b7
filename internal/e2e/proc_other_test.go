//go:build !unix

package e2e

import "os/exec"

// ownProcessGroup leaves cmd as it is: without process groups, cancelling
// kills only the tool itself.
func ownProcessGroup(*exec.Cmd) {}
