package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/proxy"
	"github.com/introspect-go/introspect/introspecttest"
)

// audience is the identifier of the protected service in the JWT tests.
const audience = "https://api.example.com"

// startBare loads a configuration from args and env alone, with no client
// secret (-validate jwt refuses one), and serves it until the test ends.
func startBare(t *testing.T, args []string, env ...string) *running {
	t.Helper()
	cfg, err := config.Load(args, env, io.Discard)
	require.NoError(t, err)
	return serveConfig(t, cfg)
}

// proxyMode is one of the two modes, with what tells the tests apart: the
// flag that chooses it, and where the identity headers of an accepted
// request show.
type proxyMode struct {
	name string
	args func(up *upstream) []string
	// identity returns the identity headers the service would see for the
	// answer got: those the upstream received (reverse proxy), or those of
	// the answer (forward-auth), which an ingress copies.
	identity func(t *testing.T, up *upstream, got answer) http.Header
}

var proxyModes = []proxyMode{
	{
		name: "reverse proxy",
		args: func(up *upstream) []string { return []string{"-upstream", up.URL} },
		identity: func(t *testing.T, up *upstream, _ answer) http.Header {
			return up.last(t).Header
		},
	},
	{
		name: "forward-auth",
		args: func(*upstream) []string { return []string{"-forward-auth"} },
		identity: func(_ *testing.T, _ *upstream, got answer) http.Header {
			return got.header
		},
	},
}

// jwtCase is a request with a token and what it must get.
type jwtCase struct {
	name       string
	path       string
	token      string
	wantStatus int
	wantChall  string // a part of WWW-Authenticate; "" for none
	wantSub    string // the X-Auth-Subject of an accepted request
	wantCalls  int64  // introspection calls the request makes
}

// runJWTCases sends each case to the proxy p: the status, the challenge,
// the subject, whether the upstream is reached, and the introspection
// calls made, counted at the authorization server.
func runJWTCases(t *testing.T, mode proxyMode, as *introspecttest.Server, up *upstream, p *running, cases []jwtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls, reached := as.Calls(), up.count()
			got := do(t, http.MethodGet, p.url+tc.path, bearer(tc.token))
			assert.Equal(t, tc.wantStatus, got.status, got.body)
			if tc.wantChall == "" {
				assert.Empty(t, got.challenge)
			} else {
				assert.Contains(t, got.challenge, tc.wantChall)
			}
			assert.Equal(t, tc.wantCalls, as.Calls()-calls, "introspection calls")
			if mode.name == "reverse proxy" {
				assert.Equal(t, tc.wantStatus == http.StatusOK, up.count() > reached, "upstream reached")
			}
			if tc.wantStatus == http.StatusOK {
				assert.Equal(t, tc.wantSub, mode.identity(t, up, got).Get("X-Auth-Subject"))
			}
		})
	}
}

// TestLocalJWTValidation runs -validate jwt in both modes against a real
// authorization server, found by discovery, with no endpoint and no client
// credentials: a JWT access token of the issuer for the service is
// accepted without an introspection call; one for another audience, an
// opaque token, a forged or unsigned one are refused, with no call either;
// the scope rules apply to the JWT's scopes.
func TestLocalJWTValidation(t *testing.T) {
	for _, mode := range proxyModes {
		t.Run(mode.name, func(t *testing.T) {
			as := newAS(t)
			up := newUpstream(t, nil)
			p := startBare(t, append(mode.args(up), "-validate", "jwt", "-issuer", as.Issuer, "-jwt-audience", audience,
				"-realm", "api", "-require-scope", "/admin=admin"))
			claims := introspecttest.Claims{Subject: "alice", ClientID: "web", Scope: "read", Audience: []string{audience}}
			good := as.IssueJWT(claims)
			revoked := as.IssueJWT(claims)
			as.Revoke(revoked)
			other := as.IssueJWT(introspecttest.Claims{Subject: "alice", Scope: "read admin", Audience: []string{"https://other.example.com"}})
			hmac := as.IssueJWTFunc(claims, func(h, _ map[string]any) { h["alg"] = "HS256" })
			runJWTCases(t, mode, as, up, p, []jwtCase{
				{name: "JWT for the service", path: "/api/me", token: good, wantStatus: 200, wantSub: "alice"},
				{name: "again", path: "/api/me", token: good, wantStatus: 200, wantSub: "alice"},
				{name: "revoked JWT, still valid locally", path: "/api/me", token: revoked, wantStatus: 200, wantSub: "alice"},
				{name: "JWT for another audience", path: "/api/me", token: other, wantStatus: 401, wantChall: `error="invalid_token"`},
				{name: "HMAC keyed with the public key", path: "/api/me", token: hmac, wantStatus: 401, wantChall: `error="invalid_token"`},
				{name: "opaque token", path: "/api/me", token: as.Issue(claims), wantStatus: 401, wantChall: `error="invalid_token"`},
				{name: "insufficient scope", path: "/admin/users", token: good, wantStatus: 403, wantChall: `error="insufficient_scope"`},
			})
			assert.Zero(t, as.Calls(), "-validate jwt never introspects")
		})
	}
}

