package proxy_test

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

// TestReverseProxyVerdicts sends each kind of token through the reverse
// proxy: only a valid token with the scopes of the path reaches the
// upstream; the others get the RFC 6750 answer, the outage a 503.
func TestReverseProxyVerdicts(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up, "-require-scope", "/admin=admin"))
	valid := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "web", Username: "alice@example.com", Scope: "read write"})
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory", Scope: "read"})
	as.Revoke(revoked)

	for _, tc := range []struct {
		name       string
		path       string
		auth       string
		fault      *introspecttest.Fault
		wantStatus int
		wantChall  string // a part of WWW-Authenticate; "" for none
		wantUp     bool   // the upstream is reached
	}{
		{name: "valid", path: "/api/me", auth: bearer(valid), wantStatus: 200, wantUp: true},
		{name: "missing", path: "/api/me", wantStatus: 401, wantChall: `Bearer realm="api"`},
		{name: "basic is no token", path: "/api/me", auth: "Basic dXNlcjpwYXNz", wantStatus: 401, wantChall: `Bearer realm="api"`},
		{name: "malformed", path: "/api/me", auth: "Bearer not a b64token!", wantStatus: 400, wantChall: `error="invalid_request"`},
		{name: "unknown", path: "/api/me", auth: bearer("never-issued"), wantStatus: 401, wantChall: `error="invalid_token"`},
		{name: "revoked", path: "/api/me", auth: bearer(revoked), wantStatus: 401, wantChall: `error="invalid_token"`},
		{name: "insufficient scope", path: "/admin/users", auth: bearer(valid), wantStatus: 403, wantChall: `error="insufficient_scope", error_description="the access token does not grant access to this resource", scope="admin"`},
		{name: "AS outage", path: "/api/other", auth: bearer(as.Issue(introspecttest.Claims{Subject: "bob"})),
			fault: ptr(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down")), wantStatus: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				as.SetFault(*tc.fault)
				t.Cleanup(as.ClearFault)
			}
			before := up.count()
			got := do(t, http.MethodGet, p.url+tc.path, tc.auth)
			assert.Equal(t, tc.wantStatus, got.status, got.body)
			if tc.wantChall == "" {
				assert.Empty(t, got.challenge)
			} else {
				assert.Contains(t, got.challenge, tc.wantChall)
			}
			assert.Equal(t, tc.wantUp, up.count() > before, "upstream reached")
			if tc.wantUp {
				assert.Equal(t, "upstream: GET "+tc.path, got.body)
			} else {
				assert.NotContains(t, got.body, "upstream")
			}
		})
	}
}

