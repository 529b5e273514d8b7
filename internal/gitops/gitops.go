// Package gitops pins image references in deployment manifests to a digest:
// Kubernetes YAML, kustomization.yaml and Helm values. It edits the text in
// place, so formatting and comments survive and the diff a workflow commits
// is the one line that changed.
package gitops

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"
)

// Target is the image to pin.
type Target struct {
	// Match lists the repositories that refer to this image in the
	// manifests (registry/path, no tag or digest). Repository itself
	// always matches.
	Match []string
	// Repository is where the manifests should pull from.
	Repository string
	// Digest is the image's digest, sha256:….
	Digest string
	// Tag, if set, is kept beside the digest where a Helm chart joins
	// repository and tag ("1.2.3@sha256:…").
	Tag string
}

// Change is one edited value.
type Change struct {
	File string // relative to the directory rewritten
	Line int
	Old  string
	New  string
}

// Skipped is a file that could not be read as YAML (a Helm template, say).
type Skipped struct {
	File   string
	Reason string
}

// Result lists what Rewrite changed and what it left alone.
type Result struct {
	Changes []Change
	Skipped []Skipped
}

// Rewrite pins every reference to t in the YAML files under dir. Each file
// is rewritten atomically; with dryRun nothing is written.
//
// Everything is read and written through an os.Root on dir. A symlinked
// YAML is resolved while it stays inside: its target is pinned where it is,
// once, keeping its mode, and the link stays a link. One that leads out is
// not followed but listed as skipped: pinning it would copy whatever it
// points at (a kubeconfig, another checkout's secrets) into the repository
// a workflow commits.
func Rewrite(dir string, t Target, dryRun bool) (Result, error) {
	m, err := newMatcher(t)
	if err != nil {
		return Result{}, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Result{}, fmt.Errorf("rewriting manifests in %s: %w", dir, err)
	}
	defer root.Close()
	var (
		res  Result
		done []fs.FileInfo // files pinned already, reached by another name
	)
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || (d.Name() == "templates" && isChart(root, path.Dir(name))) {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		file := name
		if d.Type()&fs.ModeSymlink != 0 {
			target, why := resolve(root, name)
			if why != "" {
				res.Skipped = append(res.Skipped, Skipped{File: name, Reason: why})
				return nil
			}
			file = target
		} else if !d.Type().IsRegular() {
			return nil
		}
		info, err := root.Stat(filepath.FromSlash(file))
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		if slices.ContainsFunc(done, func(o fs.FileInfo) bool { return os.SameFile(o, info) }) {
			return nil
		}
		done = append(done, info)
		return m.rewriteFile(root, file, info.Mode().Perm(), dryRun, &res)
	})
	if err != nil {
		return Result{}, fmt.Errorf("rewriting manifests in %s: %w", dir, err)
	}
	return res, nil
}

// rewriteFile pins the references in file, a regular file in root, and
// writes it back with its mode unless dryRun.
func (m *matcher) rewriteFile(root *os.Root, file string, perm fs.FileMode, dryRun bool, res *Result) error {
	data, err := root.ReadFile(filepath.FromSlash(file))
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	edits, err := m.file(data, path.Base(file))
	if err != nil {
		res.Skipped = append(res.Skipped, Skipped{File: file, Reason: err.Error()})
		return nil
	}
	if len(edits) == 0 {
		return nil
	}
	out, err := apply(data, edits)
	if err != nil {
		return fmt.Errorf("editing %s: %w", file, err)
	}
	for _, e := range edits {
		res.Changes = append(res.Changes, Change{File: file, Line: e.line, Old: e.old, New: e.new})
	}
	if dryRun {
		return nil
	}
	return writeFile(root, file, out, perm)
}

