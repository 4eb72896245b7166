package introspecttest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect/introspecttest"
)

const (
	testID     = "rs:client/1"
	testSecret = "a:b/c+d%e&f=g h"
)

func startServer(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	s := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(testID, testSecret)}, opts...)...)
	t.Cleanup(s.Close)
	return s
}

// call is one introspection request as a client would make it.
type call struct {
	method      string     // default POST
	contentType string     // default form
	form        url.Values // the body
	basic       *[2]string // raw user and password of a Basic header
	accept      string
	client      *http.Client
}

type answer struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func do(t *testing.T, s *introspecttest.Server, c call) answer {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.contentType == "" {
		c.contentType = "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, s.IntrospectionURL(), strings.NewReader(c.form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", c.contentType)
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	if c.basic != nil {
		req.SetBasicAuth(c.basic[0], c.basic[1])
	}
	hc := c.client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

// basicEncoded is client_secret_basic done right (RFC 6749 §2.3.1).
func basicEncoded(id, secret string) *[2]string {
	return &[2]string{url.QueryEscape(id), url.QueryEscape(secret)}
}

func tokenForm(tok string) url.Values { return url.Values{"token": {tok}} }

func TestStrictClientAuthentication(t *testing.T) {
	s := startServer(t, introspecttest.WithRegisteredClient(introspecttest.Client{ID: "post-only", Secret: "p", Methods: []string{"client_secret_post"}}))
	tok := s.Issue(introspecttest.Claims{Subject: "alice"})
	withPost := func(id, secret string) url.Values {
		return url.Values{"token": {tok}, "client_id": {id}, "client_secret": {secret}}
	}
	tests := []struct {
		name       string
		c          call
		wantStatus int
		wantError  string
		wantActive bool
	}{
		{name: "basic, form-encoded", c: call{form: tokenForm(tok), basic: basicEncoded(testID, testSecret)}, wantStatus: 200, wantActive: true},
		{name: "post", c: call{form: withPost(testID, testSecret)}, wantStatus: 200, wantActive: true},
		{name: "basic, not form-encoded", c: call{form: tokenForm(tok), basic: &[2]string{testID, testSecret}}, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic, wrong secret", c: call{form: tokenForm(tok), basic: basicEncoded(testID, "x")}, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic, unknown client", c: call{form: tokenForm(tok), basic: basicEncoded("nobody", testSecret)}, wantStatus: 401, wantError: "invalid_client"},
		{name: "basic, bad escape", c: call{form: tokenForm(tok), basic: &[2]string{"rs%zz", "x"}}, wantStatus: 401, wantError: "invalid_client"},
		{name: "post, wrong secret", c: call{form: withPost(testID, "x")}, wantStatus: 401, wantError: "invalid_client"},
		{name: "post, client_id without a secret", c: call{form: url.Values{"token": {tok}, "client_id": {testID}}}, wantStatus: 401, wantError: "invalid_client"},
		{name: "no authentication", c: call{form: tokenForm(tok)}, wantStatus: 401, wantError: "invalid_client"},
		{name: "two methods", c: call{form: withPost(testID, testSecret), basic: basicEncoded(testID, testSecret)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "method not registered", c: call{form: tokenForm(tok), basic: basicEncoded("post-only", "p")}, wantStatus: 401, wantError: "invalid_client"},
		{name: "registered method", c: call{form: withPost("post-only", "p")}, wantStatus: 200, wantActive: true},
		{name: "GET", c: call{method: http.MethodGet, basic: basicEncoded(testID, testSecret)}, wantStatus: 405, wantError: "invalid_request"},
		{name: "JSON body", c: call{contentType: "application/json", form: tokenForm(tok), basic: basicEncoded(testID, testSecret)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "no token", c: call{basic: basicEncoded(testID, testSecret)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "empty token", c: call{form: tokenForm(""), basic: basicEncoded(testID, testSecret)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "two tokens", c: call{form: url.Values{"token": {tok, tok}}, basic: basicEncoded(testID, testSecret)}, wantStatus: 400, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, s, tt.c)
			assert.Equal(t, tt.wantStatus, a.status, a.body)
			assert.Equal(t, "application/json", a.header.Get("Content-Type"))
			assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
			if tt.wantError != "" {
				assert.Equal(t, tt.wantError, a.json["error"])
				assert.NotContains(t, a.json, "active")
			} else {
				assert.Equal(t, tt.wantActive, a.json["active"])
			}
			if tt.wantStatus == 401 {
				assert.Equal(t, `Basic realm="introspecttest"`, a.header.Get("WWW-Authenticate"))
			}
			if tt.wantStatus == 405 {
				assert.Equal(t, http.MethodPost, a.header.Get("Allow"))
			}
			assert.NotContains(t, a.body, testSecret)
		})
	}
}

// WithoutBasicFormDecoding: the Basic credentials are taken as they come
// out of base64, so the raw form succeeds and the form-encoded one fails.
func TestWithoutBasicFormDecoding(t *testing.T) {
	const id = "rs-raw"
	s := startServer(t, introspecttest.WithClient(id, testSecret), introspecttest.WithoutBasicFormDecoding())
	tok := s.Issue(introspecttest.Claims{Subject: "alice"})
	tests := []struct {
		name       string
		basic      *[2]string
		wantStatus int
	}{
		{"raw, a secret with a colon", &[2]string{id, testSecret}, 200},
		{"form-encoded", basicEncoded(id, testSecret), 401},
		{"raw, a secret that does not unescape", &[2]string{id, "%zz"}, 401},
		{"raw, wrong secret", &[2]string{id, "x"}, 401},
		{"raw, a client ID with a colon splits the pair", &[2]string{testID, testSecret}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, s, call{form: tokenForm(tok), basic: tt.basic})
			assert.Equal(t, tt.wantStatus, a.status, a.body)
			if tt.wantStatus == 200 {
				assert.Equal(t, true, a.json["active"])
				assert.Equal(t, "client_secret_basic", s.LastRequest().AuthMethod)
			} else {
				assert.Equal(t, "invalid_client", a.json["error"])
			}
		})
	}
}

func TestAddClient(t *testing.T) {
	s := startServer(t)
	tok := s.Issue(introspecttest.Claims{})
	c := call{form: tokenForm(tok), basic: basicEncoded("late", "s")}
	assert.Equal(t, 401, do(t, s, c).status)
	s.AddClient("late", "s")
	assert.Equal(t, 200, do(t, s, c).status)
}

func TestLastRequest(t *testing.T) {
	s := startServer(t)
	assert.Equal(t, introspecttest.Request{}, s.LastRequest())
	tok := s.Issue(introspecttest.Claims{})

	form := tokenForm(tok)
	form.Set("token_type_hint", "access_token")
	do(t, s, call{form: form, basic: basicEncoded(testID, testSecret), accept: "application/json"})
	last := s.LastRequest()
	assert.Equal(t, "client_secret_basic", last.AuthMethod)
	assert.Equal(t, testID, last.ClientID)
	assert.True(t, last.HasHint)
	assert.Equal(t, "access_token", last.TokenTypeHint)
	assert.Equal(t, "application/json", last.Accept)
	assert.Equal(t, "application/x-www-form-urlencoded", last.ContentType)
	for _, out := range []string{fmt.Sprintf("%+v", last), fmt.Sprintf("%#v", last)} {
		assert.NotContains(t, out, tok)
		assert.NotContains(t, out, testSecret)
	}

	form = url.Values{"token": {tok}, "client_id": {testID}, "client_secret": {"wrong"}}
	do(t, s, call{form: form})
	last = s.LastRequest()
	assert.Equal(t, "client_secret_post", last.AuthMethod, "recorded even when refused")
	assert.Equal(t, testID, last.ClientID)
	assert.False(t, last.HasHint)
	assert.Empty(t, last.TokenTypeHint)
	assert.Empty(t, last.Accept)
}

func TestIssuedClaims(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := startServer(t, introspecttest.WithClock(func() time.Time { return t0 }))
	auth := basicEncoded(testID, testSecret)
	tests := []struct {
		name   string
		claims introspecttest.Claims
		want   map[string]any // members expected, with JSON numbers as float64
		absent []string
	}{
		{
			name:   "defaults",
			claims: introspecttest.Claims{},
			want:   map[string]any{"active": true, "iss": s.URL, "token_type": "Bearer", "exp": float64(t0.Add(time.Hour).Unix()), "iat": float64(t0.Unix())},
			absent: []string{"sub", "client_id", "username", "scope", "aud", "nbf", "cnf"},
		},
		{
			name: "everything",
			claims: introspecttest.Claims{
				Subject: "alice", ClientID: "app", Username: "al", Scope: "read write",
				Audience: []string{"api", "other"}, Issuer: "https://as.example.com", TokenType: "N_A",
				TTL: time.Minute, NotBefore: t0.Add(-time.Minute), IssuedAt: t0.Add(-2 * time.Minute),
				Confirmation: map[string]string{"x5t#S256": "thumb"},
				Extra:        map[string]any{"tenant": "acme", "roles": []string{"a"}},
			},
			want: map[string]any{
				"active": true, "sub": "alice", "client_id": "app", "username": "al", "scope": "read write",
				"aud": []any{"api", "other"}, "iss": "https://as.example.com", "token_type": "N_A",
				"exp": float64(t0.Add(time.Minute).Unix()), "nbf": float64(t0.Add(-time.Minute).Unix()),
				"iat": float64(t0.Add(-2 * time.Minute).Unix()), "cnf": map[string]any{"x5t#S256": "thumb"},
				"tenant": "acme", "roles": []any{"a"},
			},
		},
		{name: "one audience is a string", claims: introspecttest.Claims{Audience: []string{"api"}}, want: map[string]any{"aud": "api"}},
		{name: "explicit expiry", claims: introspecttest.Claims{Expiry: t0.Add(90 * time.Second), TTL: time.Hour}, want: map[string]any{"exp": float64(t0.Add(90 * time.Second).Unix())}},
		{name: "no expiry", claims: introspecttest.Claims{NoExpiry: true}, absent: []string{"exp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.Issue(tt.claims)
			a := do(t, s, call{form: tokenForm(tok), basic: auth})
			require.Equal(t, 200, a.status)
			for k, v := range tt.want {
				assert.Equal(t, v, a.json[k], k)
			}
			for _, k := range tt.absent {
				assert.NotContains(t, a.json, k)
			}
		})
	}
}

func TestWithIssuer(t *testing.T) {
	s := startServer(t, introspecttest.WithIssuer("https://issuer.example.com"))
	assert.Equal(t, "https://issuer.example.com", s.Issuer)
	a := do(t, s, call{form: tokenForm(s.Issue(introspecttest.Claims{})), basic: basicEncoded(testID, testSecret)})
	assert.Equal(t, "https://issuer.example.com", a.json["iss"])
}

func TestIssuedTokensAreDistinctB64Tokens(t *testing.T) {
	s := startServer(t)
	seen := map[string]bool{}
	for range 100 {
		tok := s.Issue(introspecttest.Claims{})
		assert.False(t, seen[tok], "duplicate token")
		seen[tok] = true
		_, err := base64.RawURLEncoding.DecodeString(tok)
		assert.NoError(t, err)
		assert.GreaterOrEqual(t, len(tok), 32)
	}
}

func TestRevokeAndUnknown(t *testing.T) {
	s := startServer(t)
	auth := basicEncoded(testID, testSecret)
	tok := s.Issue(introspecttest.Claims{Subject: "alice"})
	other := s.Issue(introspecttest.Claims{Subject: "bob"})
	assert.Equal(t, true, do(t, s, call{form: tokenForm(tok), basic: auth}).json["active"])
	s.Revoke(tok)
	a := do(t, s, call{form: tokenForm(tok), basic: auth})
	assert.Equal(t, 200, a.status)
	assert.Equal(t, `{"active":false}`, a.body, "an inactive answer says nothing else")
	assert.Equal(t, true, do(t, s, call{form: tokenForm(other), basic: auth}).json["active"], "others stay active")
	assert.Equal(t, `{"active":false}`, do(t, s, call{form: tokenForm("never-issued"), basic: auth}).body)
	s.Revoke("never-issued") // no effect, no panic
}

func TestExpiryFollowsTheClock(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	s := startServer(t, introspecttest.WithClock(func() time.Time { return time.Unix(0, now.Load()).UTC() }))
	auth := basicEncoded(testID, testSecret)
	tok := s.Issue(introspecttest.Claims{TTL: time.Minute})
	past := s.Issue(introspecttest.Claims{Expiry: t0.Add(-time.Second)})
	never := s.Issue(introspecttest.Claims{NoExpiry: true})
	tests := []struct {
		name  string
		at    time.Duration
		token string
		want  bool
	}{
		{name: "issued", at: 0, token: tok, want: true},
		{name: "a second before exp", at: 59 * time.Second, token: tok, want: true},
		{name: "at exp", at: time.Minute, token: tok, want: false},
		{name: "after exp", at: time.Hour, token: tok, want: false},
		{name: "issued expired", at: 0, token: past, want: false},
		{name: "no expiry, years later", at: 10 * 365 * 24 * time.Hour, token: never, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now.Store(t0.Add(tt.at).UnixNano())
			a := do(t, s, call{form: tokenForm(tt.token), basic: auth})
			assert.Equal(t, tt.want, a.json["active"])
		})
	}
}

