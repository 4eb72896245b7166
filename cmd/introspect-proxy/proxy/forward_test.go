package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// ingress describes the original request as one ingress sends it to the
// auth endpoint: the path it calls and its headers.
type ingress struct {
	name    string
	args    []string // the proxy's flags for it
	request func(method, uri string) (path string, headers []string)
}

var ingresses = []ingress{
	{name: "nginx", request: func(method, uri string) (string, []string) {
		// auth_request to a location with proxy_set_header X-Original-URI
		// $request_uri and X-Original-Method $request_method.
		return "/auth", []string{"X-Original-URI", uri, "X-Original-Method", method}
	}},
	{name: "caddy", args: []string{"-forward-auth-ingress", "caddy"}, request: func(method, uri string) (string, []string) {
		return "/auth", []string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri, "X-Forwarded-Host", "app.example", "X-Forwarded-Proto", "https"}
	}},
	{name: "traefik", request: func(method, uri string) (string, []string) {
		return "/", []string{"X-Forwarded-Method", method, "X-Forwarded-Uri", uri, "X-Forwarded-Host", "app.example", "X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.7"}
	}},
	{name: "envoy", args: []string{"-forward-auth-path-prefix", "/ext_authz"}, request: func(method, uri string) (string, []string) {
		// ext_authz http_service with path_prefix: the original method,
		// the prefix and the original path.
		return "/ext_authz" + uri, nil
	}},
}

// TestForwardAuthIngresses asks the forward-auth endpoint about original
// requests as each ingress describes them: the rules of the original
// method and path apply, an accepted token gets 200 with the identity
// headers, the others the RFC 6750 answer with its challenge.
func TestForwardAuthIngresses(t *testing.T) {
	as := newAS(t)
	reader := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "web", Username: "alice@example.com", Scope: "read", Extra: map[string]any{"tenant": "acme"}})
	writer := as.Issue(introspecttest.Claims{Subject: "bob", Scope: "read orders:write"})
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory", Scope: "read"})
	as.Revoke(revoked)
	for _, in := range ingresses {
		t.Run(in.name, func(t *testing.T) {
			args := append(forwardArgs(as, "-require-scope", "/admin=admin", "-require-scope", "POST /orders=orders:write", "-identity-claims", "tenant"), in.args...)
			p := startProxy(t, args)
			for _, tc := range []struct {
				name, method, uri, auth string
				want                    int
				wantChall               string
				wantSubject             string
				outage                  bool
			}{
				{"valid", "GET", "/orders?page=2", bearer(reader), 200, "", "alice", false},
				{"missing", "GET", "/orders", "", 401, `Bearer realm="api"`, "", false},
				{"malformed", "GET", "/orders", "Bearer a b", 400, `error="invalid_request"`, "", false},
				{"unknown", "GET", "/orders", bearer("nope"), 401, `error="invalid_token"`, "", false},
				{"revoked", "GET", "/orders", bearer(revoked), 401, `error="invalid_token"`, "", false},
				{"AS outage", "GET", "/orders", bearer(as.Issue(introspecttest.Claims{Subject: "carol"})), 503, "", "", true},
				{"path rule", "GET", "/admin/users", bearer(reader), 403, `error="insufficient_scope"`, "", false},
				{"path rule, backslashes", "GET", `/public\..\admin\users`, bearer(reader), 403, `error="insufficient_scope"`, "", false},
				{"path rule, servlet dot segment", "GET", "/public/..;/admin/users", bearer(reader), 403, `error="insufficient_scope"`, "", false},
				{"method rule", "POST", "/orders", bearer(reader), 403, `scope="orders:write"`, "", false},
				{"method rule met", "POST", "/orders", bearer(writer), 200, "", "bob", false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.outage {
						as.SetFault(introspecttest.Respond(http.StatusBadGateway, "text/plain", "down"))
						t.Cleanup(as.ClearFault)
					}
					path, headers := in.request(tc.method, tc.uri)
					method := http.MethodGet
					if in.name == "envoy" {
						method = tc.method
					}
					got := do(t, method, p.url+path, tc.auth, headers...)
					assert.Equal(t, tc.want, got.status, got.body)
					if tc.wantChall != "" {
						assert.Contains(t, got.challenge, tc.wantChall)
					}
					if tc.outage {
						assert.Empty(t, got.challenge, "no challenge: the token was not refused")
					}
					if tc.want == http.StatusOK {
						assert.Empty(t, got.challenge)
						assert.Equal(t, tc.wantSubject, got.header.Get("X-Auth-Subject"))
						// Every identity header is there, empty when the
						// token has no value, so that an ingress copying it
						// replaces a header of the client's.
						for _, h := range []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope", "X-Auth-Username", "X-Auth-Claim-Tenant"} {
							assert.Len(t, got.header.Values(h), 1, h)
						}
					}
				})
			}
			got := do(t, http.MethodGet, p.url+pathOf(in, "/orders"), bearer(reader), headersOf(in, "GET", "/orders")...)
			require.Equal(t, http.StatusOK, got.status)
			assert.Equal(t, map[string]string{
				"X-Auth-Subject": "alice", "X-Auth-Client-Id": "web", "X-Auth-Scope": "read",
				"X-Auth-Username": "alice@example.com", "X-Auth-Claim-Tenant": "acme",
			}, identityHeaders(got.header))
			// The access log names the original request.
			var found bool
			for _, l := range p.logs.lines(t, "request") {
				if l["original_method"] == "POST" && l["original_path"] == "/orders" && l["outcome"] == "insufficient_scope" {
					found = true
				}
			}
			assert.True(t, found, "no access log line of the refused POST /orders:\n%s", p.logs.String())
		})
	}
}

