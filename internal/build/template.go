package build

import (
	"reflect"
	"regexp"
	"strings"
	"text/template"

	"github.com/slipwayci/slipway/internal/fault"
)

// templateData is what an ldflags template sees.
type templateData struct {
	Version     string
	Tag         string
	Commit      string
	ShortCommit string
	Date        string
	Timestamp   int64
	Env         map[string]string
	Os          string
	Arch        string
	Variant     string
}

var unknownField = regexp.MustCompile(`can't evaluate field (\w+)`)

// templateFields are the fields an ldflags template may use.
func templateFields() string {
	t := reflect.TypeFor[templateData]()
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = "." + t.Field(i).Name
	}
	return strings.Join(names, ", ")
}

func parseLDFlags(s string) (*template.Template, error) {
	t, err := template.New("ldflags").Option("missingkey=error").Parse(s)
	if err != nil {
		// The text quoted in the message may hold a line break.
		return nil, fault.Optionf("ldflags", "template: %s", oneLine(strings.TrimPrefix(err.Error(), "template: "), nil))
	}
	return t, nil
}

func (d templateData) render(t *template.Template, p Platform) (string, error) {
	d.Os, d.Arch, d.Variant = p.OS, p.Arch, p.Variant
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		msg := oneLine(strings.TrimPrefix(err.Error(), "template: "), nil)
		if strings.Contains(msg, "map has no entry for key") {
			msg += "; set that environment variable, or give it in the build's env"
		}
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			// Not the Go type it was looked up in: the names to write.
			return "", fault.Optionf("ldflags", "template: no field .%s; valid: %s", m[1], templateFields())
		}
		return "", fault.Optionf("ldflags", "template: %s", msg)
	}
	return b.String(), nil
}