// TestReverseProxyIdentityHeaders checks what the upstream learns: the
// token's identity in the headers of the prefix, its claims as configured,
// and none of the identity headers a client forged, whatever their case or
// spelling; the anonymous request of -optional-token gets none either.
func TestReverseProxyIdentityHeaders(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up, "-identity-claims", "tenant,roles,email_verified,aud,exp,bad_value,padded,nbsp,scope", "-optional-token"))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := as.Issue(introspecttest.Claims{
		Subject: "alice", ClientID: "web", Username: "alice@example.com", Scope: "read write",
		Audience: []string{"api"}, Expiry: exp,
		Extra: map[string]any{"tenant": "acme", "roles": []string{"admin", "ops"}, "email_verified": true, "bad_value": "line\r\nX-Injected: 1", "padded": " root ", "nbsp": "root\u00a0"},
	})
	// Scopes the rules read as one and a service splitting the header on
	// white space as two, "admin" among them.
	oddScope := as.Issue(introspecttest.Claims{Subject: "bob", Username: "admin\u00a0", Expiry: exp, Extra: map[string]any{"scope": []string{"read", "files:x\u3000admin"}}})
	commaScope := as.Issue(introspecttest.Claims{Subject: "bob", Scope: "read files:a,admin", Expiry: exp}) // a list to HTTP
	nbspScope := as.Issue(introspecttest.Claims{Subject: "bob", Scope: "read files:x\u00a0admin", Expiry: exp})
	forged := []string{
		"X-Auth-Subject", "root", "x-auth-scope", "admin", "X-AUTH-CLIENT-ID", "forged",
		"X-Auth_Username", "root", "X-Auth-Claim-Tenant", "other", "X-Auth-Anything", "x",
	}
	for _, tc := range []struct {
		name string
		auth string
		want map[string]string // "" for absent
	}{
		{name: "token", auth: bearer(tok), want: map[string]string{
			"X-Auth-Subject": "alice", "X-Auth-Client-Id": "web", "X-Auth-Scope": "read write", "X-Auth-Username": "alice@example.com",
			"X-Auth-Claim-Tenant": "acme", "X-Auth-Claim-Roles": `["admin","ops"]`, "X-Auth-Claim-Email-Verified": "true",
			"X-Auth-Claim-Aud": "api", "X-Auth-Claim-Exp": fmt.Sprint(exp.Unix()), "X-Auth-Claim-Bad-Value": "",
			"X-Auth_Username": "", "X-Auth-Anything": "", "X-Injected": "",
			"X-Auth-Claim-Padded": "", // " root ": HTTP parsers would trim it to another value
			"X-Auth-Claim-Nbsp":   "", // "root\u00a0": services would
			"X-Auth-Claim-Scope":  "read write",
		}},
		{name: "scope array with an ideographic space", auth: bearer(oddScope), want: map[string]string{
			"X-Auth-Subject": "bob", "X-Auth-Scope": "", "X-Auth-Claim-Scope": "", "X-Auth-Username": "", "X-Auth-Claim-Exp": fmt.Sprint(exp.Unix()),
		}},
		{name: "scope with a comma", auth: bearer(commaScope), want: map[string]string{
			"X-Auth-Subject": "bob", "X-Auth-Scope": "", "X-Auth-Claim-Scope": "", "X-Auth-Claim-Exp": fmt.Sprint(exp.Unix()),
		}},
		{name: "scope with a no-break space", auth: bearer(nbspScope), want: map[string]string{
			"X-Auth-Subject": "bob", "X-Auth-Scope": "", "X-Auth-Claim-Scope": "", "X-Auth-Claim-Exp": fmt.Sprint(exp.Unix()),
		}},
		{name: "anonymous", want: map[string]string{
			"X-Auth-Subject": "", "X-Auth-Scope": "", "X-Auth-Client-Id": "", "X-Auth_Username": "", "X-Auth-Claim-Tenant": "", "X-Auth-Anything": "",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, http.MethodGet, p.url+"/api/me", tc.auth, forged...)
			require.Equal(t, http.StatusOK, got.status, got.body)
			r := up.last(t)
			for h, want := range tc.want {
				assert.Equal(t, want, strings.Join(r.Header[h], "|"), h)
			}
			for name := range r.Header {
				if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-auth-") {
					assert.Contains(t, tc.want, name, "header %s reached the upstream", name)
				}
			}
		})
	}
	assert.Contains(t, p.logs.String(), "identity header left out", "the claim with CR LF is reported")
	assert.NotContains(t, p.logs.String(), "X-Injected", "never its value")
}

// TestForwardAuthorization checks that the upstream gets the Authorization
// header by default and not with -forward-authorization=false.
func TestForwardAuthorization(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, bearer(tok)},
		{"stripped", []string{"-forward-authorization=false"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			p := startProxy(t, reverseArgs(as, up, tc.args...))
			got := do(t, http.MethodGet, p.url+"/x", bearer(tok), "Dpop", "a-proof")
			require.Equal(t, http.StatusOK, got.status)
			assert.Equal(t, tc.want, up.last(t).Header.Get("Authorization"))
			if tc.want == "" {
				assert.Empty(t, up.last(t).Header.Get("Dpop"))
			}
		})
	}
}