func pathOf(in ingress, uri string) string {
	p, _ := in.request("GET", uri)
	return p
}

func headersOf(in ingress, method, uri string) []string {
	_, h := in.request(method, uri)
	return h
}

// identityHeaders returns the X-Auth- headers of h.
func identityHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if strings.HasPrefix(k, "X-Auth-") {
			out[k] = strings.Join(v, "|")
		}
	}
	return out
}

// TestForwardAuthNeverEchoes sends identity headers of the client's own
// with the auth request: the answer holds the token's, never the client's.
func TestForwardAuthNeverEchoes(t *testing.T) {
	as := newAS(t)
	p := startProxy(t, forwardArgs(as))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	got := do(t, http.MethodGet, p.url+"/auth", bearer(tok),
		"X-Original-URI", "/x", "X-Original-Method", "GET",
		"X-Auth-Subject", "root", "X-Auth-Scope", "admin", "X-Auth-Claim-Role", "admin", "X-Auth_Username", "root")
	require.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, map[string]string{"X-Auth-Subject": "alice", "X-Auth-Client-Id": "", "X-Auth-Scope": "", "X-Auth-Username": ""},
		identityHeaders(got.header))
	for k := range got.header {
		assert.NotContains(t, strings.ToLower(k), "x-auth_", k)
	}
}