func TestCounters(t *testing.T) {
	s := startServer(t)
	auth := basicEncoded(testID, testSecret)
	tok := s.Issue(introspecttest.Claims{})
	assert.Zero(t, s.Calls())
	assert.Zero(t, s.Connections())

	// Keep-alive: one connection for sequential calls.
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	for range 5 {
		do(t, s, call{form: tokenForm(tok), basic: auth, client: hc})
	}
	assert.EqualValues(t, 5, s.Calls())
	assert.EqualValues(t, 1, s.Connections())

	// Without keep-alive: one connection per call.
	noKA := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		do(t, s, call{form: tokenForm(tok), basic: auth, client: noKA})
	}
	assert.EqualValues(t, 8, s.Calls())
	assert.EqualValues(t, 4, s.Connections())

	// Refused and faulty calls count too.
	do(t, s, call{form: tokenForm(tok), client: hc})
	s.SetFault(introspecttest.Respond(500, "", ""))
	do(t, s, call{form: tokenForm(tok), basic: auth, client: hc})
	assert.EqualValues(t, 10, s.Calls())

	// Many goroutines.
	s.ClearFault()
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader(tokenForm(tok).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(auth[0], auth[1])
			if resp, err := hc.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 10+n, s.Calls())
}

func TestFaults(t *testing.T) {
	auth := basicEncoded(testID, testSecret)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name  string
		fault func(s *introspecttest.Server) introspecttest.Fault
		check func(t *testing.T, s *introspecttest.Server, tok string)
	}{
		{
			name: "latency",
			fault: func(*introspecttest.Server) introspecttest.Fault {
				return introspecttest.Latency(50 * time.Millisecond)
			},
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				start := time.Now()
				a := do(t, s, call{form: tokenForm(tok), basic: auth})
				assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "answered before the delay")
				assert.Equal(t, true, a.json["active"])
			},
		},
		{
			name: "respond",
			fault: func(*introspecttest.Server) introspecttest.Fault {
				return introspecttest.Respond(503, "text/plain", "down", "Retry-After: 3", "X-Extra: a: b")
			},
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				a := do(t, s, call{form: tokenForm(tok), basic: auth})
				assert.Equal(t, 503, a.status)
				assert.Equal(t, "3", a.header.Get("Retry-After"))
				assert.Equal(t, "a: b", a.header.Get("X-Extra"))
				assert.Equal(t, "text/plain", a.header.Get("Content-Type"))
				assert.Equal(t, "down", a.body)
				// Respond comes before authentication.
				assert.Equal(t, 503, do(t, s, call{form: tokenForm(tok)}).status)
			},
		},
		{
			name:  "answer",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.Answer(`{"active":"yes"}`) },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				for _, token := range []string{tok, "unknown"} {
					a := do(t, s, call{form: tokenForm(token), basic: auth})
					assert.Equal(t, 200, a.status)
					assert.Equal(t, "application/json", a.header.Get("Content-Type"))
					assert.Equal(t, `{"active":"yes"}`, a.body)
				}
				assert.Equal(t, 401, do(t, s, call{form: tokenForm(tok)}).status, "clients are still authenticated")
			},
		},
		{
			name:  "invalid_token error",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.InvalidTokenError() },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				a := do(t, s, call{form: tokenForm("unknown"), basic: auth})
				assert.Equal(t, 400, a.status)
				assert.Equal(t, "invalid_token", a.json["error"])
				assert.Equal(t, true, do(t, s, call{form: tokenForm(tok), basic: auth}).json["active"])
			},
		},
		{
			name:  "hang",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.Hang() },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.IntrospectionURL(), strings.NewReader(tokenForm(tok).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				_, err := http.DefaultClient.Do(req)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			},
		},
		{
			name:  "trickle",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.Trickle(time.Millisecond) },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.IntrospectionURL(), strings.NewReader(tokenForm(tok).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, 200, resp.StatusCode)
				const prefix = `{"active":true,"x":"`
				buf := make([]byte, len(prefix)+5)
				_, err = io.ReadFull(resp.Body, buf)
				require.NoError(t, err)
				assert.Equal(t, prefix+"aaaaa", string(buf), "the body grows and never ends")
			},
		},
		{
			name:  "oversized",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.Oversized(100_000) },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				a := do(t, s, call{form: tokenForm(tok), basic: auth})
				assert.Equal(t, 200, a.status)
				assert.Len(t, a.body, 100_000)
				assert.Equal(t, true, a.json["active"], "valid JSON")
			},
		},
		{
			name:  "reset",
			fault: func(*introspecttest.Server) introspecttest.Fault { return introspecttest.Reset() },
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader(tokenForm(tok).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				assert.Error(t, err, "the answer is cut")
			},
		},
		{
			name: "redirect",
			fault: func(s *introspecttest.Server) introspecttest.Fault {
				return introspecttest.Redirect("https://elsewhere.example.com/introspect")
			},
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				a := do(t, s, call{form: tokenForm(tok), basic: auth, client: noRedirect})
				assert.Equal(t, http.StatusTemporaryRedirect, a.status)
				assert.Equal(t, "https://elsewhere.example.com/introspect", a.header.Get("Location"))
			},
		},
		{
			name: "block",
			fault: func(*introspecttest.Server) introspecttest.Fault {
				return introspecttest.Block(nil) // replaced in check
			},
			check: func(t *testing.T, s *introspecttest.Server, tok string) {
				release := make(chan struct{})
				s.SetFault(introspecttest.Block(release))
				done := make(chan answer, 1)
				go func() { done <- do(t, s, call{form: tokenForm(tok), basic: auth}) }()
				require.Eventually(t, func() bool { return s.Calls() == 1 }, 10*time.Second, time.Millisecond)
				select {
				case <-done:
					t.Fatal("answered before release")
				default:
				}
				close(release)
				a := <-done
				assert.Equal(t, true, a.json["active"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t)
			tok := s.Issue(introspecttest.Claims{})
			f := tt.fault(s)
			assert.NotEmpty(t, f.String())
			s.SetFault(f)
			tt.check(t, s, tok)

			s.ClearFault()
			a := do(t, s, call{form: tokenForm(tok), basic: auth})
			assert.Equal(t, 200, a.status, "normal again after ClearFault")
			assert.Equal(t, true, a.json["active"])
		})
	}
}