// TestHybridValidation runs -validate hybrid and jwt+introspect in both
// modes: in hybrid a JWT of the issuer is validated locally, an opaque
// token introspected; in jwt+introspect a JWT must pass both, so a revoked
// one is refused.
func TestHybridValidation(t *testing.T) {
	for _, mode := range proxyModes {
		t.Run(mode.name, func(t *testing.T) {
			as := newAS(t)
			up := newUpstream(t, nil)
			claims := introspecttest.Claims{Subject: "alice", ClientID: "web", Scope: "read", Audience: []string{audience}}
			jwtTok := as.IssueJWT(claims)
			revokedJWT := as.IssueJWT(claims)
			as.Revoke(revokedJWT)
			opaque := as.Issue(introspecttest.Claims{Subject: "bob", Scope: "read"})
			revokedOpaque := as.Issue(introspecttest.Claims{Subject: "mallory"})
			as.Revoke(revokedOpaque)
			other := as.IssueJWT(introspecttest.Claims{Subject: "alice", Audience: []string{"https://other.example.com"}})
			common := append(mode.args(up), "-issuer", as.Issuer, "-client-id", clientID, "-jwt-audience", audience, "-realm", "api")

			t.Run("hybrid", func(t *testing.T) {
				p := startProxy(t, append(slices.Clone(common), "-validate", "hybrid"))
				runJWTCases(t, mode, as, up, p, []jwtCase{
					{name: "JWT, locally", path: "/api", token: jwtTok, wantStatus: 200, wantSub: "alice"},
					{name: "JWT for another audience, refused locally", path: "/api", token: other, wantStatus: 401, wantChall: `error="invalid_token"`},
					{name: "opaque token, introspected", path: "/api", token: opaque, wantStatus: 200, wantSub: "bob", wantCalls: 1},
					{name: "opaque token, cached", path: "/api", token: opaque, wantStatus: 200, wantSub: "bob"},
					{name: "revoked opaque token", path: "/api", token: revokedOpaque, wantStatus: 401, wantChall: `error="invalid_token"`, wantCalls: 1},
				})
			})
			t.Run("jwt+introspect", func(t *testing.T) {
				p := startProxy(t, append(slices.Clone(common), "-validate", "jwt+introspect"))
				runJWTCases(t, mode, as, up, p, []jwtCase{
					{name: "JWT, both", path: "/api", token: jwtTok, wantStatus: 200, wantSub: "alice", wantCalls: 1},
					{name: "revoked JWT", path: "/api", token: revokedJWT, wantStatus: 401, wantChall: `error="invalid_token"`, wantCalls: 1},
					{name: "opaque token", path: "/api", token: opaque, wantStatus: 401, wantChall: `error="invalid_token"`},
				})
			})
		})
	}
}

