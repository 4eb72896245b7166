package introspect_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// DecodeClaims gives the answer's members in the caller's own type, from
// the verdict already there (no second call).
func TestDecodeClaims(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 10)))
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read write", Audience: []string{"api"}, Expiry: exp,
		Extra: map[string]any{"tenant": "acme", "roles": []string{"admin", "ops"}, "limits": map[string]int{"rps": 5}}})
	ti, err := mw.Verify(context.Background(), tok)
	require.NoError(t, err)
	type claims struct {
		Subject string         `json:"sub"`
		Scope   string         `json:"scope"`
		Aud     string         `json:"aud"`
		Exp     int64          `json:"exp"`
		Tenant  string         `json:"tenant"`
		Roles   []string       `json:"roles"`
		Limits  map[string]int `json:"limits"`
		Absent  string         `json:"absent"`
	}
	c, err := introspect.DecodeClaims[claims](ti)
	require.NoError(t, err)
	assert.Equal(t, claims{Subject: "alice", Scope: "read write", Aud: "api", Exp: exp.Unix(), Tenant: "acme",
		Roles: []string{"admin", "ops"}, Limits: map[string]int{"rps": 5}}, c)
	assert.Equal(t, int64(1), as.Calls(), "no second call")

	m, err := introspect.DecodeClaims[map[string]any](ti)
	require.NoError(t, err)
	assert.Equal(t, true, m["active"])
	assert.Equal(t, "acme", m["tenant"])

	_, err = introspect.DecodeClaims[struct {
		Tenant int `json:"tenant"`
	}](ti)
	assert.ErrorContains(t, err, "introspect: DecodeClaims: ")
	_, err = introspect.DecodeClaims[claims](nil)
	assert.EqualError(t, err, "introspect: DecodeClaims: no verdict")
}

// WithTokenTypeHintFunc chooses the hint per token.
func TestTokenTypeHintFunc(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as, introspect.WithTokenTypeHintFunc(func(token string) string {
		if len(token) > 0 && token[0] == 'p' {
			return "pct"
		}
		return "access_token"
	}))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	require.Equal(t, 200, serve(mw.Handler(okHandler), bearer(tok)).status)
	assert.Equal(t, "access_token", as.LastRequest().TokenTypeHint)
	serve(mw.Handler(okHandler), bearer("pct-not-issued"))
	assert.Equal(t, "pct", as.LastRequest().TokenTypeHint)

	none := newMW(t, as, introspect.WithTokenTypeHintFunc(func(string) string { return "" }))
	serve(none.Handler(okHandler), bearer(tok))
	assert.False(t, as.LastRequest().HasHint, "an empty hint is omitted")

	fixed := newMW(t, as, introspect.WithTokenTypeHintFunc(func(string) string { return "pct" }), introspect.WithTokenTypeHint("refresh_token"))
	serve(fixed.Handler(okHandler), bearer(tok))
	assert.Equal(t, "refresh_token", as.LastRequest().TokenTypeHint, "the last option wins")

	_, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithTokenTypeHintFunc(nil))
	assert.ErrorContains(t, err, "WithTokenTypeHintFunc: nil function")
}
