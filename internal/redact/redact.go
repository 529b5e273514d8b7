// Package redact keeps credentials out of what slipway records: a URL given
// on a command line (--vulndb, a database mirror, --source) may carry a
// user and password, or a token in its query, and none of that may reach a
// statement, a report, the record, a summary or a log.
package redact

import (
	"net/url"
	"strings"
)

// URL returns s without credentials: no user or password, and no query
// parameter whose name says it holds a secret. Anything without a
// "scheme://" is returned as it is.
func URL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, tail := splitAuthority(rest)
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	fragment := ""
	if i := strings.Index(tail, "#"); i >= 0 {
		tail, fragment = tail[:i], tail[i:]
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	out := scheme + "://" + authority + path
	if hasQuery {
		var kept []string
		for _, p := range strings.Split(query, "&") {
			if name, _, _ := strings.Cut(p, "="); !secretName(name) {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out += "?" + strings.Join(kept, "&")
		}
	}
	return out + fragment
}

// Secrets lists the credentials in the URL s: its password, its user when
// there is no password (a token often stands there alone), and the values
// of its secret query parameters. A platform masks them, so that an error
// quoting the URL as given prints none of them.
func Secrets(s string) []string {
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil
	}
	var out []string
	authority, tail := splitAuthority(rest)
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, hasPass := strings.Cut(authority[:i], ":")
		switch {
		case hasPass && pass != "":
			out = append(out, pass, unescape(pass))
		case user != "":
			out = append(out, user, unescape(user))
		}
	}
	tail, _, _ = strings.Cut(tail, "#")
	if _, query, ok := strings.Cut(tail, "?"); ok {
		for _, p := range strings.Split(query, "&") {
			if name, value, _ := strings.Cut(p, "="); secretName(name) && value != "" {
				out = append(out, value, unescape(value))
			}
		}
	}
	return dedupe(out)
}

// splitAuthority splits what follows "scheme://" into the authority (user
// info and host) and the rest: path, query and fragment.
func splitAuthority(rest string) (authority, tail string) {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[:i], rest[i:]
	}
	return rest, ""
}

// secretName tells whether a query parameter's name says it holds a
// secret: tokens, keys, passwords, signatures and credentials, as cloud
// storage and package registries name them (X-Amz-Signature, sig, …).
func secretName(name string) bool {
	n := strings.ToLower(unescape(name))
	for _, w := range []string{"token", "secret", "password", "passwd", "pwd", "key", "auth", "sig", "credential", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		dup := false
		for _, o := range out {
			dup = dup || o == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}
