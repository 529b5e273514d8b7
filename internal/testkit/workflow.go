package testkit

import (
	"strings"
	"unicode"
)

// WorkflowCommands lists the lines of a log that GitHub's runner would take
// for a workflow command: "::" after leading white space, or the old
// "##[" anywhere. A line ends at \n or \r, as the runner reads it.
func WorkflowCommands(log string) []string {
	var cmds []string
	for _, line := range strings.FieldsFunc(log, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.HasPrefix(strings.TrimLeftFunc(line, unicode.IsSpace), "::") || strings.Contains(line, "##[") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}