// TestScopeRules checks the per-path and per-method rules: the longest
// prefix wins, a method restricts a rule (GET covers HEAD), every scope of
// a rule is needed, and a path with dot segments or repeated slashes must
// satisfy the rules of the path as written and as resolved, a path with
// ';' or '\' those of the paths servlet containers and IIS make of it.
func TestScopeRules(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up,
		"-require-scope", "/api=read",
		"-require-scope", "/api/admin=admin",
		"-require-scope", "POST /api/orders=orders:write,audit",
		"-require-scope", "/api/orders=read",
		"-require-scope", "get /reports=reports",
		"-require-scope", "/secure/=secure",
	))
	tokens := map[string]string{}
	for _, scope := range []string{"", "read", "admin", "read admin", "read orders:write", "read orders:write audit", "orders:write audit", "reports", "secure"} {
		tokens[scope] = as.Issue(introspecttest.Claims{Subject: "u", Scope: scope})
	}
	for _, tc := range []struct {
		method, path, scope string
		want                int
	}{
		{"GET", "/other", "", 200},                              // no rule: any valid token
		{"GET", "/api/x", "read", 200},                          // /api
		{"GET", "/api/x", "admin", 403},                         // /api needs read
		{"GET", "/api/admin/x", "admin", 200},                   // the longest prefix wins: admin alone
		{"GET", "/api/admin/x", "read", 403},                    //
		{"GET", "/api/administrator", "read", 403},              // a prefix is a string prefix
		{"POST", "/api/orders", "read orders:write", 403},       // every scope of the rule
		{"POST", "/api/orders", "read orders:write audit", 200}, //
		{"GET", "/api/orders", "read", 200},                     // the POST rule does not cover GET
		{"GET", "/reports/q1", "reports", 200},                  // the method of a rule is read in any case
		{"GET", "/reports/q1", "read", 403},                     //
		{"HEAD", "/reports/q1", "read", 403},                    // GET covers HEAD
		{"DELETE", "/reports/q1", "read", 200},                  // and nothing else
		{"GET", "/api/x/../admin/y", "read", 403},               // resolved: /api/admin
		{"GET", "/api/x/../admin/y", "admin", 403},              // written: /api
		{"GET", "/api/x/../admin/y", "read admin", 200},         // both
		{"GET", "/api//admin/y", "read", 403},                   // repeated slash: /api/admin resolved
		{"GET", "/api//../admin/y", "read", 403},                // empty segments kept (RFC 3986): /api/admin
		{"GET", "/api//../admin/y", "read admin", 200},          // merged first: /admin/y, no rule
		{"GET", "/secure/", "read", 403},                        // a rule ending in a slash
		{"GET", "/secure/", "secure", 200},                      //
		{"GET", "/secure", "read", 403},                         // covers the directory without its slash
		{"GET", "/other/../secure/.", "read", 403},              // a final "." resolves to "/secure/"
		{"GET", "/other/../secure/y/..", "read", 403},           // a final ".." too
		{"GET", "/other/../secure/.", "secure", 200},            //
		{"GET", "/api;x=1/admin/y", "read", 403},                // path parameters dropped (servlet containers): /api/admin
		{"GET", "/api;x=1/admin/y", "read admin", 200},          //
		{"GET", "/other/..;/secure/y", "read", 403},             // "..;" is ".." once its parameter is dropped: /secure/y
		{"GET", "/other/..;/secure/y", "secure", 200},           //
		{"GET", "/secure;jsessionid=1", "read", 403},            // the directory, with a session parameter
		{"GET", `/other\..\secure\y`, "read", 403},              // '\' read as '/' (IIS): /secure/y
		{"GET", `/other\..\secure\y`, "secure", 200},            //
		{"GET", `/other\..;\secure`, "read", 403},               // both: /secure
		{"GET", "/other/a;b", "", 200},                          // a parameter under no rule: any valid token
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.scope, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, p.url+tc.path, nil)
			require.NoError(t, err)
			req.URL.Opaque = tc.path // keep dot segments and slashes as written
			req.Header.Set("Authorization", bearer(tokens[tc.scope]))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
}

// TestWebsocket upgrades a connection through the proxy: the upgrade
// reaches the upstream only with a valid token, and bytes then flow both
// ways.
// wsEcho is a websocket service: it upgrades, says the X-Auth-Subject it
// got, and echoes each line upper-cased.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "websocket" {
		http.Error(w, "not an upgrade", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"X-Subject: " + r.Header.Get("X-Auth-Subject") + "\r\n\r\n")
	_ = brw.Flush()
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = brw.WriteString(strings.ToUpper(line))
		_ = brw.Flush()
	}
}

// upgradeAt asks the proxy at addr to upgrade GET /ws to a websocket, with
// the Authorization value auth (none when empty).
func upgradeAt(t *testing.T, addr, auth string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if auth != "" {
		req += "Authorization: " + auth + "\r\n"
	}
	return rawAsk(t, addr, req+"\r\n")
}

// echoes sends msg on an upgraded connection and checks its echo.
func echoes(t *testing.T, conn net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	_, err := io.WriteString(conn, msg)
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, strings.ToUpper(msg), got)
}

