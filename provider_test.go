package introspect_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
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
	discoClientID = "rs-discovery"
	discoSecret   = "disc:secret/with+reserved%&= chars"
)

// fakeClock is a settable clock for the refresh schedule and the local checks.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// discoAS starts a test AS knowing discoClientID.
func discoAS(t *testing.T, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(discoClientID, discoSecret)}, opts...)...)
	t.Cleanup(as.Close)
	return as
}

// discoClient is a client configured by discovery of as.
func discoClient(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) (*introspect.Client, error) {
	t.Helper()
	c, err := introspect.NewClient(append([]introspect.Option{
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		introspect.WithTimeout(2 * time.Second),
	}, opts...)...)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func mustDiscoClient(t *testing.T, as *introspecttest.Server, opts ...introspect.Option) *introspect.Client {
	t.Helper()
	c, err := discoClient(t, as, opts...)
	require.NoError(t, err)
	return c
}

// assertActive introspects a fresh token and requires an active verdict.
func assertActive(t *testing.T, as *introspecttest.Server, c *introspect.Client) *introspect.Introspection {
	t.Helper()
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	ti, err := c.Introspect(context.Background(), tok)
	require.NoError(t, err)
	require.True(t, ti.Active)
	assert.Equal(t, "alice", ti.Subject)
	return ti
}

func TestDiscoveryLocations(t *testing.T) {
	tests := []struct {
		name     string
		opts     []introspecttest.Option
		wantPath string // suffix of the issuer the server was given
	}{
		{"RFC 8414 at the root", nil, ""},
		{"OpenID configuration when RFC 8414 is not served", []introspecttest.Option{introspecttest.WithoutOAuthMetadata()}, ""},
		{"RFC 8414 path insertion", []introspecttest.Option{introspecttest.WithIssuerPath("tenant1"), introspecttest.WithoutOpenIDConfiguration()}, "/tenant1"},
		{"OpenID configuration appended to the issuer's path", []introspecttest.Option{introspecttest.WithIssuerPath("/tenant1/"), introspecttest.WithoutOAuthMetadata()}, "/tenant1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, tt.opts...)
			require.Equal(t, as.URL+tt.wantPath, as.Issuer)
			c := mustDiscoClient(t, as)
			assertActive(t, as, c)
			md, ok := c.Metadata()
			require.True(t, ok)
			assert.Equal(t, as.Issuer, md.Issuer)
			assert.Equal(t, as.IntrospectionURL(), md.IntrospectionEndpoint)
			assert.Equal(t, "client_secret_basic", as.LastRequest().AuthMethod)
		})
	}
}

// A plain OAuth server publishes no OpenID member and possibly no auth
// method list: only issuer and introspection_endpoint are needed.
func TestDiscoveryPlainOAuthServer(t *testing.T) {
	as := discoAS(t, introspecttest.WithoutOpenIDConfiguration(), introspecttest.WithMetadata(func(m map[string]any) {
		for k := range m {
			if k != "issuer" && k != "introspection_endpoint" {
				delete(m, k)
			}
		}
	}))
	c := mustDiscoClient(t, as, introspect.WithEagerDiscovery())
	assertActive(t, as, c)
	assert.Equal(t, "client_secret_basic", as.LastRequest().AuthMethod)
}

func TestDiscoveryAuthMethodChoice(t *testing.T) {
	key := newECKey(t)
	tests := []struct {
		name   string
		meta   func(m map[string]any)
		opts   []introspect.Option
		client introspecttest.Client
		want   string
	}{
		{
			name: "introspection list decides",
			meta: func(m map[string]any) {
				m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
			},
			want: "client_secret_post",
		},
		{
			name: "token endpoint list when there is no introspection list",
			meta: func(m map[string]any) {
				delete(m, "introspection_endpoint_auth_methods_supported")
				m["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt", "client_secret_post"}
			},
			want: "client_secret_post",
		},
		{
			name: "client_secret_basic when there is no list at all",
			meta: func(m map[string]any) {
				delete(m, "introspection_endpoint_auth_methods_supported")
				delete(m, "token_endpoint_auth_methods_supported")
			},
			want: "client_secret_basic",
		},
		{
			name: "basic before client_secret_jwt for a secret",
			meta: func(m map[string]any) {
				m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_jwt", "client_secret_basic"}
			},
			want: "client_secret_basic",
		},
		{
			name: "client_secret_jwt when it is the only secret method listed",
			meta: func(m map[string]any) {
				m["introspection_endpoint_auth_methods_supported"] = []string{"private_key_jwt", "client_secret_jwt"}
			},
			want: "client_secret_jwt",
		},
		{
			name: "explicit method wins over the list",
			meta: func(m map[string]any) {
				m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
			},
			opts: []introspect.Option{introspect.WithAuthMethod(introspect.ClientSecretPost)},
			want: "client_secret_post",
		},
		{
			name:   "private key first",
			opts:   []introspect.Option{introspect.WithPrivateKey("pk-client", key, "k1")},
			client: introspecttest.Client{ID: "pk-client", PublicKey: key.Public()},
			want:   "private_key_jwt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithMetadata(tt.meta))
			if tt.client.ID != "" {
				as.AddRegisteredClient(tt.client)
			}
			c := mustDiscoClient(t, as, tt.opts...)
			assertActive(t, as, c)
			assert.Equal(t, tt.want, as.LastRequest().AuthMethod)
		})
	}
}

