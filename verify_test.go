package introspect_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// Verify serves callers without an *http.Request with everything Handler
// has: the same cache and coalescing, the hooks and the local checks.
func TestVerify(t *testing.T) {
	as := newAS(t)
	var hits atomic.Int64
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 100)), introspect.WithHooks(&introspect.Hooks{
		CacheHit: func(context.Context, bool) { hits.Add(1) },
	}))
	ctx := context.Background()
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})

	ti, err := mw.Verify(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", ti.Subject)
	assert.NoError(t, introspect.Authorize(ti, introspect.AllScopes("read")))
	assert.Equal(t, 200, serve(mw.Handler(okHandler), bearer(tok)).status)
	_, err = mw.Verify(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, int64(1), as.Calls(), "Verify and Handler share the cache")
	assert.Equal(t, int64(2), hits.Load(), "the hooks see Verify's lookups")

	as.Revoke(tok)
	require.NoError(t, mw.Evict(ctx, tok))
	_, err = mw.Verify(ctx, tok)
	assert.ErrorIs(t, err, introspect.ErrInactiveToken)
	assert.Equal(t, 401, introspect.StatusCode(err))

	bound := as.Issue(introspecttest.Claims{Subject: "m", Confirmation: map[string]string{"x5t#S256": "AAAA"}})
	_, err = mw.Verify(ctx, bound)
	assert.ErrorIs(t, err, introspect.ErrTokenBinding, "no connection to check a binding against")
	lax := newMW(t, as, introspect.InsecureSkipTokenBinding())
	_, err = lax.Verify(ctx, bound)
	assert.NoError(t, err)

	for _, bad := range []string{"two words", "a\nb", "é", string(make([]byte, introspect.DefaultMaxTokenLength+1))} {
		_, err = mw.Verify(ctx, bad)
		assert.ErrorIs(t, err, introspect.ErrInvalidRequest, "%q", bad)
	}
	_, err = mw.Verify(ctx, "")
	assert.ErrorIs(t, err, introspect.ErrMissingToken)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = mw.Verify(canceled, as.Issue(introspecttest.Claims{Subject: "bob"}))
	assert.ErrorIs(t, err, introspect.ErrRequestCanceled)
}

// With a ClientStore, Verify says to use VerifyAs, which takes the client.
func TestVerifyAs(t *testing.T) {
	as := newAS(t)
	cc := introspect.ClientContext{Endpoint: as.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: rsClientID, ClientSecret: rsSecret}}
	mw, err := introspect.New(introspect.WithClientStore(&introspect.StaticClientStore{Endpoint: cc.Endpoint, Credentials: cc.Credentials}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	_, err = mw.Verify(context.Background(), tok)
	assert.ErrorContains(t, err, "call VerifyAs")
	assert.ErrorIs(t, err, introspect.ErrUnavailable)
	ti, err := mw.VerifyAs(context.Background(), cc, tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", ti.Subject)
}