// resolve follows the symlink name, and any it leads to, as long as they
// stay inside root, to the regular file at the end; or says why not.
func resolve(root *os.Root, name string) (file, why string) {
	p, link := name, ""
	for hops := 0; hops < 40; hops++ {
		st, err := root.Lstat(filepath.FromSlash(p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Sprintf("a symlink to %s, which does not exist", link)
		case err != nil:
			// A directory on the way that leads out, say.
			return "", fmt.Sprintf("a symlink to %s, not followed: %v", link, err)
		case st.Mode()&fs.ModeSymlink == 0 && st.Mode().IsRegular():
			return p, ""
		case st.Mode()&fs.ModeSymlink == 0:
			return "", fmt.Sprintf("a symlink to %s, not a file", link)
		}
		if link, err = root.Readlink(filepath.FromSlash(p)); err != nil {
			return "", err.Error()
		}
		next := path.Join(path.Dir(p), filepath.ToSlash(link))
		if filepath.IsAbs(link) || !fs.ValidPath(next) {
			return "", fmt.Sprintf("a symlink to %s, outside the manifests; not followed", link)
		}
		p = next
	}
	return "", "a symlink in a loop"
}

// writeFile replaces name in root with data atomically: a temporary file
// beside it, renamed over it, all inside the root.
func writeFile(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	file := filepath.FromSlash(name)
	var (
		tmp string
		f   *os.File
		err error
	)
	for range 10 {
		tmp = filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		if f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer root.Remove(tmp) // a no-op once renamed
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Chmod(tmp, perm)
	}
	if err == nil {
		err = root.Rename(tmp, file)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func isChart(root *os.Root, dir string) bool {
	_, err := root.Stat(filepath.FromSlash(path.Join(dir, "Chart.yaml")))
	return err == nil
}

type matcher struct {
	names map[string]bool // normalised repository names
	t     Target
	ref   string // repository@digest
}

func newMatcher(t Target) (*matcher, error) {
	if !strings.HasPrefix(t.Digest, "sha256:") || len(t.Digest) != len("sha256:")+64 {
		return nil, fmt.Errorf("digest %q is not sha256:<64 hex>", t.Digest)
	}
	m := &matcher{names: map[string]bool{}, t: t, ref: t.Repository + "@" + t.Digest}
	for _, r := range append([]string{t.Repository}, t.Match...) {
		repo, err := name.NewRepository(r)
		if err != nil {
			return nil, fmt.Errorf("repository %q: %w", r, err)
		}
		m.names[repo.Name()] = true
	}
	return m, nil
}

// matches reports whether an image reference (with or without tag and
// digest) names one of the target's repositories.
func (m *matcher) matches(ref string) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		// repo:tag@digest is valid in Kubernetes but not to ParseReference.
		if i := strings.LastIndex(ref, "@"); i > 0 {
			return m.matches(ref[:i])
		}
		return false
	}
	return m.names[r.Context().Name()]
}

func (m *matcher) matchesRepo(repo string) bool {
	r, err := name.NewRepository(repo)
	return err == nil && m.names[r.Name()]
}

// edit replaces one scalar, or inserts a line when line > 0 and node is nil.
type edit struct {
	node     *yaml.Node // the scalar to replace
	after    *yaml.Node // insert a new line after this node's line…
	indent   int        // …with this indentation
	key      string     // …as "key: value"
	deleting bool       // remove the line of node's key…
	comment  string     // …leaving this comment of it on a line of its own
	in       *yaml.Node // the mapping a line is inserted in or removed from
	line     int
	old, new string
}

func (m *matcher) file(data []byte, base string) ([]edit, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var edits []edit
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		kustomization := base == "kustomization.yaml" || base == "kustomization.yml" || scalar(root, "kind") == "Kustomization"
		m.walk(root, kustomization, &edits)
	}
	// Values already pinned are not changes.
	kept := edits[:0]
	for _, e := range edits {
		if e.node != nil && !e.deleting && e.old == e.new {
			continue
		}
		kept = append(kept, e)
	}
	return kept, nil
}

func scalar(n *yaml.Node, key string) string {
	if v := value(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func value(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func keyNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func (m *matcher) walk(n *yaml.Node, kustomization bool, edits *[]edit) {
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			m.walk(c, kustomization, edits)
		}
	case yaml.MappingNode:
		if kustomization {
			if imgs := value(n, "images"); imgs != nil && imgs.Kind == yaml.SequenceNode {
				for _, img := range imgs.Content {
					m.kustomizeImage(img, edits)
				}
			}
		}
		m.helmImage(n, edits)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "image" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" && m.matches(v.Value) {
				*edits = append(*edits, m.replace(v, m.ref))
				continue
			}
			if kustomization && k.Value == "images" {
				continue
			}
			m.walk(v, kustomization, edits)
		}
	}
}

func (m *matcher) replace(n *yaml.Node, to string) edit {
	return edit{node: n, line: n.Line, old: n.Value, new: to}
}