func TestDiscoveryBadDocuments(t *testing.T) {
	tests := []struct {
		name  string
		meta  func(m map[string]any)
		fault introspecttest.Fault
	}{
		{name: "issuer mismatch", meta: func(m map[string]any) { m["issuer"] = "https://evil.example" }},
		{name: "issuer with a trailing slash", meta: func(m map[string]any) { m["issuer"] = m["issuer"].(string) + "/" }},
		{name: "no introspection endpoint", meta: func(m map[string]any) { delete(m, "introspection_endpoint") }},
		{name: "http introspection endpoint off loopback", meta: func(m map[string]any) { m["introspection_endpoint"] = "http://as.example/introspect" }},
		{name: "introspection endpoint not a string", meta: func(m map[string]any) { m["introspection_endpoint"] = 42 }},
		{name: "auth methods not a list", meta: func(m map[string]any) { m["introspection_endpoint_auth_methods_supported"] = "client_secret_basic" }},
		{name: "non-JSON", fault: introspecttest.Respond(http.StatusOK, "text/html", "<html>hello</html>")},
		{name: "JSON that is not an object", fault: introspecttest.Respond(http.StatusOK, "application/json", `["issuer"]`)},
		{name: "oversized", fault: introspecttest.Oversized(2 << 20)},
		{name: "server error", fault: introspecttest.Respond(http.StatusInternalServerError, "application/json", `{}`)},
		{name: "redirect", fault: introspecttest.Redirect("https://elsewhere.example/.well-known/openid-configuration")},
		{name: "hang", fault: introspecttest.Hang()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithMetadata(tt.meta))
			as.SetDiscoveryFault(tt.fault)
			tok := as.Issue(introspecttest.Claims{Subject: "alice"})

			// Lazy: New succeeds, requests fail closed with 503.
			c := mustDiscoClient(t, as, introspect.WithTimeout(300*time.Millisecond))
			ti, err := c.Introspect(context.Background(), tok)
			assert.Nil(t, ti)
			require.ErrorIs(t, err, introspect.ErrDiscovery)
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
			assert.NotContains(t, err.Error(), discoSecret)
			assert.NotContains(t, err.Error(), tok)
			assert.Zero(t, as.Calls(), "no introspection without good metadata")

			// Eager: New fails.
			_, err = discoClient(t, as, introspect.WithEagerDiscovery(), introspect.WithTimeout(300*time.Millisecond))
			require.ErrorIs(t, err, introspect.ErrDiscovery)
		})
	}
}

// The service starts while the AS is down, answers 503 (backing off instead
// of hammering the AS) and recovers once discovery works.
func TestDiscoveryUnreachableAtStart(t *testing.T) {
	clk := newFakeClock()
	as := discoAS(t)
	as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})

	mw, err := introspect.New(
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		introspect.WithClock(clk.Now),
	)
	require.NoError(t, err, "New must not fail because the AS is down")
	t.Cleanup(func() { _ = mw.Close() })
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = serveBearer(h, tok)
		}()
	}
	wg.Wait()
	for _, code := range codes {
		assert.Equal(t, http.StatusServiceUnavailable, code)
	}
	assert.LessOrEqual(t, as.DiscoveryCalls(), int64(2), "one attempt (two locations), not one per request")
	before := as.DiscoveryCalls()
	assert.Equal(t, http.StatusServiceUnavailable, serveBearer(h, tok))
	assert.Equal(t, before, as.DiscoveryCalls(), "within the backoff no new attempt")

	as.SetDiscoveryFault(introspecttest.Fault{})
	clk.Advance(2 * time.Second) // past the first backoff
	assert.Equal(t, http.StatusNoContent, serveBearer(h, tok))
	assert.Equal(t, int64(1), as.Calls())

	// Eager discovery refuses to start instead.
	as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
	_, err = introspect.New(introspect.WithIssuer(as.Issuer), introspect.WithClientCredentials(discoClientID, discoSecret), introspect.WithEagerDiscovery())
	require.ErrorIs(t, err, introspect.ErrDiscovery)
}

