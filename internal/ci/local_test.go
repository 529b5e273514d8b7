package ci

import (
	"testing"
)

func TestLocal(t *testing.T) {
	r := detect(t, map[string]string{"INPUT_PLATFORMS": "x", "SLIPWAY_PLATFORMS": "y"}, Options{Dir: t.TempDir()})
	if r.p.Name() != "local" {
		t.Fatalf("Name() = %q, want local", r.p.Name())
	}
	if v, ok := r.p.Input("platforms"); ok || v != "" {
		t.Errorf("Input = %q, %v; want nothing read", v, ok)
	}
	if err := r.p.SetOutput("digest", "sha256:abc"); err != nil {
		t.Fatalf("SetOutput: %v", err)
	}
	end := r.p.Group("Build")
	r.p.Stdout().Write([]byte("::error::plain text here\n"))
	end()
	r.p.Annotate(Annotation{Severity: Warning, File: "a.go", Line: 2, Message: "m"})

	wantOut := "output digest=sha256:abc\n::error::plain text here\n" // no group header in a terminal
	if got := r.stdout.String(); got != wantOut {
		t.Errorf("stdout = %q, want %q", got, wantOut)
	}
	if got, want := r.stderr.String(), "a.go:2: warning: m\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if got, want := r.p.Info(), (Info{Platform: "local"}); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
}