// TestUserinfoIdentityHeaders forwards userinfo claims as identity headers
// in both modes, for an introspected token and for a JWT validated
// locally: the claims of the userinfo endpoint reach the service under
// X-Auth-Userinfo-*, fetched once per token; the same headers forged by a
// client never do; a token without the claim gets no such header (an empty
// one in forward-auth, which an ingress copies over the client's).
func TestUserinfoIdentityHeaders(t *testing.T) {
	forged := []string{"X-Auth-Userinfo-Email", "mallory@evil.example", "x-auth-userinfo_email", "mallory@evil.example",
		"X-Auth-Userinfo-Role", "admin"}
	for _, mode := range proxyModes {
		t.Run(mode.name, func(t *testing.T) {
			as := newAS(t)
			up := newUpstream(t, nil)
			extra := map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"ops", "dev"}}
			for _, v := range []struct {
				name  string
				args  []string
				issue func(introspecttest.Claims) string
				calls int64 // introspection calls for a new token
			}{
				{name: "introspected", args: []string{"-issuer", as.Issuer, "-client-id", clientID}, issue: as.Issue, calls: 1},
				{name: "local JWT", args: []string{"-validate", "jwt", "-issuer", as.Issuer, "-jwt-audience", audience}, issue: as.IssueJWT},
			} {
				t.Run(v.name, func(t *testing.T) {
					args := append(mode.args(up), v.args...)
					args = append(args, "-userinfo", "-identity-claims", "userinfo.email,userinfo.email_verified,userinfo.groups,email")
					var p *running
					if v.calls == 0 {
						p = startBare(t, args)
					} else {
						p = startProxy(t, args)
					}
					alice := v.issue(introspecttest.Claims{Subject: "alice", Audience: []string{audience}, Extra: extra})
					bob := v.issue(introspecttest.Claims{Subject: "bob", Audience: []string{audience}})
					for _, tc := range []struct {
						name      string
						token     string
						want      map[string]string
						wantCalls int64 // userinfo calls
					}{
						{name: "claims", token: alice, wantCalls: 1, want: map[string]string{
							"X-Auth-Userinfo-Email": "alice@example.com", "X-Auth-Userinfo-Email-Verified": "true",
							"X-Auth-Userinfo-Groups": `["ops","dev"]`, "X-Auth-Claim-Email": "alice@example.com",
						}},
						{name: "claims, cached", token: alice, want: map[string]string{"X-Auth-Userinfo-Email": "alice@example.com"}},
						{name: "no such claims", token: bob, wantCalls: 1, want: map[string]string{
							"X-Auth-Userinfo-Email": "", "X-Auth-Userinfo-Groups": "", "X-Auth-Claim-Email": "",
						}},
					} {
						t.Run(tc.name, func(t *testing.T) {
							calls, uiCalls := as.Calls(), as.UserinfoCalls()
							got := do(t, http.MethodGet, p.url+"/api/me", bearer(tc.token), forged...)
							require.Equal(t, http.StatusOK, got.status, got.body)
							h := mode.identity(t, up, got)
							for name, want := range tc.want {
								assert.Equal(t, want, strings.Join(h.Values(name), "|"), name)
							}
							for name, vals := range h {
								if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-auth-") {
									assert.NotContains(t, vals, "mallory@evil.example", "forged %s", name)
									assert.NotContains(t, vals, "admin", "forged %s", name)
								}
							}
							assert.Empty(t, h.Values("X-Auth-Userinfo-Role"), "a forged header for no claim")
							assert.Equal(t, tc.wantCalls, as.UserinfoCalls()-uiCalls, "userinfo calls")
							if tc.wantCalls == 0 {
								assert.Zero(t, as.Calls()-calls, "introspection calls")
							} else {
								assert.Equal(t, v.calls, as.Calls()-calls, "introspection calls")
							}
						})
					}
				})
			}
		})
	}
}