// TestForwardAuthUntrustedSource checks that the headers describing the
// original request are read only from -trusted-proxies. From anyone else a
// request that names an original request is refused (400), and so is any
// request under an ingress that names it in headers (nginx, Caddy,
// Traefik): its own URI, the auth endpoint's, would void every path's rules
// (an ingress left out of -trusted-proxies). Envoy's own method and URI
// count, its forwarding headers ignored.
func TestForwardAuthUntrustedSource(t *testing.T) {
	type untrustedCase struct {
		name    string
		path    string
		headers []string
		want    int
	}
	as := newAS(t)
	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	for _, mode := range []struct {
		ingress string
		cases   []untrustedCase
	}{
		{"auto", []untrustedCase{
			{"nginx headers naming a public path", "/admin", []string{"X-Original-URI", "/public", "X-Original-Method", "GET"}, 400},
			{"traefik headers naming a public path", "/admin", []string{"X-Forwarded-Uri", "/public", "X-Forwarded-Method", "GET"}, 400},
			{"a method header alone", "/public", []string{"X-Forwarded-Method", "GET"}, 400},
			{"headers naming the admin path", "/public", []string{"X-Original-URI", "/admin", "X-Forwarded-Uri", "/admin"}, 400},
			{"no header, the admin path", "/admin", nil, 403},
			{"no header, a public path", "/public", nil, 200},
			{"a forwarded host alone", "/public", []string{"X-Forwarded-Host", "evil.example"}, 200},
		}},
		{"nginx", []untrustedCase{
			{"its headers", "/auth", []string{"X-Original-URI", "/public", "X-Original-Method", "GET"}, 400},
			{"no header", "/public", nil, 400},
			{"a forwarded host alone", "/public", []string{"X-Forwarded-Host", "evil.example"}, 400},
		}},
		{"envoy", []untrustedCase{
			{"headers naming a public path", "/admin", []string{"X-Forwarded-Uri", "/public", "X-Forwarded-Method", "GET"}, 403},
			{"its own public path", "/public", []string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https"}, 200},
		}},
	} {
		t.Run(mode.ingress, func(t *testing.T) {
			p := startProxy(t, forwardArgs(as, "-trusted-proxies", "192.0.2.0/24", "-require-scope", "/admin=admin",
				"-forward-auth-ingress", mode.ingress))
			for _, tc := range mode.cases {
				got := do(t, http.MethodGet, p.url+tc.path, bearer(reader), tc.headers...)
				assert.Equal(t, tc.want, got.status, tc.name)
			}
			logs := p.logs.String()
			if mode.ingress == "envoy" {
				assert.Contains(t, logs, "its forwarding headers are ignored")
				assert.NotContains(t, logs, "-trusted-proxies refused")
			} else {
				assert.Contains(t, logs, "add the ingress's addresses to -trusted-proxies")
			}
		})
	}
}

// TestForwardAuthAmbiguous refuses (400) an auth request whose headers
// describe the original request in two ways that disagree, as a client
// gets them through an ingress that passes its headers on next to its own,
// or that gives one header twice.
func TestForwardAuthAmbiguous(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "admin"})
	for _, tc := range []struct {
		name    string
		args    []string
		headers []string
		want    int
	}{
		{"URIs disagree", nil, []string{"X-Original-URI", "/admin", "X-Original-Method", "GET", "X-Forwarded-Uri", "/public"}, 400},
		{"methods disagree", nil, []string{"X-Forwarded-Uri", "/a", "X-Forwarded-Method", "GET", "X-Original-Method", "POST"}, 400},
		{"URI twice", nil, []string{"X-Forwarded-Uri", "/a", "X-Forwarded-Uri", "/b", "X-Forwarded-Method", "GET"}, 400},
		{"no method", nil, []string{"X-Forwarded-Uri", "/a"}, 400},
		{"not a request target", nil, []string{"X-Forwarded-Uri", "nope", "X-Forwarded-Method", "GET"}, 400},
		{"bad method", nil, []string{"X-Forwarded-Uri", "/a", "X-Forwarded-Method", "G T"}, 400},
		{"opaque URI", nil, []string{"X-Original-URI", "http:http://x/admin", "X-Original-Method", "GET"}, 400},
		{"asterisk", nil, []string{"X-Original-URI", "*", "X-Original-Method", "OPTIONS"}, 400},
		{"absolute URI with a path", nil, []string{"X-Original-URI", "https://app.example/a?b=c", "X-Original-Method", "GET"}, 200},
		{"absolute URI without a path", nil, []string{"X-Original-URI", "https://app.example", "X-Original-Method", "GET"}, 200},
		{"both agree", nil, []string{"X-Original-URI", "/a", "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "GET"}, 200},
		{"nginx without its headers", []string{"-forward-auth-ingress", "nginx"}, []string{"X-Forwarded-Uri", "/a", "X-Forwarded-Method", "GET"}, 400},
		{"traefik reads its own alone", []string{"-forward-auth-ingress", "traefik"}, []string{"X-Original-URI", "/other", "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "GET"}, 200},
		{"envoy prefix missing", []string{"-forward-auth-path-prefix", "/check"}, nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, forwardArgs(as, tc.args...))
			got := do(t, http.MethodGet, p.url+"/auth", bearer(tok), tc.headers...)
			assert.Equal(t, tc.want, got.status, got.body)
			if tc.want == http.StatusBadRequest {
				assert.Contains(t, got.challenge, `error="invalid_request"`)
			}
		})
	}
}

// TestForwardAuthEnvoyPrefix checks Envoy's requests under
// -forward-auth-path-prefix: the prefix and the original path, which
// starts with '/'. The prefix alone, or followed by a query or anything
// but '/', is refused: an ext_authz path_override sending every request to
// one path would have the rules judge that path for all of them.
func TestForwardAuthEnvoyPrefix(t *testing.T) {
	as := newAS(t)
	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	p := startProxy(t, forwardArgs(as, "-forward-auth-path-prefix", "/check", "-require-scope", "/admin=admin"))
	for uri, want := range map[string]int{
		"/check":           400,
		"/check?x=1":       400,
		"/checkpublic":     400,
		"/check/public":    200,
		"/check/admin":     403,
		"/check//admin":    403,
		"/public":          400,
		"/check/public?x=": 200,
	} {
		got := do(t, http.MethodGet, p.url+uri, bearer(reader))
		assert.Equal(t, want, got.status, uri)
	}
}

// TestForwardAuthDPoP checks a DPoP-bound token through forward-auth: the
// proof's htm and htu are those of the original request, as the ingress
// describes it (method, X-Forwarded-Proto, X-Forwarded-Host, URI).
func TestForwardAuthDPoP(t *testing.T) {
	as := newAS(t)
	key, err := introspecttest.NewDPoPKey("ES256")
	require.NoError(t, err)
	tok := as.Issue(key.Bind(introspecttest.Claims{Subject: "dora", Scope: "read"}))
	p := startProxy(t, forwardArgs(as))
	headers := func(proof string) []string {
		return []string{"Dpop", proof, "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/items?x=1",
			"X-Forwarded-Host", "app.example", "X-Forwarded-Proto", "https"}
	}
	t.Run("proof for the original request", func(t *testing.T) {
		got := do(t, http.MethodGet, p.url+"/auth", "DPoP "+tok, headers(key.Proof("POST", "https://app.example/api/items", tok))...)
		assert.Equal(t, http.StatusOK, got.status, got.body)
		assert.Equal(t, "dora", got.header.Get("X-Auth-Subject"))
	})
	t.Run("proof for the auth request", func(t *testing.T) {
		got := do(t, http.MethodGet, p.url+"/auth", "DPoP "+tok, headers(key.Proof("GET", p.url+"/auth", tok))...)
		assert.Equal(t, http.StatusUnauthorized, got.status)
		assert.Contains(t, got.challenge, `DPoP realm="api", error="invalid_dpop_proof"`)
	})
	t.Run("bound token as bearer", func(t *testing.T) {
		got := do(t, http.MethodGet, p.url+"/auth", bearer(tok), headers("")[2:]...)
		assert.Equal(t, http.StatusUnauthorized, got.status)
	})
}