func TestWebsocket(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, wsEcho)
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	upgrade := func(auth string) (*http.Response, net.Conn, *bufio.Reader) { return upgradeAt(t, p.addr, auth) }

	t.Run("refused", func(t *testing.T) {
		resp, _, _ := upgrade("")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("upgraded", func(t *testing.T) {
		resp, conn, br := upgrade(bearer(tok))
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		assert.Equal(t, "alice", resp.Header.Get("X-Subject"))
		for _, msg := range []string{"hello\n", "again\n"} {
			echoes(t, conn, br, msg)
		}
		conn.Close() // the upgraded request ends, and is logged, when the connection does
	})
	waitFor(t, 5*time.Second, "the access log of the upgrade", func() bool {
		for _, l := range p.logs.lines(t, "request") {
			if l["path"] == "/ws" && l["status"] == float64(101) {
				return true
			}
		}
		return false
	})
}

// TestStreaming checks that a streamed response reaches the client as the
// upstream writes it, not when it ends.
func TestStreaming(t *testing.T) {
	as := newAS(t)
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
	})
	p := startProxy(t, reverseArgs(as, up))
	req, err := http.NewRequest(http.MethodGet, p.url+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(as.Issue(introspecttest.Claims{Subject: "alice"})))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: first\n", first, "the first event arrives while the upstream still writes")
	close(release)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: second\n\n", string(rest))
}

// TestContentEncoding checks that the client's Accept-Encoding reaches the
// upstream as it is, and the upstream's encoding the client: the proxy
// never asks for gzip on its own, nor decompresses.
func TestContentEncoding(t *testing.T) {
	as := newAS(t)
	const body = "a body the upstream compresses when asked to, a body the upstream compresses when asked to"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			_, _ = io.WriteString(w, body)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, body)
		_ = zw.Close()
	})
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // sends Accept-Encoding only when told to
	t.Cleanup(client.CloseIdleConnections)
	for _, tc := range []struct {
		name, acceptEncoding string
	}{
		{name: "none"},
		{name: "gzip", acceptEncoding: "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, p.url+"/data", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", bearer(tok))
			if tc.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tc.acceptEncoding)
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.acceptEncoding, up.last(t).Header.Get("Accept-Encoding"), "the upstream gets the client's Accept-Encoding")
			assert.Equal(t, tc.acceptEncoding, resp.Header.Get("Content-Encoding"), "the client gets the upstream's encoding")
			var r io.Reader = resp.Body
			if tc.acceptEncoding == "gzip" {
				zr, err := gzip.NewReader(resp.Body)
				require.NoError(t, err)
				r = zr
			}
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			assert.Equal(t, body, string(got))
		})
	}
}

// TestUpstreamErrors checks the 502 of an upstream that cannot be reached
// or that does not answer within -upstream-response-header-timeout, and
// that the upstream's own error statuses pass through.
func TestUpstreamErrors(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		p := startProxy(t, []string{"-upstream", "http://" + addr, "-endpoint", as.IntrospectionURL(), "-client-id", clientID})
		got := do(t, http.MethodGet, p.url+"/x?secret=q", bearer(tok))
		assert.Equal(t, http.StatusBadGateway, got.status)
		assert.JSONEq(t, `{"error":"bad_gateway","error_description":"the upstream service did not answer"}`, got.body)
		assert.Empty(t, got.challenge)
		waitFor(t, 5*time.Second, "the access log", func() bool { return len(p.logs.lines(t, "request")) > 0 })
		assert.Equal(t, "upstream_error", p.logs.lines(t, "request")[0]["outcome"])
		assert.NotContains(t, p.logs.String(), "secret=q")
	})
	t.Run("timeout", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
		p := startProxy(t, reverseArgs(as, up, "-upstream-response-header-timeout", "200ms"))
		start := time.Now()
		got := do(t, http.MethodGet, p.url+"/slow", bearer(tok))
		assert.Equal(t, http.StatusBadGateway, got.status)
		assert.Less(t, time.Since(start), 4*time.Second)
	})
	t.Run("the upstream's own error", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "broken", http.StatusInternalServerError)
		})
		p := startProxy(t, reverseArgs(as, up))
		got := do(t, http.MethodGet, p.url+"/x", bearer(tok))
		assert.Equal(t, http.StatusInternalServerError, got.status)
		assert.Equal(t, "broken\n", got.body)
	})
}

