package proxy

import (
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// rule is a -require-scope rule with its check.
type rule struct {
	method string // "" for every method
	prefix string
	check  introspect.Check
}

// rules are the -require-scope rules.
type rules []rule

// newRules builds the checks of rs, which config.Load checked.
func newRules(rs []config.ScopeRule) rules {
	out := make(rules, len(rs))
	for i, r := range rs {
		out[i] = rule{method: r.Method, prefix: r.Prefix, check: introspect.AllScopes(r.Scopes...)}
	}
	return out
}

// match returns the rule for a request with method to p: among the rules
// whose prefix p starts with and whose method is the request's (a GET rule
// covers HEAD, which servers answer as GET) or unset, the one with the
// longest prefix, and for equal prefixes the one with a method. Methods
// are compared without regard to case. Nil when no rule matches.
func (rs rules) match(method, p string) *rule {
	var best *rule
	for i := range rs {
		r := &rs[i]
		if !strings.HasPrefix(p, r.prefix) {
			continue
		}
		if r.method != "" && !strings.EqualFold(r.method, method) &&
			!(r.method == http.MethodGet && strings.EqualFold(method, http.MethodHead)) {
			continue
		}
		if best == nil || len(r.prefix) > len(best.prefix) || len(r.prefix) == len(best.prefix) && r.method != "" {
			best = r
		}
	}
	return best
}

// checks returns what a request with method to the decoded path p must
// pass: the rules of every path the upstream may route p to, since more
// checks only refuse more and every one must pass. Those are p as written
// and resolved, in two ways when they differ: repeated slashes merged
// first (Go's ServeMux, nginx, Tomcat) or kept (RFC 3986's
// remove_dot_segments: Jetty, Envoy), which make "/b" and "/a/b" of
// "/a//../b". When p has a ';' or a '\', the same of the paths other
// servers read: Java servlet containers (Tomcat, Jetty, Undertow) drop
// each segment's path parameters (";jsessionid=…"; "..;" is then ".."),
// IIS and ASP.NET read '\' as '/'. And for each path, the rule of the
// same path with a final slash, since a directory is usually served with
// or without it (a rule for "/admin/" covers "/admin").
func (rs rules) checks(method, p string) []introspect.Check {
	if len(rs) == 0 {
		return nil
	}
	var out []introspect.Check
	var seen []*rule
	add := func(q string) {
		r := rs.match(method, q)
		if r == nil {
			return
		}
		for _, s := range seen {
			if s == r {
				return
			}
		}
		seen = append(seen, r)
		out = append(out, r.check)
	}
	// The path as written, and as servlet containers and IIS read it.
	forms := []string{p}
	if strings.ContainsAny(p, `;\`) {
		slashed := strings.ReplaceAll(p, `\`, "/")
		forms = append(forms, withoutPathParams(p), slashed, withoutPathParams(slashed))
	}
	var buf [12]string // 4 forms, 3 paths each: no allocation
	paths := buf[:0]
	for _, f := range forms {
		paths = append(paths, f, cleanPath(f))
		if strings.Contains(f, "//") && strings.Contains(f, "/.") {
			paths = append(paths, removeDotSegments(f))
		}
	}
	for _, q := range paths {
		add(q)
		if !strings.HasSuffix(q, "/") {
			add(q + "/")
		}
	}
	return out
}

// cleanPath merges repeated slashes and resolves dot segments, as
// path.Clean does, but a trailing slash stays, and a final "." or ".."
// segment resolves to a directory, with a slash ("/a/b/.." is "/a/").
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		return p
	}
	c := path.Clean(p)
	dir := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	if dir && c != "/" {
		c += "/"
	}
	return c
}

// removeDotSegments is RFC 3986 §5.2.4's remove_dot_segments: "." and
// ".." segments resolved, empty segments kept ("/a//../b" is "/a/b").
func removeDotSegments(in string) string {
	out := make([]byte, 0, len(in))
	// dropLast removes the last segment of out and its "/".
	dropLast := func() {
		i := strings.LastIndexByte(string(out), '/')
		out = out[:max(i, 0)]
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			dropLast()
		case in == "/..":
			in = "/"
			dropLast()
		case in == "." || in == "..":
			in = ""
		default:
			i := strings.IndexByte(in[1:], '/') + 1
			if i == 0 {
				i = len(in)
			}
			out = append(out, in[:i]...)
			in = in[i:]
		}
	}
	return string(out)
}

// withoutPathParams removes the path parameters of each segment of p:
// from a ';' to the end of its segment ("/a;x=1/b;y" is "/a/b").
func withoutPathParams(p string) string {
	if !strings.Contains(p, ";") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i], _, _ = strings.Cut(seg, ";")
	}
	return strings.Join(segs, "/")
}

// authorize applies the rules to a request whose token the middleware
// accepted (ti, nil without a token under -optional-token): those of its
// method and of every method it asks the service to take it for
// (requestMethods). It answers a refused request through the middleware's
// responders and reports false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, ti *introspect.Introspection) bool {
	if len(s.rules) == 0 {
		return true
	}
	var buf [4]string
	for _, m := range requestMethods(r, buf[:0]) {
		for _, check := range s.rules.checks(m, r.URL.Path) {
			if err := introspect.Authorize(ti, check); err != nil {
				s.mw.WriteError(w, r, ti, err)
				return false
			}
		}
	}
	return true
}

// methodOverrides are the headers in which web frameworks take a method
// for the request's own (Symfony, Laravel, Rails, ASP.NET Core, Express's
// method-override): a POST with "X-HTTP-Method-Override: DELETE" is a
// DELETE to them.
var methodOverrides = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// requestMethods appends to ms the method of r and those it names in a
// method-override header (any spelling, '_' for '-') or in a "_method"
// query parameter. A "_method" in a form body is not seen: the rules of a
// service that reads one must not depend on the method.
func requestMethods(r *http.Request, ms []string) []string {
	ms = append(ms, r.Method)
	add := func(v string) {
		for m := range strings.SplitSeq(v, ",") {
			if m = strings.TrimSpace(m); m != "" && !slices.ContainsFunc(ms, func(x string) bool { return strings.EqualFold(x, m) }) {
				ms = append(ms, m)
			}
		}
	}
	for k, vs := range r.Header {
		for _, o := range methodOverrides {
			if len(k) == len(o) && config.HasPrefixFold(k, o) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	// The query is read only when a key could be _method once decoded:
	// it names "method", or has an escape that could spell it. Pairs are
	// decoded as PHP decodes them, leniently (a bad escape stays as it
	// is), since one url.ParseQuery refuses is still a pair to PHP.
	if _, q, ok := strings.Cut(r.RequestURI, "?"); ok && (strings.Contains(q, "method") || strings.ContainsRune(q, '%')) {
		for pair := range strings.SplitSeq(q, "&") {
			k, v, _ := strings.Cut(pair, "=")
			if isMethodParam(lenientUnescape(k)) {
				add(lenientUnescape(v))
			}
		}
	}
	return ms
}

// lenientUnescape decodes a query component as PHP does: '+' is a space,
// %XX its byte, and a '%' that does not start an escape stays as it is.
func lenientUnescape(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' {
			c = ' '
		} else if c == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				c = byte(v)
				i += 2
			}
		}
		b = append(b, c)
	}
	return string(b)
}

// isMethodParam reports whether the decoded query key k is _method to some
// framework: to PHP, once it drops the key's leading spaces, ends it at a
// NUL and reads '.' and ' ' as '_' (" .method", "_method\x00x").
func isMethodParam(k string) bool {
	k = strings.TrimLeft(k, " ")
	k, _, _ = strings.Cut(k, "\x00")
	return len(k) == len("_method") && k[1:] == "method" && (k[0] == '_' || k[0] == '.')
}
