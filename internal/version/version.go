// Package version reports slipway's own version.
package version

import "runtime/debug"

// stamped is set at release time with -ldflags "-X …/version.stamped=v1.2.3".
var stamped string

// String returns slipway's version: the stamped one, else the module
// version Go recorded, else "devel".
func String() string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