// TestOneCallPerToken sends bursts of concurrent requests with a few
// tokens: the authorization server is asked once per token.
func TestOneCallPerToken(t *testing.T) {
	as := newAS(t)
	as.SetFault(introspecttest.Latency(100 * time.Millisecond)) // the burst arrives while the first call is in flight
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up))
	const tokens, perToken = 3, 30
	var toks []string
	for i := range tokens {
		toks = append(toks, as.Issue(introspecttest.Claims{Subject: fmt.Sprint("user", i)}))
	}
	before := as.Calls()
	var wg sync.WaitGroup
	statuses := make(chan int, 2*tokens*perToken)
	for range 2 { // the second round is answered from the cache
		for _, tok := range toks {
			for range perToken {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodGet, p.url+"/burst", nil)
					req.Header.Set("Authorization", bearer(tok))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						statuses <- 0
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					statuses <- resp.StatusCode
				})
			}
		}
		wg.Wait()
	}
	close(statuses)
	for s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	assert.Equal(t, int64(tokens), as.Calls()-before, "calls to the authorization server")
}

func ptr[T any](v T) *T { return &v }

// rawExchange writes raw, one request, on a new connection to addr and
// reads the answer.
func rawExchange(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	resp, _, _ := rawAsk(t, addr, raw)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// dialRaw connects to addr for requests written by hand. The connection
// fails after 20 s: a hang, not a speed (answers come at once, or never).
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	return conn, bufio.NewReader(conn)
}

// rawAsk writes raw on a new connection to addr and reads the answer's
// header.
func rawAsk(t *testing.T, addr, raw string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, br := dialRaw(t, addr)
	_, err := io.WriteString(conn, raw)
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "no answer")
	return resp, conn, br
}

