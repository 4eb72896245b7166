package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/introspect-go/introspect/introspecttest"
)

// FuzzForwardAuthRules asks the forward-auth endpoint, as nginx does, about
// original requests of a token with the scope "read" alone, under rules
// that refuse it /admin and POST or DELETE on /api. Whatever the original
// URI, method and method-override header, an answer of 200 means that no
// path an upstream may make of the URI starts with a refused prefix, for
// any method the request names. The paths are made here independently of
// the proxy's rules: the decoded path as written, cleaned as Go's ServeMux
// and nginx clean it (path.Clean), resolved as RFC 3986 resolves it
// (net/url's ResolveReference, which keeps empty segments), each of them
// also without path parameters (";x", which servlet containers drop) and
// with '\' read as '/' (IIS). What the rules leave out by design is left
// out here too: case-insensitive upstreams, and upstreams that decode a
// path twice.
//
//	go test -run '^$' -fuzz FuzzForwardAuthRules -fuzztime 5m ./proxy
func FuzzForwardAuthRules(f *testing.F) {
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	f.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "fuzz", Scope: "read"})
	h := newHandler(f, []string{"-forward-auth", "-endpoint", as.IntrospectionURL(), "-client-id", clientID,
		"-forward-auth-ingress", "nginx", "-trusted-proxies", "127.0.0.1/32", "-access-log=false",
		"-require-scope", "/admin=admin", "-require-scope", "POST /api=write", "-require-scope", "DELETE /api=admin"},
		io.Discard)
	ask := func(uri, method, override string) int {
		r := httptest.NewRequest(http.MethodGet, "http://auth.internal/auth", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("X-Original-Uri", uri)
		r.Header.Set("X-Original-Method", method)
		if override != "" {
			r.Header.Set("X-Http-Method-Override", override)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	// The token is introspected once, then cached: the rest is in process.
	if code := ask("/public", "GET", ""); code != http.StatusOK {
		f.Fatalf("GET /public: %d, want 200", code)
	}
	if code := ask("/admin", "GET", ""); code != http.StatusForbidden {
		f.Fatalf("GET /admin: %d, want 403", code)
	}
	if as.Calls() != 1 {
		f.Fatalf("%d calls to the authorization server, want 1", as.Calls())
	}

	for _, seed := range [][3]string{
		{"/public", "GET", ""},
		{"/api/items", "GET", ""},
		{"/api/items", "POST", ""},
		{"/api/items", "GET", "DELETE"},
		{"/api/items?_method=DELETE", "GET", ""},
		{"/api/items?%5fmethod=delete", "GET", ""},
		{"/api/items?_method=PUT&_method=POST", "GET", ""},
		{"/public/../admin", "GET", ""},
		{"/public/%2e%2e/admin", "GET", ""},
		{"/public%2f..%2fadmin", "GET", ""},
		{"/public/..;/admin", "GET", ""},
		{"/public/..;x=1/admin/users", "GET", ""},
		{"/public;/../admin", "GET", ""},
		{`/public\..\admin`, "GET", ""},
		{"/public/%5c..%5cadmin", "GET", ""},
		{"/a//../admin", "GET", ""},
		{"/z/../admin//../public", "GET", ""},
		{"/z/../api//../public", "DELETE", ""},
		{"//admin", "GET", ""},
		{"/./admin", "GET", ""},
		{"/admin/..", "GET", ""},
		{"/api/..;/api/x", "post", ""},
		{"/x/..//api", "DELETE", ""},
		{"http://h/admin", "GET", ""},
		{"http:http://x/admin/users", "GET", ""},
		{"*", "OPTIONS", ""},
		{"/admin#frag", "GET", ""},
		{"/api", "GET", "post , get"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, uri, method, override string) {
		if !headerValue(uri) || !headerValue(method) || !headerValue(override) {
			t.Skip("not a header value a server would pass on")
		}
		code := ask(uri, method, override)
		switch code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("uri %q, method %q, override %q: status %d, want 200, 400 or 403", uri, method, override, code)
		}
		if code == http.StatusOK {
			refused(t, fmt.Sprintf("uri %q, method %q, override %q: allowed", uri, method, override), uri, method, override)
		}
	})
}

// refused fails t when an upstream may read the request target uri, with
// the methods the request names, as one the rules of the fuzzers refuse a
// token with the scope "read": anything under /admin, POST or DELETE under
// /api.
func refused(t *testing.T, what, uri, method, override string) {
	t.Helper()
	methods := namedMethods(uri, method, override)
	for _, p := range upstreamPaths(uri) {
		if strings.HasPrefix(p, "/admin") {
			t.Fatalf("%s, and an upstream may read the path %q", what, p)
		}
		if strings.HasPrefix(p, "/api") {
			for _, m := range methods {
				if strings.EqualFold(m, "POST") || strings.EqualFold(m, "DELETE") {
					t.Fatalf("%s, and an upstream may read %s %q", what, m, p)
				}
			}
		}
	}
}

// headerValue reports whether v can arrive as a header's value: no
// control character but tab, and no space at either end (servers trim it).
func headerValue(v string) bool {
	if v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// upstreamPaths are the paths that upstreams may make of the request
// target uri (see FuzzForwardAuthRules).
func upstreamPaths(uri string) []string {
	raw := uri
	if u, err := url.Parse(uri); err == nil && u.Scheme != "" {
		raw = u.EscapedPath() // absolute form: its path
		if u.Opaque != "" {
			// "http:http://x/admin": some servers read the rest as a URL.
			raw = u.Opaque
			if v, err := url.Parse(u.Opaque); err == nil && v.Scheme != "" {
				raw = v.EscapedPath()
			}
		}
		if raw == "" {
			raw = "/"
		}
	}
	raw, _, _ = strings.Cut(raw, "?")
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		decoded = raw
	}
	root, _ := url.Parse("http://upstream/")
	var out []string
	for _, form := range []string{decoded, strings.ReplaceAll(decoded, `\`, "/")} {
		for _, p := range []string{form, withoutParams(form)} {
			out = append(out, p, path.Clean(p), root.ResolveReference(&url.URL{Path: p}).Path)
		}
	}
	return out
}

// withoutParams drops each segment's path parameters, from ';' on.
func withoutParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

// namedMethods are the methods a request names: its own, those of a
// method-override header, and those of "_method" query parameters.
func namedMethods(uri, method, override string) []string {
	ms := []string{method}
	for m := range strings.SplitSeq(override, ",") {
		ms = append(ms, strings.TrimSpace(m))
	}
	if _, q, ok := strings.Cut(uri, "?"); ok {
		for pair := range strings.SplitSeq(q, "&") {
			k, v, _ := strings.Cut(pair, "=")
			if k, err := url.QueryUnescape(k); err == nil && k == "_method" {
				if v, err := url.QueryUnescape(v); err == nil {
					ms = append(ms, strings.TrimSpace(v))
				}
			}
		}
	}
	return ms
}

// FuzzReverseRules sends any request line, with a method-override header,
// through the reverse proxy to a real upstream, for a token with the scope
// "read" alone under the rules of FuzzForwardAuthRules, and checks what
// the upstream received: when the proxy forwarded the request, no path an
// upstream may make of the target it got starts with a refused prefix,
// for any method the request names there.
//
//	go test -run '^$' -fuzz FuzzReverseRules -fuzztime 5m ./proxy
func FuzzReverseRules(f *testing.F) {
	as := introspecttest.NewServer(introspecttest.WithClient(clientID, clientSecret))
	f.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "fuzz", Scope: "read"})
	received := make(chan *http.Request, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case received <- r.Clone(context.Background()):
		default: // never blocks the upstream: one request is sent at a time
		}
	}))
	f.Cleanup(up.Close)
	h := newHandler(f, []string{"-upstream", up.URL, "-endpoint", as.IntrospectionURL(), "-client-id", clientID,
		"-access-log=false", "-require-scope", "/admin=admin", "-require-scope", "POST /api=write", "-require-scope", "DELETE /api=admin"},
		io.Discard)
	send := func(method, target, override string) (*httptest.ResponseRecorder, *http.Request, bool) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer " + tok + "\r\n"
		if override != "" {
			raw += "X-Http-Method-Override: " + override + "\r\n"
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			return nil, nil, false // not a request net/http's server reads
		}
		r.RemoteAddr = "192.0.2.1:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		select {
		case got := <-received:
			return w, got, true
		default:
			return w, nil, true
		}
	}
	if w, got, _ := send("GET", "/public", ""); w.Code != http.StatusOK || got == nil {
		f.Fatalf("GET /public: %d, want 200 from the upstream", w.Code)
	}
	if w, got, _ := send("GET", "/admin", ""); w.Code != http.StatusForbidden || got != nil {
		f.Fatalf("GET /admin: %d, want 403 and nothing upstream", w.Code)
	}

	for _, seed := range [][3]string{
		{"GET", "/public", ""},
		{"POST", "/api/items", ""},
		{"GET", "/api/items", "DELETE"},
		{"GET", "/api/items?_method=DELETE", ""},
		{"GET", "/public/../admin", ""},
		{"GET", "/public/%2e%2e/admin", ""},
		{"GET", "/public%2f..%2fadmin", ""},
		{"GET", "/public/..;/admin", ""},
		{"GET", `/public\..\admin`, ""},
		{"GET", "/z/../admin//../public", ""},
		{"GET", "//admin", ""},
		{"GET", "http://api.example/admin", ""},
		{"GET", "http:http://x/admin/users", ""},
		{"GET", "http://api.example", ""},
		{"CONNECT", "api.example:443", ""},
		{"OPTIONS", "*", ""},
		{"post", "/api/x", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, method, target, override string) {
		if strings.ContainsAny(method+target+override, "\r\n") {
			t.Skip("one request line and one header")
		}
		w, got, ok := send(method, target, override)
		if !ok {
			t.Skip("not a request")
		}
		if got == nil {
			// The proxy's own refusals carry its challenge; a 400 without
			// one is the upstream's server refusing what the proxy sent,
			// which a more lenient server might serve.
			if (w.Code == http.StatusBadRequest || w.Code == http.StatusForbidden) && w.Header().Get("Www-Authenticate") != "" {
				return
			}
			t.Fatalf("%s %q (override %q): %d, and nothing upstream", method, target, override, w.Code)
		}
		refused(t, fmt.Sprintf("%s %q (override %q): the upstream got %s %q", method, target, override, got.Method, got.RequestURI),
			got.RequestURI, got.Method, got.Header.Get("X-Http-Method-Override"))
	})
}
