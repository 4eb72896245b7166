package introspect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

const (
	clClientID = "rs-client"
	clSecret   = "rs-Cl1entS3cret"
	// clReservedSecret has every character that client_secret_basic must
	// form-encode before base64 (RFC 6749 §2.3.1).
	clReservedSecret = "a:b/c+d%e&f=g h"
	clReservedID     = "rs:client/1+2%3&4=5 6"
)

// startAS starts a test authorization server that knows clClientID.
func startAS(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	srv := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(clClientID, clSecret)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// clientFor returns a client of srv with clClientID's credentials and opts.
func clientFor(t *testing.T, srv *introspecttest.Server, opts ...introspect.Option) *introspect.Client {
	t.Helper()
	c, err := introspect.NewClient(append([]introspect.Option{
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentials(clClientID, clSecret),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// introspectBefore calls c.Introspect and fails the test if it has not
// returned within limit.
func introspectBefore(t *testing.T, c *introspect.Client, token string, limit time.Duration) (*introspect.Introspection, error) {
	t.Helper()
	type result struct {
		ti  *introspect.Introspection
		err error
	}
	done := make(chan result, 1)
	go func() {
		ti, err := c.Introspect(context.Background(), token)
		done <- result{ti, err}
	}()
	select {
	case r := <-done:
		return r.ti, r.err
	case <-time.After(limit):
		t.Fatalf("Introspect has not returned after %v", limit)
		return nil, nil
	}
}

// assertNoSecrets checks that err, however printed, reveals none of secrets.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, clSecret, clReservedSecret) {
		for _, out := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			assert.NotContains(t, out, s)
		}
	}
}

func assertResponseError(t *testing.T, err error, status int, code string) *introspect.ResponseError {
	t.Helper()
	var re *introspect.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, status, re.StatusCode)
	assert.Equal(t, code, re.ErrorCode)
	assert.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.NotErrorIs(t, err, introspect.ErrInactiveToken)
	assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
	return re
}

func TestClientAuthMethods(t *testing.T) {
	tests := []struct {
		name       string
		id, secret string
		method     introspect.AuthMethod // "" leaves WithAuthMethod out
		wantMethod string
	}{
		{name: "basic by default", id: clClientID, secret: clSecret, wantMethod: "client_secret_basic"},
		{name: "basic", id: clClientID, secret: clSecret, method: introspect.ClientSecretBasic, wantMethod: "client_secret_basic"},
		{name: "post", id: clClientID, secret: clSecret, method: introspect.ClientSecretPost, wantMethod: "client_secret_post"},
		{name: "basic, reserved characters in the secret", id: clClientID, secret: clReservedSecret, method: introspect.ClientSecretBasic, wantMethod: "client_secret_basic"},
		{name: "post, reserved characters in the secret", id: clClientID, secret: clReservedSecret, method: introspect.ClientSecretPost, wantMethod: "client_secret_post"},
		{name: "basic, reserved characters in the client ID", id: clReservedID, secret: clReservedSecret, method: introspect.ClientSecretBasic, wantMethod: "client_secret_basic"},
		{name: "post, reserved characters in the client ID", id: clReservedID, secret: clReservedSecret, method: introspect.ClientSecretPost, wantMethod: "client_secret_post"},
		{name: "basic, non-ASCII secret", id: "rs-é", secret: "sécret:ü", method: introspect.ClientSecretBasic, wantMethod: "client_secret_basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The AS accepts only the method under test.
			srv := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{
				ID: tt.id, Secret: tt.secret, Methods: []string{tt.wantMethod},
			}))
			t.Cleanup(srv.Close)
			opts := []introspect.Option{
				introspect.WithEndpoint(srv.IntrospectionURL()),
				introspect.WithClientCredentials(tt.id, tt.secret),
			}
			if tt.method != "" {
				opts = append(opts, introspect.WithAuthMethod(tt.method))
			}
			c, err := introspect.NewClient(opts...)
			require.NoError(t, err)
			tok := srv.Issue(introspecttest.Claims{Subject: "alice", Scope: "read write", ClientID: "app"})

			ti, err := c.Introspect(t.Context(), tok)
			require.NoError(t, err)
			assert.True(t, ti.Active)
			assert.Equal(t, "alice", ti.Subject)
			assert.Equal(t, []string{"read", "write"}, ti.Scopes)
			assert.Equal(t, "app", ti.ClientID)
			assert.Equal(t, srv.Issuer, ti.Issuer)

			last := srv.LastRequest()
			assert.Equal(t, tt.wantMethod, last.AuthMethod)
			assert.Equal(t, tt.id, last.ClientID)
			assert.Equal(t, "application/json", last.Accept)
			assert.Equal(t, "application/x-www-form-urlencoded", last.ContentType)
			assert.EqualValues(t, 1, srv.Calls())

			// The same secret with the other method is refused by this AS.
			other := introspect.ClientSecretPost
			if tt.wantMethod == "client_secret_post" {
				other = introspect.ClientSecretBasic
			}
			c2, err := introspect.NewClient(append(opts, introspect.WithAuthMethod(other))...)
			require.NoError(t, err)
			_, err = c2.Introspect(t.Context(), tok)
			assertResponseError(t, err, http.StatusUnauthorized, "invalid_client")
			assertNoSecrets(t, err, tok, tt.secret)
		})
	}
}