func serveBearer(h http.Handler, tok string) int {
	r, _ := http.NewRequest(http.MethodGet, "http://rs.test/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := &statusRecorder{}
	h.ServeHTTP(w, r)
	return w.code
}

type statusRecorder struct {
	h    http.Header
	code int
}

func (w *statusRecorder) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}
func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func TestDiscoveryCoalesced(t *testing.T) {
	as := discoAS(t)
	as.SetDiscoveryFault(introspecttest.Latency(200 * time.Millisecond))
	c := mustDiscoClient(t, as)
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Introspect(context.Background(), as.Issue(introspecttest.Claims{Subject: "bob"}))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), as.DiscoveryCalls())
}

func TestMetadataRefresh(t *testing.T) {
	clk := newFakeClock()
	as := discoAS(t)
	as.SetMetadataCacheControl("public, max-age=600")
	c := mustDiscoClient(t, as, introspect.WithClock(clk.Now), introspect.WithEagerDiscovery())
	require.Equal(t, int64(1), as.DiscoveryCalls())

	clk.Advance(590 * time.Second)
	c.RefreshDue()
	assert.Equal(t, int64(1), as.DiscoveryCalls(), "max-age not reached")

	clk.Advance(20 * time.Second)
	as.SetMetadata(func(m map[string]any) {
		m["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_post"}
	})
	c.RefreshDue()
	assert.Equal(t, int64(2), as.DiscoveryCalls(), "refreshed after max-age")
	assertActive(t, as, c)
	assert.Equal(t, "client_secret_post", as.LastRequest().AuthMethod, "the new copy is used")

	// The AS's metadata fails: the last good copy is kept and attempts back off.
	as.SetMetadataCacheControl("")
	as.SetDiscoveryFault(introspecttest.Respond(http.StatusBadGateway, "text/plain", "down"))
	clk.Advance(11 * time.Minute)
	c.RefreshDue()
	calls := as.DiscoveryCalls()
	assert.Greater(t, calls, int64(2))
	assertActive(t, as, c)
	c.RefreshDue()
	assert.Equal(t, calls, as.DiscoveryCalls(), "backing off")
	clk.Advance(2 * time.Second)
	c.RefreshDue()
	assert.Greater(t, as.DiscoveryCalls(), calls, "retried after the backoff")

	// Recovered; without max-age the default interval (1 h) applies.
	as.SetDiscoveryFault(introspecttest.Fault{})
	clk.Advance(10 * time.Minute)
	c.RefreshDue()
	calls = as.DiscoveryCalls()
	clk.Advance(59 * time.Minute)
	c.RefreshDue()
	assert.Equal(t, calls, as.DiscoveryCalls())
	clk.Advance(2 * time.Minute)
	c.RefreshDue()
	assert.Equal(t, calls+1, as.DiscoveryCalls())
}

func TestStaticContextWithDiscoveryDoesNotAllocate(t *testing.T) {
	as := discoAS(t)
	c := mustDiscoClient(t, as, introspect.WithEagerDiscovery())
	var cc introspect.ClientContext
	allocs := testing.AllocsPerRun(1000, func() { cc = c.StaticContext() })
	assert.Zero(t, allocs)
	assert.Equal(t, as.IntrospectionURL(), cc.Endpoint)
	assert.Equal(t, introspect.ClientSecretBasic, cc.Credentials.AuthMethod)
}

func TestCloseStopsRefreshing(t *testing.T) {
	clk := newFakeClock()
	as := discoAS(t)
	c := mustDiscoClient(t, as, introspect.WithClock(clk.Now), introspect.WithEagerDiscovery())
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close twice is fine")
	clk.Advance(48 * time.Hour)
	time.Sleep(1200 * time.Millisecond) // longer than the loop's shortest wait
	assert.Equal(t, int64(1), as.DiscoveryCalls())
}

