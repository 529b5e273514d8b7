package build

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
)

var known = []string{"linux/amd64", "linux/arm64", "linux/arm", "darwin/arm64", "windows/amd64", "linux/386"}

func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Platform
		wantErr string
	}{
		{name: "list", in: "linux/amd64,linux/arm64", want: []Platform{{"linux", "amd64", ""}, {"linux", "arm64", ""}}},
		{name: "spaces and newlines", in: "linux/amd64\n darwin/arm64 ", want: []Platform{{"linux", "amd64", ""}, {"darwin", "arm64", ""}}},
		{name: "variants", in: "linux/arm/v7,linux/arm64/v8,linux/amd64/v3", want: []Platform{{"linux", "arm", "v7"}, {"linux", "arm64", "v8"}, {"linux", "amd64", "v3"}}},
		{name: "duplicates collapse", in: "linux/amd64,linux/amd64", want: []Platform{{"linux", "amd64", ""}}},
		{name: "unknown platform lists valid ones", in: "linux/amd65", wantErr: `unknown platform "linux/amd65"; valid platforms (go tool dist list): linux/amd64, linux/arm64`},
		{name: "not os/arch", in: "linux", wantErr: `platform "linux" is not os/arch[/variant]`},
		{name: "too many parts", in: "linux/arm/v7/x", wantErr: "is not os/arch[/variant]"},
		{name: "unknown variant", in: "linux/arm/v9", wantErr: `unknown arm variant "v9"; valid: v5, v6, v7`},
		{name: "variant where none exist", in: "windows/amd64/v2,darwin/arm64/foo", wantErr: `unknown arm64 variant "foo"`},
		{name: "empty", in: " , ", wantErr: "no platforms given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlatforms(tt.in, known)
			if tt.wantErr != "" {
				// As the command prints it: options named as flags.
				if err == nil || !strings.Contains(cli.Flags(err).Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("platforms (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlatformEnv(t *testing.T) {
	tests := []struct {
		p    Platform
		want []string
		dir  string
	}{
		{Platform{"linux", "arm", "v7"}, []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, "linux_arm_v7"},
		{Platform{"linux", "arm64", "v8"}, []string{"GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0"}, "linux_arm64_v8"},
		{Platform{"linux", "amd64", "v3"}, []string{"GOOS=linux", "GOARCH=amd64", "GOAMD64=v3"}, "linux_amd64_v3"},
		{Platform{"windows", "amd64", ""}, []string{"GOOS=windows", "GOARCH=amd64"}, "windows_amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.p.env()); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if got := tt.p.dirSuffix(); got != tt.dir {
				t.Errorf("dirSuffix = %q, want %q", got, tt.dir)
			}
		})
	}
}

func TestExecName(t *testing.T) {
	for in, want := range map[string]string{
		"example.com/app":          "app",
		"example.com/app/cmd/tool": "tool",
		"example.com/app/v2":       "app",
		"example.com/app/v2/cmd/x": "x",
		"example.com/v2":           "example.com",
	} {
		if got := execName(in); got != want {
			t.Errorf("execName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLDFlagsTemplate(t *testing.T) {
	data := templateData{Version: "1.2.3", Commit: "abc", ShortCommit: "a", Date: "2026-01-02T03:04:05Z", Env: map[string]string{"FOO": "bar"}}
	tests := []struct {
		name, tmpl, want, wantErr string
	}{
		{name: "fields", tmpl: "-X main.v={{.Version}} -X main.c={{.Commit}} -X main.d={{.Date}} -X main.s={{.ShortCommit}}", want: "-X main.v=1.2.3 -X main.c=abc -X main.d=2026-01-02T03:04:05Z -X main.s=a"},
		{name: "env and platform", tmpl: "-X main.f={{.Env.FOO}} -X main.p={{.Os}}/{{.Arch}}", want: "-X main.f=bar -X main.p=linux/arm64"},
		{name: "unset env is an error", tmpl: "{{.Env.NOPE}}", wantErr: `map has no entry for key "NOPE"; set that environment variable`},
		{name: "unknown field", tmpl: "{{.Versoin}}", wantErr: "--ldflags template: no field .Versoin; valid: .Version, .Tag, .Commit, .ShortCommit, .Date, .Timestamp, .Env, .Os, .Arch, .Variant"},
		{name: "syntax", tmpl: "{{.Version", wantErr: "--ldflags template: ldflags:1: unclosed action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := parseLDFlags(tt.tmpl)
			var got string
			if err == nil {
				got, err = data.render(tmpl, Platform{"linux", "arm64", ""})
			}
			if tt.wantErr != "" {
				// As the command prints it: options named as flags.
				if err == nil || !strings.Contains(cli.Flags(err).Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