func TestCloseEndsHangingRequests(t *testing.T) {
	for _, f := range []introspecttest.Fault{introspecttest.Hang(), introspecttest.Trickle(time.Millisecond), introspecttest.Latency(time.Hour), introspecttest.Block(make(chan struct{}))} {
		t.Run(f.String(), func(t *testing.T) {
			s := introspecttest.NewServer()
			s.SetFault(f)
			errc := make(chan error, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader("token=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				errc <- err
			}()
			require.Eventually(t, func() bool { return s.Calls() == 1 }, 10*time.Second, time.Millisecond)
			closed := make(chan struct{})
			go func() { s.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(30 * time.Second):
				t.Fatal("Close waits for a misbehaving answer")
			}
			<-errc
			s.Close() // twice is fine
		})
	}
}

func TestConcurrentClose(t *testing.T) {
	s := introspecttest.NewServer()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}

func TestTLS(t *testing.T) {
	s := startServer(t, introspecttest.WithTLS())
	require.True(t, strings.HasPrefix(s.URL, "https://127.0.0.1:"), s.URL)
	assert.Equal(t, s.URL+"/introspect", s.IntrospectionURL())
	tok := s.Issue(introspecttest.Claims{})
	a := do(t, s, call{form: tokenForm(tok), basic: basicEncoded(testID, testSecret), client: s.HTTPClient()})
	assert.Equal(t, true, a.json["active"])

	req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader(tokenForm(tok).Encode()))
	_, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	assert.Error(t, err, "an untrusting client refuses the certificate")
}