func TestDiscoveryMisconfiguration(t *testing.T) {
	tests := []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"empty issuer", []introspect.Option{introspect.WithIssuer(""), introspect.WithClientCredentials("a", "b")}, "empty issuer"},
		{"not https", []introspect.Option{introspect.WithIssuer("http://as.example"), introspect.WithClientCredentials("a", "b")}, "https"},
		{"query", []introspect.Option{introspect.WithIssuer("https://as.example/?x=1"), introspect.WithClientCredentials("a", "b")}, "query"},
		{"JWT issuers without local validation", []introspect.Option{introspect.WithIssuer("https://as.example"), introspect.WithClientCredentials("a", "b"), introspect.WithJWTIssuers("https://other.example")}, "WithJWTIssuers needs WithValidation"},
		{"JWT issuer not https", []introspect.Option{introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience("api"), introspect.WithJWTIssuers("https://as.example", "http://other.example")}, "https"},
		{"JWT issuer with a fragment", []introspect.Option{introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience("api"), introspect.WithJWTIssuers("https://as.example#x")}, "fragment"},
		{"no JWT issuer", []introspect.Option{introspect.WithValidation(introspect.ValidateJWT), introspect.WithJWTAudience("api"), introspect.WithJWTIssuers()}, "WithJWTIssuers: no issuer"},
		{"max issuers", []introspect.Option{introspect.WithIssuer("https://as.example"), introspect.WithClientCredentials("a", "b"), introspect.WithMaxIssuers(0)}, "WithMaxIssuers: 0 is not positive"},
		{"JWT response without discovery", []introspect.Option{introspect.WithEndpoint("https://as.example/i"), introspect.WithClientCredentials("a", "b"), introspect.WithJWTResponse()}, "WithIssuer"},
		{"eager without discovery", []introspect.Option{introspect.WithEndpoint("https://as.example/i"), introspect.WithClientCredentials("a", "b"), introspect.WithEagerDiscovery()}, "WithIssuer"},
		{"refresh too short", []introspect.Option{introspect.WithIssuer("https://as.example"), introspect.WithClientCredentials("a", "b"), introspect.WithMetadataRefresh(time.Second)}, "shorter"},
		{"no credentials", []introspect.Option{introspect.WithIssuer("https://as.example")}, "credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := introspect.New(tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "introspect: "), err.Error())
		})
	}
	// http is fine on loopback and with the explicit switch.
	mw, err := introspect.New(introspect.WithIssuer("http://as.example"), introspect.WithClientCredentials("a", "b"), introspect.InsecureAllowHTTP())
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	assert.False(t, errors.Is(err, introspect.ErrDiscovery))
}

// While discovery has never succeeded, the backoff between attempts stays
// short (a few seconds, not the minutes used once a good copy exists): a
// resource server started before its authorization server serves within
// seconds of the server coming up, however long it waited.
func TestDiscoveryFirstBackoffIsShort(t *testing.T) {
	clk := newFakeClock()
	as := discoAS(t)
	as.SetDiscoveryFault(introspecttest.Respond(http.StatusServiceUnavailable, "application/json", `{}`))
	tok := as.Issue(introspecttest.Claims{Subject: "alice", NoExpiry: true}) // the clock runs ahead
	mw, err := introspect.New(
		introspect.WithIssuer(as.Issuer),
		introspect.WithClientCredentials(discoClientID, discoSecret),
		introspect.WithClock(clk.Now),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for range 15 { // 15 failed attempts: a doubling backoff would be at its 5-minute cap
		clk.Advance(10 * time.Minute)
		require.Equal(t, http.StatusServiceUnavailable, serveBearer(h, tok))
	}
	as.SetDiscoveryFault(introspecttest.Fault{})
	clk.Advance(6 * time.Second)
	assert.Equal(t, http.StatusNoContent, serveBearer(h, tok), "served within seconds of the server coming up")
}

// An issuer that is not on loopback cannot point the library at this
// host's own services over plain http: a metadata URL of http to loopback
// is refused unless the issuer is on loopback too (or InsecureAllowHTTP).
func TestDiscoveryLoopbackFromRemoteIssuer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint string
		insecure bool
		ok       bool
	}{
		{"https, the issuer's host", "https://as.example/introspect", false, true},
		{"http to loopback", "http://127.0.0.1:9/introspect", false, false},
		{"http to localhost", "http://localhost:9/introspect", false, false},
		{"http to loopback, InsecureAllowHTTP", "http://127.0.0.1:9/introspect", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := discoAS(t, introspecttest.WithTLS(), introspecttest.WithMetadata(func(m map[string]any) {
				m["issuer"], m["introspection_endpoint"] = "https://as.example", tc.endpoint
			}))
			// as.example is the test server, its certificate not checked.
			addr := strings.TrimPrefix(as.URL, "https://")
			hc := &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				},
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test server under another name
			}}
			opts := []introspect.Option{introspect.WithIssuer("https://as.example"), introspect.WithClientCredentials(discoClientID, discoSecret),
				introspect.WithHTTPClient(hc), introspect.WithEagerDiscovery()}
			if tc.insecure {
				opts = append(opts, introspect.InsecureAllowHTTP())
			}
			c, err := introspect.NewClient(opts...)
			if err == nil {
				_ = c.Close()
			}
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, introspect.ErrDiscovery)
			assert.Contains(t, err.Error(), "plain http to loopback from an issuer that is not on loopback")
		})
	}
}