// kustomizeImage pins one entry of a kustomization's images: list.
func (m *matcher) kustomizeImage(img *yaml.Node, edits *[]edit) {
	nameNode := value(img, "name")
	newName := value(img, "newName")
	nameKey := keyNode(img, "name")
	target := ""
	switch {
	case nameNode == nil:
		return
	case newName != nil && m.matchesRepo(newName.Value):
		target = newName.Value
	case newName == nil && nameNode != nil && nameNode.Kind == yaml.ScalarNode && m.matchesRepo(nameNode.Value):
		target = nameNode.Value
	default:
		return
	}
	if target != m.t.Repository {
		if newName != nil {
			*edits = append(*edits, m.replace(newName, m.t.Repository))
		} else {
			*edits = append(*edits, edit{after: nameNode, in: img, indent: nameKey.Column - 1, key: "newName", line: nameNode.Line + 1, new: m.t.Repository})
		}
	}
	if d := value(img, "digest"); d != nil {
		if d.Value != m.t.Digest {
			*edits = append(*edits, m.replace(d, m.t.Digest))
		}
	} else {
		*edits = append(*edits, edit{after: nameNode, in: img, indent: nameKey.Column - 1, key: "digest", line: nameNode.Line + 1, new: m.t.Digest})
	}
	// A digest wins over newTag in kustomize, but a stale tag beside it
	// misleads whoever reads the file.
	for i := 0; i+1 < len(img.Content); i += 2 {
		if k := img.Content[i]; k.Value == "newTag" {
			// Whoever wrote the comment meant it to be read.
			comment := cmp.Or(img.Content[i+1].LineComment, k.LineComment)
			*edits = append(*edits, edit{node: k, deleting: true, comment: comment, in: img, line: k.Line, old: "newTag: " + img.Content[i+1].Value})
		}
	}
}

// helmImage pins a values block of the common chart shape
// {repository: …, tag: …[, digest: …]}.
func (m *matcher) helmImage(n *yaml.Node, edits *[]edit) {
	repo := value(n, "repository")
	if repo == nil || repo.Kind != yaml.ScalarNode || !m.matchesRepo(joinRegistry(scalar(n, "registry"), repo.Value)) {
		return
	}
	if reg := value(n, "registry"); reg != nil {
		full := joinRegistry(reg.Value, repo.Value)
		if full != m.t.Repository {
			r, _ := name.NewRepository(m.t.Repository)
			*edits = append(*edits, m.replace(reg, r.RegistryStr()), m.replace(repo, r.RepositoryStr()))
		}
	} else if repo.Value != m.t.Repository {
		*edits = append(*edits, m.replace(repo, m.t.Repository))
	}
	if d := value(n, "digest"); d != nil {
		*edits = append(*edits, m.replace(d, m.t.Digest))
		return
	}
	if tag := value(n, "tag"); tag != nil {
		// Charts join "{{ repository }}:{{ tag }}"; tag@digest keeps that
		// valid and pins it.
		old := tag.Value
		if i := strings.Index(old, "@"); i >= 0 {
			old = old[:i]
		}
		if m.t.Tag != "" {
			old = m.t.Tag
		}
		if old == "" {
			old = "pinned"
		}
		*edits = append(*edits, m.replace(tag, old+"@"+m.t.Digest))
	}
}

func joinRegistry(registry, repo string) string {
	if registry == "" {
		return repo
	}
	return strings.TrimSuffix(registry, "/") + "/" + repo
}

// apply performs the edits on the text, last first so offsets hold.
func apply(data []byte, edits []edit) ([]byte, error) {
	lines := splitLines(data)
	type op struct {
		line, col int
		fn        func()
	}
	var ops []op
	for _, e := range edits {
		e := e
		if n := cmp.Or(e.node, e.after); n.Line < 1 || n.Line > len(lines) {
			return nil, fmt.Errorf("line %d: value not where the parser put it", n.Line)
		}
		if e.in != nil {
			if err := lineEditable(lines, e); err != nil {
				return nil, err
			}
		}
		switch {
		case e.deleting && e.comment != "":
			ops = append(ops, op{e.node.Line, -1, func() {
				l := lines[e.node.Line-1]
				end := l[len(bytes.TrimRight(l, "\r\n\u0085\u2028\u2029")):]
				if len(end) == 0 {
					end = []byte("\n")
				}
				lines[e.node.Line-1] = append([]byte(strings.Repeat(" ", e.node.Column-1)+e.comment), end...)
			}})
		case e.deleting:
			ops = append(ops, op{e.node.Line, -1, func() { lines[e.node.Line-1] = nil }})
		case e.after != nil:
			text := fmt.Sprintf("%s%s: %s\n", strings.Repeat(" ", e.indent), e.key, e.new)
			ops = append(ops, op{e.after.Line, 1 << 30, func() {
				l := lines[e.after.Line-1]
				if !bytes.HasSuffix(l, []byte("\n")) {
					l = append(append([]byte{}, l...), '\n')
				}
				lines[e.after.Line-1] = append(append([]byte{}, l...), text...)
			}})
		default:
			line := lines[e.node.Line-1]
			start := offset(line, e.node)
			end, err := tokenEnd(line, start, e.node)
			if err != nil {
				return nil, err
			}
			text := quote(e.node.Style, e.new)
			if start == end && start > 0 && line[start-1] == ':' {
				text = " " + text // an empty value, right after its key
			}
			ops = append(ops, op{e.node.Line, start, func() {
				l := lines[e.node.Line-1]
				var b []byte
				b = append(b, l[:start]...)
				b = append(b, text...)
				b = append(b, l[end:]...)
				lines[e.node.Line-1] = b
			}})
		}
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].line != ops[j].line {
			return ops[i].line > ops[j].line
		}
		return ops[i].col > ops[j].col
	})
	for _, o := range ops {
		o.fn()
	}
	return bytes.Join(lines, nil), nil
}