// TestRequestTargetNotAPath sends request targets that are not a path: an
// opaque one, which has no path for the rules and which the upstream would
// read as an absolute URL of its own choosing, and CONNECT's authority
// (net/http answers "OPTIONS *" itself). Each gets 400 before its token is looked at, with or without
// -optional-token, and the upstream sees nothing; the absolute form with a
// path meets the rules of its path.
func TestRequestTargetNotAPath(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	for _, optional := range []bool{false, true} {
		t.Run(fmt.Sprintf("optional-token=%v", optional), func(t *testing.T) {
			args := reverseArgs(as, up, "-require-scope", "/admin=admin")
			if optional {
				args = append(args, "-optional-token")
			}
			p := startProxy(t, args)
			before := up.count()
			for _, target := range []string{
				"GET http:http://x/admin/users",
				"GET x:http://other/admin",
				"GET mailto:admin@example.com",
				"CONNECT upstream.example:443",
			} {
				for _, auth := range []string{"", "Authorization: " + bearer(reader) + "\r\n"} {
					resp := rawExchange(t, p.addr, target+" HTTP/1.1\r\nHost: api.example\r\n"+auth+"Connection: close\r\n\r\n")
					assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s (%q)", target, auth)
				}
			}
			assert.Equal(t, before, up.count(), "the upstream got a request")

			resp := rawExchange(t, p.addr, "GET http://api.example/admin/users HTTP/1.1\r\nHost: api.example\r\nAuthorization: "+bearer(reader)+"\r\nConnection: close\r\n\r\n")
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the absolute form meets the rules of its path")
			resp = rawExchange(t, p.addr, "GET http://api.example/other HTTP/1.1\r\nHost: api.example\r\nAuthorization: "+bearer(reader)+"\r\nConnection: close\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "/other", up.last(t).URL.Path)
			resp = rawExchange(t, p.addr, "GET http://api.example HTTP/1.1\r\nHost: api.example\r\nAuthorization: "+bearer(reader)+"\r\nConnection: close\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode, "the absolute form without a path means /")
			assert.Equal(t, "/", up.last(t).URL.Path)
		})
	}
}

// TestMethodOverride checks the rules of the methods a request asks the
// service to take it for, in an override header (any spelling) or a
// "_method" query parameter, as well as those of its own method, in both
// modes.
func TestMethodOverride(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	reader := as.Issue(introspecttest.Claims{Subject: "u", Scope: "read"})
	admin := as.Issue(introspecttest.Claims{Subject: "u", Scope: "read admin"})
	rules := []string{"-require-scope", "/api=read", "-require-scope", "DELETE /api=admin"}
	reverse := startProxy(t, reverseArgs(as, up, rules...))
	forward := startProxy(t, forwardArgs(as, append(rules, "-forward-auth-ingress", "nginx")...))
	for _, tc := range []struct {
		name    string
		uri     string
		headers []string
		token   string
		want    int
	}{
		{"own method", "/api/x", nil, reader, 200},
		{"X-HTTP-Method-Override", "/api/x", []string{"X-HTTP-Method-Override", "DELETE"}, reader, 403},
		{"X-HTTP-Method-Override, scope met", "/api/x", []string{"X-HTTP-Method-Override", "DELETE"}, admin, 200},
		{"X-HTTP-Method", "/api/x", []string{"X-HTTP-Method", "delete"}, reader, 403},
		{"X-Method-Override", "/api/x", []string{"X-Method-Override", "DELETE"}, reader, 403},
		{"spelt with '_'", "/api/x", []string{"X-HTTP-Method_Override", "DELETE"}, reader, 403},
		{"in a list", "/api/x", []string{"X-HTTP-Method-Override", "PUT, DELETE"}, reader, 403},
		{"_method", "/api/x?a=1&_method=DELETE", nil, reader, 403},
		{"_method, scope met", "/api/x?_method=DELETE", nil, admin, 200},
		{"_method escaped", "/api/x?%5Fmethod=DELETE", nil, reader, 403},
		{"_method, a letter escaped", "/api/x?_meth%6Fd=DELETE", nil, reader, 403},
		{".method (PHP reads _method)", "/api/x?.method=DELETE", nil, reader, 403},
		{"leading spaces (PHP drops them)", "/api/x?+%20_method=DELETE", nil, reader, 403},
		{"a space and a dot", "/api/x?+.method=DELETE", nil, reader, 403},
		{"cut at a NUL (PHP ends the key there)", "/api/x?_method%00x=DELETE", nil, reader, 403},
		{"a pair url.ParseQuery refuses", "/api/x?_method%00%zz=DELETE", nil, reader, 403},
		{"a bad escape in the value", "/api/x?a=%zz&_method=DELETE", nil, reader, 403},
		{"other parameters", "/api/x?x_method=DELETE&method=DELETE&+method=DELETE&%5Bmethod=DELETE", nil, reader, 200},
		{"another method", "/api/x", []string{"X-HTTP-Method-Override", "PATCH"}, reader, 200},
	} {
		t.Run("reverse/"+tc.name, func(t *testing.T) {
			got := do(t, http.MethodPost, reverse.url+tc.uri, bearer(tc.token), tc.headers...)
			assert.Equal(t, tc.want, got.status, got.body)
		})
		t.Run("forward-auth/"+tc.name, func(t *testing.T) {
			headers := append([]string{"X-Original-URI", tc.uri, "X-Original-Method", "POST"}, tc.headers...)
			got := do(t, http.MethodGet, forward.url+"/auth", bearer(tc.token), headers...)
			assert.Equal(t, tc.want, got.status, got.body)
		})
	}
}

// TestUpgradeOnlyWebsocket sends upgrades to other protocols than
// websocket, h2c above all (whose tunnel would carry requests the proxy
// never sees): the request reaches the upstream as plain HTTP/1.1, without
// its Upgrade header.
func TestUpgradeOnlyWebsocket(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, upgrade := range []string{"h2c", "websocket, h2c", "TLS/1.2", "h2c\r\nUpgrade: websocket"} {
		t.Run(upgrade, func(t *testing.T) {
			resp := rawExchange(t, p.addr, "GET /x HTTP/1.1\r\nHost: api.example\r\nAuthorization: "+bearer(tok)+"\r\n"+
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: "+upgrade+"\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			last := up.last(t)
			assert.Empty(t, last.Header.Values("Upgrade"))
			assert.Empty(t, last.Header.Values("Http2-Settings"))
		})
	}
}

// A request refused before its body was read (no token, a forbidden path)
// gets its answer at once and its connection closed, in both modes, even
// when the client never sends the body it announced: net/http's server
// would otherwise read the rest of the body before answering, with no
// deadline (-read-timeout 0), holding the connection for good. An allowed
// request's body still reaches the upstream.
func TestRefusalDoesNotWaitForBody(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "upstream got "+string(b))
	})
	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"reverse", reverseArgs(as, up, "-require-scope", "/admin=admin")},
		{"forward-auth", forwardArgs(as, "-require-scope", "/admin=admin")},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := startProxy(t, mode.args)
			for _, tc := range []struct {
				name, head string
				want       int
			}{
				{"no token, a length", "POST /api HTTP/1.1\r\nHost: api.example\r\nContent-Length: 100\r\n\r\n", http.StatusUnauthorized},
				{"no token, chunked", "POST /api HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n\r\n", http.StatusUnauthorized},
				{"a forbidden path", "POST /admin HTTP/1.1\r\nHost: api.example\r\nAuthorization: " + bearer(reader) + "\r\nContent-Length: 100\r\n\r\n", http.StatusForbidden},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp := askWithoutBody(t, p.addr, tc.head)
					assert.Equal(t, tc.want, resp.StatusCode)
					assert.True(t, resp.Close, "the connection ends with the answer")
				})
			}
		})
	}
	p := startProxy(t, reverseArgs(as, up))
	ans := doBody(t, p.url+"/api", bearer(reader), "the body")
	assert.Equal(t, http.StatusOK, ans.status)
	assert.Equal(t, "upstream got the body", ans.body)
}

