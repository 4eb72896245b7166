package introspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/printcheck"
	"github.com/introspect-go/introspect/introspecttest"
)

// Values the printing tests plant in the configuration; no printed form may
// contain them.
const (
	printSecret      = "s3cr3t-Qz7WkPn4Xc"
	printQuerySecret = "s3cr3t-query-Hv2LmB9"
	printBearer      = "s3cr3t-bearer-Ty8RdK3"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if a secret, a private key, a
// token or a cache key shows, or if printing panics. A new exported type
// fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	entries, bad := printSamples(t)
	printcheck.Check(t, ".", entries, bad)
}

// printSamples builds the table of the package's exported types and the
// values their printed forms must not contain.
func printSamples(t *testing.T) (map[string]printcheck.Entry, []printcheck.Leak) {
	t.Helper()
	ctx := context.Background()
	jwtKey := newPrintKey(t)
	cert, certKey := newPrintCertificate(t)

	as := introspecttest.NewServer(introspecttest.WithClient("rs-secret", printSecret))
	t.Cleanup(as.Close)
	as.AddRegisteredClient(introspecttest.Client{ID: "rs-key", PublicKey: jwtKey.Public()})
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read", Audience: []string{"api"}})

	var done []introspect.IntrospectDoneInfo
	var (
		spansMu     sync.Mutex // the discovery hooks run on the client's goroutine
		spans       []introspect.SpanInfo
		discoveries []introspect.DiscoveryInfo
	)
	startSpan := func(ctx context.Context, info introspect.SpanInfo) (context.Context, func(error)) {
		spansMu.Lock()
		defer spansMu.Unlock()
		spans = append(spans, info)
		return ctx, nil
	}
	hooks := &introspect.Hooks{
		CacheMiss:      func(context.Context) {},
		IntrospectDone: func(_ context.Context, i introspect.IntrospectDoneInfo) { done = append(done, i) },
		StartSpan:      startSpan,
	}
	discoveryHooks := &introspect.Hooks{
		StartSpan: startSpan,
		DiscoveryDone: func(_ context.Context, i introspect.DiscoveryInfo) {
			spansMu.Lock()
			defer spansMu.Unlock()
			discoveries = append(discoveries, i)
		},
	}
	lru, err := introspect.NewLRUCache(100)
	require.NoError(t, err)
	endpoint := as.IntrospectionURL() + "?tenant=" + printQuerySecret
	newMW := func(opts ...introspect.Option) *introspect.Middleware {
		t.Helper()
		mw, err := introspect.New(opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = mw.Close() })
		return mw
	}
	newClient := func(opts ...introspect.Option) *introspect.Client {
		t.Helper()
		c, err := introspect.NewClient(opts...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// A middleware with a secret, a cache holding an entry, hooks and a
	// logger, after a request.
	mwSecret := newMW(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs-secret", printSecret),
		introspect.WithCache(lru), introspect.WithHooks(hooks), introspect.WithRealm("api"),
		introspect.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), introspect.WithStaleIfError(time.Minute))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	ti, err := mwSecret.Authenticate(req)
	require.NoError(t, err)
	key := introspect.NewCacheKey(endpoint, "rs-secret", tok)
	entry, ok, err := lru.Get(ctx, key)
	require.NoError(t, err)
	require.True(t, ok, "the cache holds the verdict")
	require.NotEmpty(t, done)

	// A middleware with a private key, discovery and signed answers, after a
	// request.
	mwKey := newMW(introspect.WithIssuer(as.Issuer), introspect.WithPrivateKey("rs-key", jwtKey, "kid-1"),
		introspect.WithJWTResponse(), introspect.WithEagerDiscovery(), introspect.WithHooks(discoveryHooks))
	_, err = mwKey.Client().Introspect(ctx, tok)
	require.NoError(t, err)
	meta, ok := mwKey.Client().Metadata()
	require.True(t, ok)
	spansMu.Lock()
	spanSamples := []any{spans[0], &spans[0], spans[len(spans)-1]}
	discoverySamples := []any{discoveries[0], &discoveries[0], discoveries[len(discoveries)-1],
		introspect.DiscoveryInfo{Document: "jwks", Err: introspect.ErrDiscovery}}
	spansMu.Unlock()

	mwCert := newMW(introspect.WithEndpoint(endpoint), introspect.WithClientCertificate("rs-cert", cert))
	staticStore := introspect.StaticClientStore{Endpoint: endpoint,
		Credentials: introspect.Credentials{ClientID: "rs-secret", ClientSecret: printSecret}}
	mwStore := newMW(introspect.WithClientStore(staticStore), introspect.WithCache(lru), introspect.WithOptionalToken(),
		introspect.WithSkipper(func(r *http.Request) bool { return r.Method == http.MethodOptions }))
	secretFunc := func(context.Context) (string, error) { return printSecret, nil }
	clFunc := newClient(introspect.WithEndpoint(endpoint), introspect.WithClientCredentialsFunc("rs-secret", secretFunc))
	clBearer := newClient(introspect.WithEndpoint(endpoint), introspect.WithBearerCredentials("rs-bearer",
		func(context.Context) (string, error) { return printBearer, nil }))
	clJWT := newClient(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs-secret", printSecret),
		introspect.WithAuthMethod(introspect.ClientSecretJWT), introspect.WithAssertionSigningAlg("HS512"))

	credSecret := introspect.Credentials{ClientID: "rs-secret", ClientSecret: printSecret, AuthMethod: introspect.ClientSecretPost}
	credKey := introspect.Credentials{ClientID: "rs-key", PrivateKey: jwtKey, KeyID: "kid-1", SigningAlg: "ES256"}
	credFuncs := introspect.Credentials{ClientID: "rs-bearer", SecretFunc: secretFunc,
		AccessTokenFunc: func(context.Context) (string, error) { return printBearer, nil }}
	ccSecret := introspect.ClientContext{Endpoint: endpoint, Credentials: credSecret}
	ccKey := introspect.ClientContext{Endpoint: "https://rs:" + printSecret + "@as.example/i", Credentials: credKey}
	token := introspect.Token{Value: tok, Scheme: "Bearer", Source: introspect.SourceHeader}
	jwtValidator, err := introspect.NewJWTValidator(introspect.WithIssuer(as.Issuer),
		introspect.WithJWTAudience("https://api.example"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = jwtValidator.Close() })
	jwtTok := as.IssueJWT(introspecttest.Claims{Subject: "alice", Audience: []string{"https://api.example"}})
	_, err = jwtValidator.Validate(ctx, jwtTok)
	require.NoError(t, err)
	clientCopy := *mwSecret.Client()
	lruCopy := *lru
	hooksCopy := *hooks
	dpopEntries, dpopBad := dpopPrintSamples(t)

	entries := map[string]printcheck.Entry{
		"AuthMethod": {Samples: []any{introspect.PrivateKeyJWT}, Reason: "a method name"},
		"BearerExtractor": {Samples: []any{introspect.BearerExtractor{AllowQuery: true, MaxLength: 10}},
			Reason: "limits and switches only"},
		"Cache":      {Reason: "an interface: its implementations have entries of their own (LRUCache, the Redis caches)"},
		"CacheEntry": {Samples: []any{entry, &entry}},
		"CacheKey":   {Samples: []any{key, &key}},
		"CertHeaderFormat": {Samples: []any{introspect.CertHeaderXFCC, introspect.CertHeaderFormat(0)},
			Reason: "a format name"},
		"Check": {Reason: "a function type"},
		"Client": {Samples: []any{mwSecret.Client(), &clientCopy, clientCopy, mwKey.Client(), mwCert.Client(),
			mwStore.Client(), clFunc, clBearer, clJWT, (*introspect.Client)(nil), introspect.Client{}}},
		"ClientContext":   {Samples: []any{ccSecret, &ccSecret, ccKey}},
		"ClientStore":     {Reason: "an interface: StaticClientStore has an entry of its own"},
		"ClientStoreFunc": {Reason: "a function type"},
		"Confirmation":    {Samples: []any{introspect.Confirmation{X5TS256: "abc", JKT: "def"}}, Reason: "thumbprints of public keys"},
		"Credentials":     {Samples: []any{credSecret, &credSecret, credKey, &credKey, credFuncs}},
		"DiscoveryInfo":   {Samples: discoverySamples, Reason: "a document name, a duration and an error of the package's own words"},
		"Decision": {Samples: []any{introspect.Decision{Allowed: true, Status: http.StatusOK, Introspection: ti},
			introspect.Decision{Status: http.StatusUnauthorized, Err: introspect.ErrTokenExpired}},
			Reason: "a status, an error and claims: no token"},
		"DPoPMode":               {Samples: []any{introspect.DPoPRequired, introspect.DPoPMode(9)}, Reason: "a mode name"},
		"DPoPMemoryReplayCache":  dpopEntries["DPoPMemoryReplayCache"],
		"DPoPNonceError":         dpopEntries["DPoPNonceError"],
		"DPoPOption":             dpopEntries["DPoPOption"],
		"DPoPReplayCache":        dpopEntries["DPoPReplayCache"],
		"DPoPVerifier":           dpopEntries["DPoPVerifier"],
		"ErrorResponder":         {Reason: "a function type"},
		"Extractor":              {Reason: "an interface: BearerExtractor has an entry of its own"},
		"ExtractorFunc":          {Reason: "a function type"},
		"FencedCache":            {Reason: "an interface: its implementations have entries of their own"},
		"Hooks":                  {Samples: []any{hooks, hooksCopy}, Reason: "functions only"},
		"InactiveTokenResponder": {Reason: "a function type"},
		"InsufficientScopeError": {Samples: []any{&introspect.InsufficientScopeError{Scopes: []string{"admin"}}}, Reason: "scope names"},
		"IntrospectDoneInfo":     {Samples: []any{done[0], &done[0]}, Reason: "the endpoint is redacted and errors never hold a token"},
		"Introspection":          {Samples: []any{ti, *ti, entry.Introspection, withUserinfo(ti)}, Reason: "claims, meant to be logged: no token in them"},
		"JWTError": {Samples: []any{&introspect.JWTError{Reason: "bad signature"},
			&introspect.JWTError{Reason: "token is not active: expired", Err: introspect.ErrTokenExpired}},
			Reason: "a reason in the package's words: no token, no value the token chose"},
		"JWTValidator": {Samples: []any{jwtValidator, (*introspect.JWTValidator)(nil), &introspect.JWTValidator{}},
			Reason: "the issuer, the audience and limits: its client holds no credentials"},
		"ValidationMode":   {Samples: []any{introspect.ValidateHybrid, introspect.ValidationMode(9)}, Reason: "a mode name"},
		"VerdictSource":    {Samples: []any{introspect.VerdictJWT, introspect.VerdictSource(9)}, Reason: "a source name"},
		"LRUCache":         {Samples: []any{lru, &lruCopy, lruCopy, (*introspect.LRUCache)(nil), introspect.LRUCache{}}},
		"LRUOption":        {Reason: "a function type"},
		"Middleware":       {Samples: []any{mwSecret, mwKey, mwCert, mwStore, (*introspect.Middleware)(nil), &introspect.Middleware{}}},
		"Option":           {Reason: "a function type"},
		"ProviderMetadata": {Samples: []any{meta, *meta}, Reason: "the authorization server's public metadata"},
		"ResourceMetadata": {Samples: []any{introspect.ResourceMetadata{Resource: "https://api.example",
			AuthorizationServers: []string{as.Issuer}}}, Reason: "public metadata"},
		"ResponseError": {Samples: []any{&introspect.ResponseError{StatusCode: 401, ErrorCode: "invalid_client",
			Description: "unknown client"}}, Reason: "the authorization server's answer, sanitized"},
		"SpanInfo":          {Samples: spanSamples, Reason: "an operation name and the endpoint, redacted"},
		"StaticClientStore": {Samples: []any{staticStore, &staticStore}},
		"Token":             {Samples: []any{token, &token}},
		"TokenSource":       {Samples: []any{introspect.SourceQuery}, Reason: "a place name"},
		"UserinfoOption":    {Reason: "a function type"},
	}

	bad := printcheck.StringForms("client secret", printSecret)
	bad = append(bad, printcheck.StringForms("secret in the endpoint's query", printQuerySecret)...)
	bad = append(bad, printcheck.StringForms("token", tok)...)
	bad = append(bad, printcheck.StringForms("JWT access token", jwtTok)...)
	bad = append(bad, printcheck.StringForms("bearer credential", printBearer)...)
	bad = append(bad, printcheck.KeyForms(t, "client assertion key", jwtKey)...)
	bad = append(bad, printcheck.KeyForms(t, "client certificate key", certKey)...)
	bad = append(bad, printcheck.BytesForms("cache key", key[:])...)
	bad = append(bad, dpopBad...)
	return entries, bad
}

