// Package record reads and writes slipway.json, the file of record that
// steps hand to each other: the build writes it, later steps read it and add
// their own sections instead of rebuilding.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipwayci/slipway/internal/safefile"
)

// File is the record's name inside the output directory.
const File = "slipway.json"

// SchemaVersion is the version of the record's layout that this slipway
// writes and the newest it reads.
const SchemaVersion = 1

// Record describes one build of one commit.
type Record struct {
	SchemaVersion int        `json:"schemaVersion"`
	Slipway       string     `json:"slipway"` // version of slipway that wrote it
	Module        string     `json:"module"`
	Version       string     `json:"version"`
	Commit        string     `json:"commit,omitempty"`
	Date          string     `json:"date"` // RFC 3339, the source date
	GoVersion     string     `json:"goVersion"`
	Artifacts     []Artifact `json:"artifacts"`
	Image         *Image     `json:"image,omitempty"`
}

// Artifact is one binary.
type Artifact struct {
	Name string `json:"name"`
	// Path is relative to the record's directory, with forward slashes.
	Path      string `json:"path"`
	Platform  string `json:"platform"` // os/arch[/variant]
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Variant   string `json:"variant,omitempty"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Package   string `json:"package"` // the main package's import path
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
}

// ErrNotFound is returned by Load when the directory has no record.
var ErrNotFound = errors.New("no " + File + " found")

// Load reads the record in dir.
func Load(dir string) (*Record, error) {
	path := filepath.Join(dir, File)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading record: %w in %s; run slipway build first", ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading record: %w", err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("reading record %s: %w", path, err)
	}
	switch {
	case r.SchemaVersion == 0:
		return nil, fmt.Errorf("reading record %s: no schemaVersion; is it a slipway record?", path)
	case r.SchemaVersion > SchemaVersion:
		return nil, fmt.Errorf("reading record %s: schema version %d is newer than this slipway reads (%d); upgrade slipway", path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// Path turns a path the record holds, relative to the record's directory
// dir or absolute where it lies outside, into one to open: an absolute one
// as it is, a relative one joined to dir.
func Path(dir, p string) string {
	p = filepath.FromSlash(p)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Save writes the record into dir atomically.
func (r *Record) Save(dir string) error {
	r.SchemaVersion = SchemaVersion
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	return safefile.Write(filepath.Join(dir, File), append(data, '\n'), 0o644)
}

// GoRelease is the Go release that a version, as a toolchain or a binary's
// build information states it, names, without the experiments that may
// follow it: "go1.26.8" of "go1.26.8 X:jsonv2" or "go1.26.8-X:jsonv2".
func GoRelease(v string) string {
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	v, _, _ = strings.Cut(v, "-X:")
	return v
}