func TestClientTokenTypeHint(t *testing.T) {
	tests := []struct {
		name     string
		opts     []introspect.Option
		wantHint string
		wantHas  bool
	}{
		{name: "default", wantHint: "access_token", wantHas: true},
		{name: "custom", opts: []introspect.Option{introspect.WithTokenTypeHint("refresh_token")}, wantHint: "refresh_token", wantHas: true},
		{name: "omitted", opts: []introspect.Option{introspect.WithTokenTypeHint("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAS(t)
			c := clientFor(t, srv, tt.opts...)
			_, err := c.Introspect(t.Context(), srv.Issue(introspecttest.Claims{}))
			require.NoError(t, err)
			last := srv.LastRequest()
			assert.Equal(t, tt.wantHas, last.HasHint)
			assert.Equal(t, tt.wantHint, last.TokenTypeHint)
		})
	}
}

func TestClientWrongSecret(t *testing.T) {
	srv := startAS(t)
	c, err := introspect.NewClient(
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentials(clClientID, "wrong-"+clSecret),
	)
	require.NoError(t, err)
	tok := srv.Issue(introspecttest.Claims{})
	ti, err := c.Introspect(t.Context(), tok)
	assert.Nil(t, ti)
	assertResponseError(t, err, http.StatusUnauthorized, "invalid_client")
	assertNoSecrets(t, err, tok, "wrong-"+clSecret)
}

func TestClientInactive(t *testing.T) {
	srv := startAS(t)
	c := clientFor(t, srv)
	active := srv.Issue(introspecttest.Claims{Subject: "alice"})
	revoked := srv.Issue(introspecttest.Claims{})
	srv.Revoke(revoked)
	tests := []struct {
		name            string
		invalidTokenErr bool // the AS answers 400 invalid_token instead of active:false
		token           string
	}{
		{name: "unknown", token: "unknown-token"},
		{name: "revoked", token: revoked},
		{name: "expired at the AS", token: srv.Issue(introspecttest.Claims{Expiry: time.Now().Add(-time.Hour)})},
		{name: "400 invalid_token for an unknown token", invalidTokenErr: true, token: "unknown-token"},
		{name: "400 invalid_token for a revoked token", invalidTokenErr: true, token: revoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.invalidTokenErr {
				srv.SetFault(introspecttest.InvalidTokenError())
				t.Cleanup(srv.ClearFault)
			}
			ti, err := c.Introspect(t.Context(), tt.token)
			require.ErrorIs(t, err, introspect.ErrInactiveToken)
			assert.NotErrorIs(t, err, introspect.ErrUnavailable)
			assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
			require.NotNil(t, ti, "the answer comes with the verdict")
			assert.False(t, ti.Active)
			assertNoSecrets(t, err, tt.token)

			// An active token still is, whatever the fault.
			ti, err = c.Introspect(t.Context(), active)
			require.NoError(t, err)
			assert.Equal(t, "alice", ti.Subject)
		})
	}
}