// newPrintKey returns a fresh P-256 key.
func newPrintKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// newPrintCertificate returns a self-signed client certificate and its key.
func newPrintCertificate(t *testing.T) (tls.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k := newPrintKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs-cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, k
}

// A CacheKey prints as a pseudonym: never the key, but as distinct as the
// key, so code that names entries after fmt's form of a key (a mistake, but a
// common one) can never make one token's verdict answer for another.
func TestCacheKeyPseudonym(t *testing.T) {
	a := introspect.NewCacheKey("https://as/introspect", "rs", "token-a")
	b := introspect.NewCacheKey("https://as/introspect", "rs", "token-b")
	for _, verb := range []string{"%v", "%x", "%s", "%d", "%#v", "%X", "%q"} {
		pa, pb := fmt.Sprintf(verb, a), fmt.Sprintf(verb, b)
		if pa == pb {
			t.Errorf("%s: two keys print the same: %s", verb, pa)
		}
		if again := fmt.Sprintf(verb, a); again != pa {
			t.Errorf("%s: a key prints %s, then %s", verb, pa, again)
		}
		if strings.Contains(strings.ToLower(pa), hex.EncodeToString(a[:])) {
			t.Errorf("%s: the key shows: %s", verb, pa)
		}
	}
}

// withUserinfo is a copy of ti with userinfo claims, as WithUserinfo makes.
func withUserinfo(ti *introspect.Introspection) *introspect.Introspection {
	c := *ti
	c.Userinfo = map[string]json.RawMessage{"sub": json.RawMessage(`"alice"`), "email": json.RawMessage(`"alice@example.com"`)}
	return &c
}