// doBody POSTs body to url with the Authorization value auth.
func doBody(t *testing.T, url, auth, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, body: string(b)}
}

// An upstream's error answer to a request whose body it read is passed on
// whole, on a connection that stays open: only the proxy's own refusals
// end the connection (TestRefusalDoesNotWaitForBody).
func TestUpstreamErrorKeepsConnection(t *testing.T) {
	as := newAS(t)
	big := strings.Repeat("e", 1<<20)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, big)
	})
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	var reused []bool
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, p.url+"/api", strings.NewReader("a body"))
		require.NoError(t, err)
		req.Header.Set("Authorization", bearer(tok))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		}))
		resp, err := hc.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		assert.Equal(t, len(big), len(body), "the upstream's answer, whole")
		assert.False(t, resp.Close)
	}
	assert.Equal(t, []bool{false, true, true}, reused, "one connection for the three requests")
}

// earlyUpstream is an upstream that answers each request with status and
// body as soon as it has read the request's header, without reading its
// body (the second half of the answer after pause), then closes its side
// or keeps it open, reading and dropping.
func earlyUpstream(t *testing.T, status, body string, closeIt bool, pause time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				half := len(body) / 2
				_, _ = fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body[:half])
				time.Sleep(pause)
				_, _ = io.WriteString(c, body[half:])
				if !closeIt {
					_, _ = io.Copy(io.Discard, br)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// askWithoutBody sends head, a request's header announcing a body that
// never follows, and returns the answer, which must come, and the
// connection must end after it.
func askWithoutBody(t *testing.T, addr, head string) *http.Response {
	t.Helper()
	resp, _, br := rawAsk(t, addr, head)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err := br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the proxy did not end the connection")
	return resp
}

// A body sent whole with a request that nothing reads it for (forward-auth
// of Envoy's with_request_body or Traefik's forwardBody, a refusal) keeps
// the connection: net/http takes it from what has come.
func TestWholeUnreadBodyKeepsConnection(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, nil)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, tc := range []struct {
		name string
		args []string
		auth string
		want int
	}{
		{"forward-auth allowed", forwardArgs(as), "Authorization: " + bearer(tok) + "\r\n", http.StatusOK},
		{"forward-auth refused", forwardArgs(as), "", http.StatusUnauthorized},
		{"reverse refused", reverseArgs(as, up), "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, tc.args)
			conn, br := dialRaw(t, p.addr)
			for i := range 3 {
				_, err := io.WriteString(conn, "POST /api HTTP/1.1\r\nHost: x\r\n"+tc.auth+"Content-Length: 5\r\n\r\nhello")
				require.NoError(t, err)
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err, "request %d: no answer", i)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, tc.want, resp.StatusCode)
				assert.False(t, resp.Close, "request %d: the connection ends", i)
			}
		})
	}
}

// An HTTP/1.0 client gets no 1xx answer (RFC 9110, section 15.2), which it
// would take for the final one; an HTTP/1.1 client gets the upstream's.
func TestNo1xxToHTTP10(t *testing.T) {
	as := newAS(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "final")
	})
	p := startProxy(t, reverseArgs(as, up))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, tc := range []struct {
		proto string
		first int
	}{
		{"HTTP/1.0", http.StatusOK},
		{"HTTP/1.1", http.StatusEarlyHints},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			resp, _, br := rawAsk(t, p.addr, "GET /x "+tc.proto+"\r\nHost: x\r\nConnection: close\r\nAuthorization: "+bearer(tok)+"\r\n\r\n")
			assert.Equal(t, tc.first, resp.StatusCode, "the first answer")
			if resp.StatusCode == http.StatusEarlyHints {
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			body, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Contains(t, string(body), "final")
			assert.NotContains(t, string(body), "HTTP/1.")
		})
	}
}