func TestClientErrorAnswers(t *testing.T) {
	const jsonCT = "application/json"
	tests := []struct {
		name           string
		fault          introspecttest.Fault
		wantStatus     int
		wantCode       string
		wantRetryAfter time.Duration
	}{
		{name: "400 invalid_client", fault: introspecttest.Respond(400, jsonCT, `{"error":"invalid_client"}`), wantStatus: 400, wantCode: "invalid_client"},
		{name: "401 invalid_token is our credentials refused", fault: introspecttest.Respond(401, jsonCT, `{"error":"invalid_token"}`), wantStatus: 401, wantCode: "invalid_token"},
		{name: "403 invalid_token", fault: introspecttest.Respond(403, jsonCT, `{"error":"invalid_token"}`), wantStatus: 403, wantCode: "invalid_token"},
		{name: "400 invalid_request", fault: introspecttest.Respond(400, jsonCT, `{"error":"invalid_request","error_description":"bad"}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "400 without a body", fault: introspecttest.Respond(400, "", ""), wantStatus: 400},
		{name: "400 with an HTML body", fault: introspecttest.Respond(400, "text/html", "<h1>invalid_token</h1>"), wantStatus: 400},
		{name: "400 with a non-string error", fault: introspecttest.Respond(400, jsonCT, `{"error":{"code":"invalid_token"}}`), wantStatus: 400},
		{name: "500", fault: introspecttest.Respond(500, "text/plain", "boom"), wantStatus: 500},
		{name: "502 with an HTML page", fault: introspecttest.Respond(502, "text/html", "<html>Bad Gateway</html>"), wantStatus: 502},
		{name: "503 with Retry-After", fault: introspecttest.Respond(503, "", "", "Retry-After: 7"), wantStatus: 503, wantRetryAfter: 7 * time.Second},
		{name: "429 with Retry-After", fault: introspecttest.Respond(429, jsonCT, `{"error":"slow_down"}`, "Retry-After: 30"), wantStatus: 429, wantCode: "slow_down", wantRetryAfter: 30 * time.Second},
		{name: "429 with Retry-After 0", fault: introspecttest.Respond(429, "", "", "Retry-After: 0"), wantStatus: 429},
		{name: "429 with a huge Retry-After is capped", fault: introspecttest.Respond(429, "", "", "Retry-After: 999999999"), wantStatus: 429, wantRetryAfter: time.Hour},
		{name: "429 with a negative Retry-After", fault: introspecttest.Respond(429, "", "", "Retry-After: -5"), wantStatus: 429},
		{name: "429 with an HTTP-date Retry-After", fault: introspecttest.Respond(429, "", "", "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT"), wantStatus: 429},
		{name: "error code sanitized", fault: introspecttest.Respond(400, jsonCT, `{"error":"bad\r\n\"code\\"}`), wantStatus: 400, wantCode: "badcode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAS(t)
			srv.SetFault(tt.fault)
			c := clientFor(t, srv)
			tok := srv.Issue(introspecttest.Claims{})
			ti, err := c.Introspect(t.Context(), tok)
			assert.Nil(t, ti)
			re := assertResponseError(t, err, tt.wantStatus, tt.wantCode)
			assert.Equal(t, tt.wantRetryAfter, re.RetryAfter)
			assertNoSecrets(t, err, tok)
		})
	}
}

func TestClientMalformedAnswers(t *testing.T) {
	tests := []struct {
		name    string
		fault   introspecttest.Fault
		wantErr error // nil: the answer is fine
	}{
		{name: "HTML with 200", fault: introspecttest.Respond(200, "text/html", "<html><body>active</body></html>"), wantErr: introspect.ErrMalformedResponse},
		{name: "JSON as text/plain", fault: introspecttest.Respond(200, "text/plain", `{"active":true}`), wantErr: introspect.ErrMalformedResponse},
		{name: "JSON without a content type", fault: introspecttest.Respond(200, "", `{"active":true}`), wantErr: introspect.ErrMalformedResponse},
		{name: "JSON as application/jwt", fault: introspecttest.Respond(200, "application/jwt", `{"active":true}`), wantErr: introspect.ErrMalformedResponse},
		{name: "bad content type", fault: introspecttest.Respond(200, "application/json; ===", `{"active":true}`), wantErr: introspect.ErrMalformedResponse},
		{name: "array", fault: introspecttest.Answer(`[{"active":true}]`), wantErr: introspect.ErrMalformedResponse},
		{name: "string", fault: introspecttest.Answer(`"active"`), wantErr: introspect.ErrMalformedResponse},
		{name: "null", fault: introspecttest.Answer(`null`), wantErr: introspect.ErrMalformedResponse},
		{name: "empty body", fault: introspecttest.Answer(``), wantErr: introspect.ErrMalformedResponse},
		{name: "truncated", fault: introspecttest.Answer(`{"active":true,"sub":"al`), wantErr: introspect.ErrMalformedResponse},
		{name: "active as a string", fault: introspecttest.Answer(`{"active":"true"}`), wantErr: introspect.ErrMalformedResponse},
		{name: "active twice", fault: introspecttest.Answer(`{"active":false,"active":true}`), wantErr: introspect.ErrMalformedResponse},
		{name: "bad exp", fault: introspecttest.Answer(`{"active":true,"exp":"tomorrow"}`), wantErr: introspect.ErrMalformedResponse},
		{name: "charset parameter", fault: introspecttest.Respond(200, "application/json; charset=utf-8", `{"active":true,"sub":"x"}`)},
		{name: "upper-case content type", fault: introspecttest.Respond(200, "Application/JSON", `{"active":true,"sub":"x"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAS(t)
			srv.SetFault(tt.fault)
			c := clientFor(t, srv)
			tok := srv.Issue(introspecttest.Claims{})
			ti, err := c.Introspect(t.Context(), tok)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, "x", ti.Subject)
				return
			}
			assert.Nil(t, ti)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.NotErrorIs(t, err, introspect.ErrInactiveToken)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
			assertNoSecrets(t, err, tok)
		})
	}
}

func TestClientMisbehavingAS(t *testing.T) {
	const short = 300 * time.Millisecond
	// margin is generous: the test only proves the call ends, not how fast.
	const margin = 10 * time.Second
	tests := []struct {
		name    string
		fault   introspecttest.Fault
		opts    []introspect.Option
		limit   time.Duration
		wantErr error // nil: the answer is used
	}{
		{name: "latency beyond the timeout", fault: introspecttest.Latency(time.Minute), opts: []introspect.Option{introspect.WithTimeout(short)}, limit: short + margin, wantErr: introspect.ErrUnavailable},
		{name: "latency within the timeout", fault: introspecttest.Latency(20 * time.Millisecond), limit: introspect.DefaultTimeout + margin},
		{name: "hang", fault: introspecttest.Hang(), opts: []introspect.Option{introspect.WithTimeout(short)}, limit: short + margin, wantErr: introspect.ErrUnavailable},
		{name: "hang with a client without timeout", fault: introspecttest.Hang(), opts: []introspect.Option{introspect.WithTimeout(short), introspect.WithHTTPClient(&http.Client{})}, limit: short + margin, wantErr: introspect.ErrUnavailable},
		{name: "trickle", fault: introspecttest.Trickle(10 * time.Millisecond), opts: []introspect.Option{introspect.WithTimeout(short)}, limit: short + margin, wantErr: introspect.ErrUnavailable},
		{name: "oversized beyond WithMaxResponseSize", fault: introspecttest.Oversized(4097), opts: []introspect.Option{introspect.WithMaxResponseSize(4096)}, limit: introspect.DefaultTimeout + margin, wantErr: introspect.ErrResponseTooLarge},
		{name: "exactly WithMaxResponseSize", fault: introspecttest.Oversized(4096), opts: []introspect.Option{introspect.WithMaxResponseSize(4096)}, limit: introspect.DefaultTimeout + margin},
		{name: "64 MiB with the default cap", fault: introspecttest.Oversized(64 << 20), limit: introspect.DefaultTimeout + margin, wantErr: introspect.ErrResponseTooLarge},
		{name: "just over the default cap", fault: introspecttest.Oversized(introspect.DefaultMaxResponseSize + 1), limit: introspect.DefaultTimeout + margin, wantErr: introspect.ErrResponseTooLarge},
		{name: "connection reset", fault: introspecttest.Reset(), limit: introspect.DefaultTimeout + margin, wantErr: introspect.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAS(t)
			srv.SetFault(tt.fault)
			c := clientFor(t, srv, tt.opts...)
			tok := srv.Issue(introspecttest.Claims{Subject: "alice"})
			ti, err := introspectBefore(t, c, tok, tt.limit)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.True(t, ti.Active)
				return
			}
			assert.Nil(t, ti)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.NotErrorIs(t, err, introspect.ErrInactiveToken)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
			assertNoSecrets(t, err, tok)
			assert.NotContains(t, err.Error(), srv.URL, "errors do not repeat the endpoint")
		})
	}
}

func TestClientCallerContext(t *testing.T) {
	srv := startAS(t)
	srv.SetFault(introspecttest.Hang())
	c := clientFor(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Introspect(ctx, srv.Issue(introspecttest.Claims{}))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, introspect.ErrUnavailable)
	case <-time.After(introspect.DefaultTimeout / 2):
		t.Fatal("a cancelled caller still waits for a hung AS")
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	tests := []struct {
		name string
		hc   func() *http.Client // nil: the default client
	}{
		{name: "default client"},
		{name: "user client following redirects", hc: func() *http.Client { return &http.Client{} }},
		{name: "user client with its own CheckRedirect", hc: func() *http.Client {
			return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := startAS(t) // would accept the credentials if they came
			srv := startAS(t)
			srv.SetFault(introspecttest.Redirect(target.IntrospectionURL()))
			var opts []introspect.Option
			var hc *http.Client
			if tt.hc != nil {
				hc = tt.hc()
				opts = append(opts, introspect.WithHTTPClient(hc))
			}
			c := clientFor(t, srv, opts...)
			tok := target.Issue(introspecttest.Claims{})
			ti, err := c.Introspect(t.Context(), tok)
			assert.Nil(t, ti)
			assertResponseError(t, err, http.StatusTemporaryRedirect, "")
			assert.EqualValues(t, 1, srv.Calls())
			assert.EqualValues(t, 0, target.Calls(), "the redirect was followed")
			assertNoSecrets(t, err, tok)
			if hc != nil && tt.name == "user client following redirects" {
				assert.Nil(t, hc.CheckRedirect, "the user's client is not modified")
			}
		})
	}
}

func TestClientTLS(t *testing.T) {
	srv := startAS(t, introspecttest.WithTLS())
	require.True(t, strings.HasPrefix(srv.URL, "https://"))
	tok := srv.Issue(introspecttest.Claims{Subject: "alice"})

	c := clientFor(t, srv, introspect.WithHTTPClient(srv.HTTPClient()))
	ti, err := c.Introspect(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", ti.Subject)

	// The default client does not trust the test certificate.
	c = clientFor(t, srv)
	_, err = c.Introspect(t.Context(), tok)
	assert.ErrorIs(t, err, introspect.ErrUnavailable)
	assertNoSecrets(t, err, tok)
}

func TestClientEndpointRules(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		opts     []introspect.Option
		wantErr  bool
	}{
		{name: "https", endpoint: "https://as.example.com/oauth2/introspect"},
		{name: "https with a port and a query", endpoint: "https://as.example.com:8443/introspect?tenant=a"},
		{name: "http to a remote host", endpoint: "http://as.example.com/introspect", wantErr: true},
		{name: "http to a remote host, allowed", endpoint: "http://as.example.com/introspect", opts: []introspect.Option{introspect.InsecureAllowHTTP()}},
		{name: "http to 127.0.0.1", endpoint: "http://127.0.0.1:8080/introspect"},
		{name: "http to 127.0.0.2", endpoint: "http://127.0.0.2/introspect"},
		{name: "http to localhost", endpoint: "http://localhost:8080/introspect"},
		{name: "http to LOCALHOST", endpoint: "http://LOCALHOST/introspect"},
		{name: "http to ::1", endpoint: "http://[::1]:8080/introspect"},
		{name: "http to a host named like localhost", endpoint: "http://localhost.example.com/introspect", wantErr: true},
		{name: "http to a private address", endpoint: "http://10.0.0.1/introspect", wantErr: true},
		{name: "userinfo", endpoint: "https://rs:" + clSecret + "@as.example.com/introspect", wantErr: true},
		{name: "userinfo on loopback", endpoint: "http://rs:" + clSecret + "@127.0.0.1/introspect", wantErr: true},
		{name: "user only", endpoint: "https://rs@as.example.com/introspect", wantErr: true},
		{name: "fragment", endpoint: "https://as.example.com/introspect#x", wantErr: true},
		{name: "relative", endpoint: "/introspect", wantErr: true},
		{name: "no scheme", endpoint: "as.example.com/introspect", wantErr: true},
		{name: "other scheme", endpoint: "ftp://as.example.com/introspect", wantErr: true},
		{name: "opaque", endpoint: "https:as.example.com", wantErr: true},
		{name: "empty", endpoint: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := introspect.NewClient(append([]introspect.Option{
				introspect.WithEndpoint(tt.endpoint),
				introspect.WithClientCredentials(clClientID, clSecret),
			}, tt.opts...)...)
			if !tt.wantErr {
				require.NoError(t, err)
				assert.NotNil(t, c)
				return
			}
			require.Error(t, err)
			assert.Nil(t, c)
			assertNoSecrets(t, err)
		})
	}
}

func TestNewClientConfigErrors(t *testing.T) {
	ep := introspect.WithEndpoint("https://as.example.com/introspect")
	creds := introspect.WithClientCredentials(clClientID, clSecret)
	store := introspect.WithClientStore(introspect.StaticClientStore{Endpoint: "https://as.example.com/introspect"})
	tests := []struct {
		name     string
		opts     []introspect.Option
		wantText string // a part of the error text, if any
	}{
		{name: "nothing"},
		{name: "missing endpoint", opts: []introspect.Option{creds}, wantText: "endpoint"},
		{name: "missing credentials", opts: []introspect.Option{ep}, wantText: "credentials"},
		{name: "empty client ID", opts: []introspect.Option{ep, introspect.WithClientCredentials("", clSecret)}, wantText: "client ID"},
		{name: "store and endpoint", opts: []introspect.Option{store, ep}, wantText: "WithClientStore"},
		{name: "store and credentials", opts: []introspect.Option{store, creds}, wantText: "WithClientStore"},
		{name: "store and lazy credentials", opts: []introspect.Option{store, introspect.WithClientCredentialsFunc(clClientID, func(context.Context) (string, error) { return "", nil })}, wantText: "WithClientStore"},
		{name: "nil store", opts: []introspect.Option{introspect.WithClientStore(nil)}},
		{name: "nil option", opts: []introspect.Option{ep, creds, nil}, wantText: "nil option"},
		{name: "middleware-only WithRealm", opts: []introspect.Option{ep, creds, introspect.WithRealm("api")}, wantText: "WithRealm"},
		{name: "middleware-only WithOptionalToken", opts: []introspect.Option{ep, creds, introspect.WithOptionalToken()}, wantText: "WithOptionalToken"},
		{name: "middleware-only WithExtractor", opts: []introspect.Option{ep, creds, introspect.WithExtractor(introspect.BearerExtractor{})}, wantText: "WithExtractor"},
		{name: "nil secret function", opts: []introspect.Option{ep, introspect.WithClientCredentialsFunc(clClientID, nil)}},
		{name: "bad auth method", opts: []introspect.Option{ep, creds, introspect.WithAuthMethod("client_secret_magic")}},
		{name: "nil HTTP client", opts: []introspect.Option{ep, creds, introspect.WithHTTPClient(nil)}},
		{name: "zero timeout", opts: []introspect.Option{ep, creds, introspect.WithTimeout(0)}},
		{name: "negative timeout", opts: []introspect.Option{ep, creds, introspect.WithTimeout(-time.Second)}},
		{name: "zero response size", opts: []introspect.Option{ep, creds, introspect.WithMaxResponseSize(0)}},
		{name: "negative leeway", opts: []introspect.Option{ep, creds, introspect.WithLeeway(-time.Second)}},
		{name: "leeway over MaxLeeway", opts: []introspect.Option{ep, creds, introspect.WithLeeway(introspect.MaxLeeway + time.Second)}},
		{name: "empty issuer", opts: []introspect.Option{ep, creds, introspect.WithExpectedIssuer("")}},
		{name: "no audience", opts: []introspect.Option{ep, creds, introspect.WithExpectedAudience()}},
		{name: "empty audience", opts: []introspect.Option{ep, creds, introspect.WithExpectedAudience("api", "")}},
		{name: "empty allowed client ID", opts: []introspect.Option{ep, creds, introspect.WithAllowedClientIDs("")}},
		{name: "nil clock", opts: []introspect.Option{ep, creds, introspect.WithClock(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := introspect.NewClient(tt.opts...)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), "error %q", err)
			if tt.wantText != "" {
				assert.Contains(t, err.Error(), tt.wantText)
			}
			assertNoSecrets(t, err)
		})
	}

	// The same options without the mistake are fine.
	_, err := introspect.NewClient(ep, creds)
	require.NoError(t, err)
	_, err = introspect.NewClient(store)
	require.NoError(t, err)
}

func TestClientLazyCredentials(t *testing.T) {
	srv := startAS(t)
	var calls atomic.Int64
	var fail atomic.Bool
	var hadDeadline atomic.Bool
	secret := func(ctx context.Context) (string, error) {
		calls.Add(1)
		_, ok := ctx.Deadline()
		hadDeadline.Store(ok)
		if fail.Load() {
			return "", errors.New("vault unreachable")
		}
		return clSecret, nil
	}
	c, err := introspect.NewClient(
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentialsFunc(clClientID, secret),
	)
	require.NoError(t, err)
	assert.EqualValues(t, 0, calls.Load(), "not called by NewClient")

	tok := srv.Issue(introspecttest.Claims{Subject: "alice"})
	for i := 1; i <= 2; i++ {
		ti, err := c.Introspect(t.Context(), tok)
		require.NoError(t, err)
		assert.Equal(t, "alice", ti.Subject)
		assert.EqualValues(t, i, calls.Load(), "called once per AS call")
	}
	assert.True(t, hadDeadline.Load(), "called with the call's bounded context")
	assert.Equal(t, "client_secret_basic", srv.LastRequest().AuthMethod)

	fail.Store(true)
	before := srv.Calls()
	ti, err := c.Introspect(t.Context(), tok)
	assert.Nil(t, ti)
	assert.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.NotErrorIs(t, err, introspect.ErrInactiveToken)
	assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
	assert.Equal(t, before, srv.Calls(), "no call without a secret")
	assertNoSecrets(t, err, tok)
}

func TestClientLazyCredentialsPost(t *testing.T) {
	srv := startAS(t)
	c, err := introspect.NewClient(
		introspect.WithEndpoint(srv.IntrospectionURL()),
		introspect.WithClientCredentialsFunc(clClientID, func(context.Context) (string, error) { return clSecret, nil }),
		introspect.WithAuthMethod(introspect.ClientSecretPost),
	)
	require.NoError(t, err)
	_, err = c.Introspect(t.Context(), srv.Issue(introspecttest.Claims{}))
	require.NoError(t, err)
	assert.Equal(t, "client_secret_post", srv.LastRequest().AuthMethod)
}

func TestClientIntrospectAs(t *testing.T) {
	asA := introspecttest.NewServer(introspecttest.WithClient("rs-a", "secret-a"))
	t.Cleanup(asA.Close)
	asB := introspecttest.NewServer(introspecttest.WithRegisteredClient(introspecttest.Client{ID: "rs-b", Secret: "secret-b", Methods: []string{"client_secret_post"}}))
	t.Cleanup(asB.Close)
	ccA := introspect.ClientContext{Endpoint: asA.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: "rs-a", ClientSecret: "secret-a"}}
	ccB := introspect.ClientContext{Endpoint: asB.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: "rs-b", ClientSecret: "secret-b", AuthMethod: introspect.ClientSecretPost}}
	tokA := asA.Issue(introspecttest.Claims{Subject: "from-a"})
	tokB := asB.Issue(introspecttest.Claims{Subject: "from-b"})

	c, err := introspect.NewClient(introspect.WithClientStore(introspect.StaticClientStore(ccA)))
	require.NoError(t, err)

	_, err = c.Introspect(t.Context(), tokA)
	assert.ErrorIs(t, err, introspect.ErrClientConfig, "Introspect needs static credentials")
	assert.Zero(t, asA.Calls())

	ti, err := c.IntrospectAs(t.Context(), ccA, tokA)
	require.NoError(t, err)
	assert.Equal(t, "from-a", ti.Subject)
	ti, err = c.IntrospectAs(t.Context(), ccB, tokB)
	require.NoError(t, err)
	assert.Equal(t, "from-b", ti.Subject)
	assert.Equal(t, "client_secret_post", asB.LastRequest().AuthMethod)
	assert.Equal(t, "rs-b", asB.LastRequest().ClientID)

	// Tenants are separate: A does not know B's token.
	ti, err = c.IntrospectAs(t.Context(), ccA, tokB)
	assert.ErrorIs(t, err, introspect.ErrInactiveToken)
	require.NotNil(t, ti)
	assert.False(t, ti.Active)

	// B's credentials are refused at A.
	_, err = c.IntrospectAs(t.Context(), introspect.ClientContext{Endpoint: asA.IntrospectionURL(), Credentials: ccB.Credentials}, tokA)
	assertResponseError(t, err, http.StatusUnauthorized, "invalid_client")
	assertNoSecrets(t, err, tokA, "secret-a", "secret-b")

	// Endpoints and credentials from a context are checked on each call.
	callsA := asA.Calls()
	for _, cc := range []introspect.ClientContext{
		{Endpoint: "http://as.example.com/introspect", Credentials: ccA.Credentials},
		{Endpoint: "https://rs-a:secret-a@as.example.com/introspect", Credentials: ccA.Credentials},
		{Endpoint: "", Credentials: ccA.Credentials},
		{Endpoint: asA.IntrospectionURL(), Credentials: introspect.Credentials{ClientSecret: "secret-a"}},
		{Endpoint: asA.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: "rs-a", ClientSecret: "secret-a", AuthMethod: "magic"}},
	} {
		ti, err := c.IntrospectAs(t.Context(), cc, tokA)
		assert.Nil(t, ti)
		assert.ErrorIs(t, err, introspect.ErrClientConfig, "%q", cc.Endpoint)
		assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
		assertNoSecrets(t, err, tokA, "secret-a")
	}
	assert.Equal(t, callsA, asA.Calls())

	// A static client may still ask another AS for one call.
	static := clientFor(t, startAS(t))
	ti, err = static.IntrospectAs(t.Context(), ccB, tokB)
	require.NoError(t, err)
	assert.Equal(t, "from-b", ti.Subject)
}

func TestClientLocalChecks(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := startAS(t, introspecttest.WithClock(func() time.Time { return t0 }), introspecttest.WithIssuer("https://as.example.com"))
	tests := []struct {
		name    string
		claims  introspecttest.Claims
		now     time.Time // the client's clock
		opts    []introspect.Option
		wantErr error
	}{
		{name: "valid", claims: introspecttest.Claims{TTL: time.Hour}, now: t0},
		{name: "exp past", claims: introspecttest.Claims{TTL: time.Minute}, now: t0.Add(time.Hour), wantErr: introspect.ErrTokenExpired},
		{name: "exp past within the default leeway", claims: introspecttest.Claims{TTL: time.Minute}, now: t0.Add(time.Minute + introspect.DefaultLeeway - time.Second)},
		{name: "exp past beyond the default leeway", claims: introspecttest.Claims{TTL: time.Minute}, now: t0.Add(time.Minute + introspect.DefaultLeeway + time.Second), wantErr: introspect.ErrTokenExpired},
		{name: "exp past with no leeway", claims: introspecttest.Claims{TTL: time.Minute}, now: t0.Add(time.Minute + time.Nanosecond), opts: []introspect.Option{introspect.WithLeeway(0)}, wantErr: introspect.ErrTokenExpired},
		{name: "exp past within a larger leeway", claims: introspecttest.Claims{TTL: time.Minute}, now: t0.Add(2 * time.Minute), opts: []introspect.Option{introspect.WithLeeway(90 * time.Second)}},
		{name: "no exp", claims: introspecttest.Claims{NoExpiry: true}, now: t0.Add(24 * 365 * time.Hour)},
		{name: "nbf future", claims: introspecttest.Claims{NotBefore: t0.Add(time.Minute)}, now: t0, wantErr: introspect.ErrTokenNotYetValid},
		{name: "nbf future within leeway", claims: introspecttest.Claims{NotBefore: t0.Add(introspect.DefaultLeeway - time.Second)}, now: t0},
		{name: "nbf past", claims: introspecttest.Claims{NotBefore: t0.Add(-time.Minute)}, now: t0},
		{name: "iat future", claims: introspecttest.Claims{IssuedAt: t0.Add(time.Minute)}, now: t0, wantErr: introspect.ErrTokenIssuedInFuture},
		{name: "iat future within leeway", claims: introspecttest.Claims{IssuedAt: t0.Add(introspect.DefaultLeeway - time.Second)}, now: t0},
		{name: "issuer matches", claims: introspecttest.Claims{}, now: t0, opts: []introspect.Option{introspect.WithExpectedIssuer("https://as.example.com")}},
		{name: "issuer differs", claims: introspecttest.Claims{Issuer: "https://evil.example.com"}, now: t0, opts: []introspect.Option{introspect.WithExpectedIssuer("https://as.example.com")}, wantErr: introspect.ErrIssuerMismatch},
		{name: "issuer differs by a slash", claims: introspecttest.Claims{Issuer: "https://as.example.com/"}, now: t0, opts: []introspect.Option{introspect.WithExpectedIssuer("https://as.example.com")}, wantErr: introspect.ErrIssuerMismatch},
		{name: "audience matches one of several", claims: introspecttest.Claims{Audience: []string{"other", "api"}}, now: t0, opts: []introspect.Option{introspect.WithExpectedAudience("api", "api2")}},
		{name: "single audience matches", claims: introspecttest.Claims{Audience: []string{"api2"}}, now: t0, opts: []introspect.Option{introspect.WithExpectedAudience("api", "api2")}},
		{name: "audience differs", claims: introspecttest.Claims{Audience: []string{"other"}}, now: t0, opts: []introspect.Option{introspect.WithExpectedAudience("api")}, wantErr: introspect.ErrAudienceMismatch},
		{name: "no audience", claims: introspecttest.Claims{}, now: t0, opts: []introspect.Option{introspect.WithExpectedAudience("api")}, wantErr: introspect.ErrAudienceMismatch},
		{name: "client allowed", claims: introspecttest.Claims{ClientID: "app2"}, now: t0, opts: []introspect.Option{introspect.WithAllowedClientIDs("app1", "app2")}},
		{name: "client not allowed", claims: introspecttest.Claims{ClientID: "app3"}, now: t0, opts: []introspect.Option{introspect.WithAllowedClientIDs("app1", "app2")}, wantErr: introspect.ErrClientNotAllowed},
		{name: "no client_id", claims: introspecttest.Claims{}, now: t0, opts: []introspect.Option{introspect.WithAllowedClientIDs("app1")}, wantErr: introspect.ErrClientNotAllowed},
		{name: "client_id not checked by default", claims: introspecttest.Claims{ClientID: "someone-else"}, now: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := srv.Issue(tt.claims)
			c := clientFor(t, srv, append([]introspect.Option{introspect.WithClock(func() time.Time { return tt.now })}, tt.opts...)...)
			ti, err := c.Introspect(t.Context(), tok)
			require.NotNil(t, ti, "the answer is returned")
			assert.True(t, ti.Active, "the AS said active")
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr)
			assert.ErrorIs(t, err, introspect.ErrInactiveToken)
			assert.NotErrorIs(t, err, introspect.ErrUnavailable)
			assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
			assertNoSecrets(t, err, tok)
		})
	}
}

func TestClientConcurrentCallsAndConnectionReuse(t *testing.T) {
	srv := startAS(t)
	c := clientFor(t, srv)
	tok := srv.Issue(introspecttest.Claims{Subject: "alice"})
	const n = 64
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ti, err := c.Introspect(context.Background(), tok); err != nil || ti.Subject != "alice" {
				failures.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, failures.Load())
	assert.EqualValues(t, n, srv.Calls(), "a Client does not cache")

	// Sequential calls reuse an idle connection. Dials the transport
	// started for the concurrent calls may still be landing (it keeps a dial
	// that a freed connection made unnecessary): wait until the count holds
	// still before taking it.
	conns := srv.Connections()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now := srv.Connections()
		if now == conns {
			break
		}
		conns = now
	}
	for range 20 {
		_, err := c.Introspect(t.Context(), tok)
		require.NoError(t, err)
	}
	assert.Equal(t, conns, srv.Connections(), "new connections for sequential calls")
}

func TestCredentialsNeverPrinted(t *testing.T) {
	cr := introspect.Credentials{ClientID: clClientID, ClientSecret: clSecret, AuthMethod: introspect.ClientSecretPost}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs[verb] = fmt.Sprintf(verb, cr)
		outs["pointer "+verb] = fmt.Sprintf(verb, &cr)
	}
	outs["in a struct"] = fmt.Sprintf("%+v", struct{ C introspect.Credentials }{cr})
	outs["client context"] = fmt.Sprintf("%+v", introspect.ClientContext{Endpoint: "https://as", Credentials: cr})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "creds", cr)
	outs["slog JSON"] = buf.String()
	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "creds", cr)
	outs["slog text"] = buf.String()
	for name, out := range outs {
		assert.NotContains(t, out, clSecret, name)
	}
	assert.Contains(t, cr.String(), clClientID)
	assert.Contains(t, outs["slog JSON"], clClientID)
}