// TestUserinfoFailure checks what a request gets when the userinfo
// endpoint fails: 503 (fail closed), or with -userinfo-best-effort the
// request without the userinfo headers; a token the endpoint refuses is
// refused either way.
func TestUserinfoFailure(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	for _, tc := range []struct {
		name       string
		bestEffort bool
		fault      introspecttest.Fault
		wantStatus int
	}{
		{name: "fail closed", fault: introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"), wantStatus: 503},
		{name: "best effort", bestEffort: true, fault: introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"), wantStatus: 200},
		{name: "refused, best effort", bestEffort: true, fault: introspecttest.Respond(http.StatusUnauthorized, "application/json", `{"error":"invalid_token"}`), wantStatus: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := reverseArgs(as, up, "-issuer", as.Issuer, "-userinfo", "-identity-claims", "userinfo.email")
			if tc.bestEffort {
				args = append(args, "-userinfo-best-effort")
			}
			p := startProxy(t, args)
			as.SetUserinfoFault(tc.fault)
			t.Cleanup(func() { as.SetUserinfoFault(introspecttest.Fault{}) })
			tok := as.Issue(introspecttest.Claims{Subject: "alice", Extra: map[string]any{"email": "alice@example.com"}})
			reached := up.count()
			got := do(t, http.MethodGet, p.url+"/api", bearer(tok), "X-Auth-Userinfo-Email", "mallory@evil.example")
			assert.Equal(t, tc.wantStatus, got.status, got.body)
			assert.NotContains(t, got.body, "down", "the endpoint's text is not repeated")
			if tc.wantStatus == http.StatusOK {
				assert.Empty(t, up.last(t).Header.Values("X-Auth-Userinfo-Email"), "no claims, and the forged header is gone")
			} else {
				assert.Equal(t, reached, up.count(), "upstream not reached")
			}
		})
	}
}

// TestLocalValidationBuildsTheMiddleware builds the proxy of
// configurations of local validation that config.Load accepts: the library
// accepts them too, so the proxy's checks are no looser than its own.
func TestLocalValidationBuildsTheMiddleware(t *testing.T) {
	as := newAS(t)
	other := newAS(t)
	for _, args := range [][]string{
		{"-upstream", "http://127.0.0.1:3000", "-validate", "jwt", "-issuer", as.Issuer, "-jwt-audience", audience,
			"-jwt-algs", "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA,Ed25519", "-plain-jwt", "-max-jwt-size", "100",
			"-userinfo", "-userinfo-best-effort"},
		{"-forward-auth", "-validate", "jwt", "-jwt-issuers", as.Issuer + "," + other.Issuer, "-jwt-audience", audience, "-eager-discovery"},
		{"-forward-auth", "-validate", "jwt", "-issuer", as.Issuer, "-jwt-issuers", other.Issuer, "-jwt-audience", audience, "-userinfo"},
		{"-forward-auth", "-validate", "jwt", "-issuer", as.Issuer, "-jwt-audience", audience, "-userinfo", "-userinfo-endpoint", as.UserinfoURL()},
	} {
		cfg, err := config.Load(args, nil, io.Discard)
		require.NoError(t, err, strings.Join(args, " "))
		srv, err := proxy.New(cfg, nil)
		require.NoError(t, err, strings.Join(args, " "))
		require.NoError(t, srv.Close())
	}
	for _, args := range [][]string{
		{"-validate", "hybrid", "-endpoint", as.IntrospectionURL(), "-jwt-issuers", other.Issuer},
		{"-validate", "hybrid", "-issuer", as.Issuer, "-jwt-issuers", other.Issuer, "-jwt-response", "-userinfo"},
		{"-validate", "jwt+introspect", "-issuer", as.Issuer, "-endpoint", as.IntrospectionURL(), "-userinfo"},
	} {
		args = append(args, "-forward-auth", "-client-id", clientID, "-jwt-audience", audience)
		cfg, err := config.Load(args, []string{config.EnvClientSecret + "=" + clientSecret}, io.Discard)
		require.NoError(t, err, strings.Join(args, " "))
		srv, err := proxy.New(cfg, nil)
		require.NoError(t, err, strings.Join(args, " "))
		require.NoError(t, srv.Close())
	}
}

// TestJWTIssuers accepts the JWTs of several issuers, in -validate jwt,
// each verified with its own issuer's keys.
func TestJWTIssuers(t *testing.T) {
	first, second, stranger := newAS(t), newAS(t), newAS(t)
	up := newUpstream(t, nil)
	p := startBare(t, []string{"-upstream", up.URL, "-validate", "jwt", "-jwt-issuers", first.Issuer + "," + second.Issuer, "-jwt-audience", audience})
	for _, tc := range []struct {
		name       string
		as         *introspecttest.Server
		wantStatus int
	}{
		{name: "first issuer", as: first, wantStatus: 200},
		{name: "second issuer", as: second, wantStatus: 200},
		{name: "an issuer not configured", as: stranger, wantStatus: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, http.MethodGet, p.url+"/api", bearer(tc.as.IssueJWT(introspecttest.Claims{Subject: "alice", Audience: []string{audience}})))
			assert.Equal(t, tc.wantStatus, got.status, got.body)
		})
	}
}