// splitLines splits data after each line break as yaml counts them (a lone
// \r, NEL and the Unicode line and paragraph separators too), so that a
// node's line n is lines[n-1].
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for {
		i := bytes.IndexAny(data, "\r\n\u0085\u2028\u2029")
		if i < 0 {
			return append(lines, data)
		}
		_, size := utf8.DecodeRune(data[i:])
		if bytes.HasPrefix(data[i:], []byte("\r\n")) {
			size = 2
		}
		lines = append(lines, data[:i+size])
		data = data[i+size:]
	}
}

// lineEditable reports whether e can insert or remove a whole line: only
// in a block mapping, beside a key and value that have the line to
// themselves.
func lineEditable(lines [][]byte, e edit) error {
	key, val := e.after, e.after
	for i := 0; e.deleting && i+1 < len(e.in.Content); i += 2 {
		if e.in.Content[i] == e.node {
			key, val = e.node, e.in.Content[i+1]
		}
	}
	if e.in.Style&yaml.FlowStyle != 0 {
		return fmt.Errorf("line %d: cannot add or remove a key of a {flow: mapping} in place; write it as a block", e.in.Line)
	}
	if line := lines[key.Line-1]; e.deleting && len(bytes.TrimLeft(line[:offset(line, key)], " ")) > 0 {
		return fmt.Errorf("line %d: cannot remove %s in place; put it on a line of its own", key.Line, key.Value)
	}
	if val.Kind != yaml.ScalarNode || val.Line != key.Line {
		return fmt.Errorf("line %d: cannot edit beside a multi-line value in place", val.Line)
	}
	line := lines[val.Line-1]
	_, err := tokenEnd(line, offset(line, val), val)
	return err
}

// offset is where a node starts in its line: yaml counts columns in
// characters, and not the byte order mark.
func offset(line []byte, n *yaml.Node) int {
	i := 0
	if n.Line == 1 {
		i = len(line) - len(bytes.TrimPrefix(line, []byte("\ufeff")))
	}
	for c := 1; c < n.Column && i < len(line); c++ {
		_, size := utf8.DecodeRune(line[i:])
		i += size
	}
	return i
}

// tokenEnd finds where a one-line scalar's text ends in its line.
func tokenEnd(line []byte, start int, n *yaml.Node) (int, error) {
	if start >= len(line) {
		return 0, fmt.Errorf("line %d: value not where the parser put it", n.Line)
	}
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("line %d: cannot pin a list or mapping; give a single value", n.Line)
	}
	// An &anchor or a !tag before the value is not edited: it starts where
	// the parser puts the node, so the value must start there too.
	switch n.Style {
	case yaml.DoubleQuotedStyle:
		if line[start] != '"' {
			break
		}
		for i := start + 1; i < len(line); i++ {
			if line[i] == '\\' {
				i++
				continue
			}
			if line[i] == '"' {
				return i + 1, nil
			}
		}
	case yaml.SingleQuotedStyle:
		if line[start] != '\'' {
			break
		}
		for i := start + 1; i < len(line); i++ {
			if line[i] == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
					continue
				}
				return i + 1, nil
			}
		}
	case 0:
		end := start + len(n.Value)
		if n.Value == "" && start > 0 && line[start-1] != ':' && line[start-1] != ' ' {
			break // {key} in a flow mapping: no room for a value
		}
		if end <= len(line) && string(line[start:end]) == n.Value {
			return end, nil
		}
	}
	return 0, fmt.Errorf("line %d: cannot edit a multi-line, block, tagged or anchored value in place", n.Line)
}

func quote(style yaml.Style, s string) string {
	switch style {
	case yaml.DoubleQuotedStyle:
		return `"` + s + `"`
	case yaml.SingleQuotedStyle:
		return "'" + s + "'"
	}
	return s
}
