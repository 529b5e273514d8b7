package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/cli"
)

func TestParseMeta(t *testing.T) {
	tests := []struct {
		name    string
		pairs   []string
		want    map[string]string
		wantErr string
	}{
		{name: "reverse DNS", pairs: []string{"org.example.team=payments", "a=b=c"}, want: map[string]string{"org.example.team": "payments", "a": "b=c"}},
		{name: "empty value", pairs: []string{"org.example.note="}, want: map[string]string{"org.example.note": ""}},
		{name: "later wins", pairs: []string{"k=1", "k=2"}, want: map[string]string{"k": "2"}},
		{name: "no equals", pairs: []string{"team"}, wantErr: `--label "team" is not KEY=VALUE`},
		{name: "empty key", pairs: []string{"=x"}, wantErr: `key "" must be`},
		{name: "space in key", pairs: []string{"my team=x"}, wantErr: `key "my team" must be`},
		{name: "trailing dot", pairs: []string{"org.example.=x"}, wantErr: `key "org.example." must be`},
		{name: "newline in value", pairs: []string{"k=a\nb"}, wantErr: "control character"},
		{name: "C1 next line in value", pairs: []string{"k=a\u0085b"}, wantErr: "control character"},
		{name: "tab in value", pairs: []string{"k=a\tb"}, want: map[string]string{"k": "a\tb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMeta("label", tt.pairs)
			if tt.wantErr != "" {
				// As the command prints it: options named as flags.
				if err == nil || !strings.Contains(cli.Flags(err).Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "default tcp, sorted", in: []string{"9090", "53/udp", "8080/tcp"}, want: []string{"53/udp", "8080/tcp", "9090/tcp"}},
		{name: "zero", in: []string{"0"}, wantErr: true},
		{name: "too big", in: []string{"65536"}, wantErr: true},
		{name: "bad proto", in: []string{"80/http"}, wantErr: true},
		{name: "not a number", in: []string{"http"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePorts(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	if _, err := ParseEnv([]string{"GOMEMLIMIT=200MiB", "EMPTY="}); err != nil {
		t.Errorf("valid env refused: %v", err)
	}
	for _, bad := range []string{"NOVALUE", "1X=a", "A B=c", "=x"} {
		if _, err := ParseEnv([]string{bad}); err == nil {
			t.Errorf("--env %q accepted", bad)
		}
	}
}

func TestConfigApply(t *testing.T) {
	base := &v1.ConfigFile{
		OS: "linux", Architecture: "arm64",
		Config: v1.Config{
			Env:        []string{"PATH=/bin", "LANG=C"},
			User:       "65532",
			WorkingDir: "/home/nonroot",
			Cmd:        []string{"/bin/sh"},
			Labels:     map[string]string{"from.base": "yes"},
		},
	}
	c := config{
		entrypoint: []string{"/usr/local/bin/hello"},
		env:        []string{"LANG=C.UTF-8", "MODE=prod"},
		ports:      []string{"8080/tcp"},
		labels:     map[string]string{"org.example.team": "payments"},
		created:    date,
	}
	got := c.apply(base, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	want := v1.Config{
		Entrypoint:   []string{"/usr/local/bin/hello"},
		Env:          []string{"PATH=/bin", "LANG=C.UTF-8", "MODE=prod"},
		User:         "65532",
		WorkingDir:   "/home/nonroot",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels:       map[string]string{"from.base": "yes", "org.example.team": "payments"},
	}
	if diff := cmp.Diff(want, got.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if got.Variant != "v8" || !got.Created.Time.Equal(date) {
		t.Errorf("variant %q created %v", got.Variant, got.Created)
	}
	if base.Config.Env[1] != "LANG=C" || base.Config.Cmd == nil {
		t.Errorf("apply changed the base config")
	}
}
