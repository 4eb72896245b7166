package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/introspect-go/introspect/internal/exampledemo/demotest"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

func TestRoutes(t *testing.T) {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", "rs-secret"),
		introspect.WithRealm("chi-example"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	api := httptest.NewServer(routes(mw))
	defer api.Close()

	reader := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	admin := as.Issue(introspecttest.Claims{Subject: "root", Scope: "read admin"})
	tests := []struct {
		name, method, path, auth string
		fault                    bool // the authorization server answers 503
		status                   int
		challenge                string // a part of WWW-Authenticate, "" for none
		body                     string // a part of the body
	}{
		{name: "public", method: "GET", path: "/", status: 200, body: "try GET /api/me"},
		{name: "public, AS down", method: "GET", path: "/", fault: true, status: 200},
		{name: "protected", method: "GET", path: "/api/me", auth: "Bearer " + reader, status: 200, body: `"sub":"alice"`},
		{name: "missing", method: "GET", path: "/api/me", status: 401, challenge: `Bearer realm="chi-example"`},
		{name: "malformed", method: "GET", path: "/api/me", auth: "Bearer a b", status: 400, challenge: `error="invalid_request"`},
		{name: "unknown token", method: "GET", path: "/api/me", auth: "Bearer bmV2ZXItaXNzdWVk", status: 401, challenge: `error="invalid_token"`},
		{name: "admin, reader token", method: "GET", path: "/api/admin/users", auth: "Bearer " + reader, status: 403, challenge: `scope="admin"`},
		{name: "admin, reader token, delete", method: "DELETE", path: "/api/admin/users/7", auth: "Bearer " + reader, status: 403, challenge: `error="insufficient_scope"`},
		{name: "admin", method: "GET", path: "/api/admin/users", auth: "Bearer " + admin, status: 200, body: `["alice","bob"]`},
		{name: "admin, delete", method: "DELETE", path: "/api/admin/users/7", auth: "Bearer " + admin, status: 204},
		{name: "admin, no token", method: "GET", path: "/api/admin/users", status: 401},
		{name: "AS down", method: "GET", path: "/api/me", auth: "Bearer " + as.Issue(introspecttest.Claims{Subject: "carol"}), fault: true, status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault {
				as.SetFault(introspecttest.Respond(503, "text/plain", "down"))
				defer as.ClearFault()
			}
			req, err := http.NewRequest(tc.method, api.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := api.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tc.status, body.String())
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if tc.challenge != "" && !strings.Contains(ch, tc.challenge) {
				t.Errorf("WWW-Authenticate = %q, want it to contain %q", ch, tc.challenge)
			}
			if !strings.Contains(body.String(), tc.body) {
				t.Errorf("body = %q, want it to contain %q", body.String(), tc.body)
			}
			for _, tok := range []string{reader, admin} {
				if strings.Contains(body.String(), tok) || strings.Contains(ch, tok) {
					t.Errorf("the response contains a token")
				}
			}
		})
	}
}

func TestDemoPasses(t *testing.T) {
	demotest.Demo(t, run, []string{"-demo", "-addr", "127.0.0.1:0"}, "7 passed, 0 failed")
}

func TestServesSampleCurlAndStops(t *testing.T) {
	demotest.Serves(t, run, []string{"-addr", "127.0.0.1:0"}, "curl -H 'Authorization: Bearer ")
}
