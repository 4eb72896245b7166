package introspectgrpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/introspect-go/introspect"
	introspectgrpc "github.com/introspect-go/introspect/adapters/grpc"
	"github.com/introspect-go/introspect/internal/printcheck"
	"github.com/introspect-go/introspect/introspecttest"
)

// TestPrintExportedTypes prints a sample of every exported type of the
// package with every fmt verb, both log/slog handlers and encoding/json, as
// is, in a struct and in a slice, and fails if the middleware's client
// secret, a token or a cache key shows, or if printing panics. A new
// exported type fails the test until it has an entry.
func TestPrintExportedTypes(t *testing.T) {
	const (
		secret      = "s3cr3t-grpc-Fy6Tn3Bw"
		querySecret = "s3cr3t-query-Xe4Pc"
	)
	as := introspecttest.NewServer(introspecttest.WithClient("rs", secret))
	t.Cleanup(as.Close)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	lru, err := introspect.NewLRUCache(100)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := as.IntrospectionURL() + "?tenant=" + querySecret
	mw, err := introspect.New(introspect.WithEndpoint(endpoint), introspect.WithClientCredentials("rs", secret),
		introspect.WithCache(lru))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	req := httptest.NewRequest(http.MethodPost, "/shop.v1.Orders/Cancel", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := mw.Authenticate(req); err != nil {
		t.Fatal(err)
	}
	auth, err := introspectgrpc.New(mw,
		introspectgrpc.WithMethodScopes(map[string][]string{"/shop.v1.Orders/Cancel": {"orders:write"}}),
		introspectgrpc.WithSkipper(func(context.Context, string) bool { return false }))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := introspectgrpc.New(mw)
	if err != nil {
		t.Fatal(err)
	}
	authCopy := *auth

	entries := map[string]printcheck.Entry{
		"Interceptors": {Samples: []any{auth, plain, &authCopy, authCopy, (*introspectgrpc.Interceptors)(nil),
			introspectgrpc.Interceptors{}}},
		"Option": {Reason: "a function type"},
	}
	bad := printcheck.StringForms("client secret", secret)
	bad = append(bad, printcheck.StringForms("secret in the endpoint's query", querySecret)...)
	bad = append(bad, printcheck.StringForms("token", tok)...)
	key := introspect.NewCacheKey(endpoint, "rs", tok)
	bad = append(bad, printcheck.BytesForms("cache key", key[:])...)
	printcheck.Check(t, ".", entries, bad)
}