// A request whose announced body never comes gets its answer at once, with
// its connection ended, whatever the answer, when nothing read the body to
// its end: the upstream down, an upstream answering before reading it
// (closing its side or not; an error or a success), forward-auth allowing
// it (even without a token under -optional-token).
func TestUnreadBodyDoesNotHold(t *testing.T) {
	as := newAS(t)
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, tc := range []struct {
		name string
		args []string
		auth string
		want int
	}{
		{"upstream down", []string{"-upstream", "http://127.0.0.1:1"}, bearer(tok), http.StatusBadGateway},
		{"early error, closed", []string{"-upstream", earlyUpstream(t, "413 Payload Too Large", "", true, 0)}, bearer(tok), http.StatusRequestEntityTooLarge},
		{"early error, left open", []string{"-upstream", earlyUpstream(t, "403 Forbidden", "", false, 0)}, bearer(tok), http.StatusForbidden},
		{"early success", []string{"-upstream", earlyUpstream(t, "200 OK", "done", false, 0)}, bearer(tok), http.StatusOK},
		{"forward-auth allowed", []string{"-forward-auth"}, bearer(tok), http.StatusOK},
		{"forward-auth, no token, optional", []string{"-forward-auth", "-optional-token"}, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, append(tc.args, "-endpoint", as.IntrospectionURL(), "-client-id", clientID))
			head := "POST /api HTTP/1.1\r\nHost: api.example\r\nContent-Length: 100\r\n"
			if tc.auth != "" {
				head += "Authorization: " + tc.auth + "\r\n"
			}
			for range 5 { // the hold after an answer came from a race
				resp := askWithoutBody(t, p.addr, head+"\r\n")
				assert.Equal(t, tc.want, resp.StatusCode)
				assert.True(t, resp.Close, "the connection ends with the answer")
			}
		})
	}
}

// An upstream that answers an error while an honest client is still
// uploading, slowly, and sends the second half of its answer later, has its
// whole answer passed on: the body's read is stopped only once the answer
// is copied.
func TestEarlyUpstreamErrorDuringUpload(t *testing.T) {
	as := newAS(t)
	answer := strings.Repeat("x", 20000)
	p := startProxy(t, []string{"-upstream", earlyUpstream(t, "413 Payload Too Large", answer, false, 300*time.Millisecond),
		"-endpoint", as.IntrospectionURL(), "-client-id", clientID})
	conn, br := dialRaw(t, p.addr)
	_, err := io.WriteString(conn, "POST /api HTTP/1.1\r\nHost: api.example\r\nAuthorization: "+
		bearer(as.Issue(introspecttest.Claims{Subject: "alice"}))+"\r\nContent-Length: 1048576\r\n\r\n")
	require.NoError(t, err)
	go func() { // the upload goes on, slowly, until the proxy stops reading
		chunk := []byte(strings.Repeat("u", 1024))
		for range 1024 {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err, "the answer was cut short")
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, len(answer), len(body))
	assert.True(t, resp.Close)
}

// TestMaxHeaderBytes bounds the headers of a request, in both modes: a
// request within -max-header-bytes is served, one beyond it and the few KiB
// more that net/http's buffering lets through gets 431 before any check;
// the operations endpoints, which read no header, take 16 KiB.
func TestMaxHeaderBytes(t *testing.T) {
	as := newAS(t)
	token := bearer(as.Issue(introspecttest.Claims{Subject: "alice"}))
	up := newUpstream(t, nil)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"reverse", reverseArgs(as, up, "-max-header-bytes", "8192")},
		{"forward-auth", forwardArgs(as, "-max-header-bytes", "8192")},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := startProxy(t, mode.args)
			calls := as.Calls()
			got := do(t, http.MethodGet, p.url+"/x", token, "X-Big", strings.Repeat("a", 7000))
			assert.Equal(t, http.StatusOK, got.status, "within the bound")
			got = do(t, http.MethodGet, p.url+"/x", token, "X-Big", strings.Repeat("a", 20000))
			assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, got.status, "beyond the bound and net/http's slack")
			assert.Equal(t, calls+1, as.Calls(), "one call, for the request within the bound")

			got = do(t, http.MethodGet, p.ops+"/healthz", "", "X-Big", strings.Repeat("a", 15000))
			assert.Equal(t, http.StatusOK, got.status)
			got = do(t, http.MethodGet, p.ops+"/healthz", "", "X-Big", strings.Repeat("a", 30000))
			assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, got.status)
		})
	}
}
