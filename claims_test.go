package introspect_test

import (
	"context"
	"encoding/json"
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

// DecodeClaims matches names to fields exactly: a member named like a
// field but for case is an error, where encoding/json would fill the field
// from it (the verdict reads names exactly). Types without fields (maps,
// raw JSON) and fields nobody names so are unaffected.
func TestDecodeClaimsCaseOnlyNames(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	type claims struct {
		Subject string `json:"sub"`
		Scope   string `json:"scope"`
		Tenant  string `json:"tenantId"`
		Admin   bool   `json:"isAdmin"`
	}
	type embedded struct {
		claims
		Name string
	}
	for name, extra := range map[string]map[string]any{
		"registered member's name in upper case": {"SUB": "admin", "Scope": "admin"},
		"two names differ in case":               {"tenantId": "t-good", "tenantid": "t-evil"},
		"one name, another case":                 {"ISADMIN": true},
		"Unicode folding (long s)":               {"isAdmin": false, "i\u017fAdmin": true},
	} {
		t.Run(name, func(t *testing.T) {
			ti, err := mw.Verify(context.Background(), as.Issue(introspecttest.Claims{ClientID: "app", Extra: extra}))
			require.NoError(t, err)
			_, err = introspect.DecodeClaims[claims](ti)
			assert.EqualError(t, err, "introspect: DecodeClaims: a member's name differs only in case from a field's")
			_, err = introspect.DecodeClaims[*embedded](ti)
			assert.Error(t, err, "through an embedded struct")
			assert.False(t, ti.HasScope("admin"))
			m, err := introspect.DecodeClaims[map[string]any](ti)
			require.NoError(t, err, "a map matches names exactly")
			assert.NotContains(t, m, "sub")
		})
	}
	ti, err := mw.Verify(context.Background(), as.Issue(introspecttest.Claims{Subject: "alice",
		Extra: map[string]any{"tenantId": "t-good", "isAdmin": false, "Name": "A", "name": "a"}}))
	require.NoError(t, err)
	c, err := introspect.DecodeClaims[claims](ti)
	require.NoError(t, err, "names of no field may differ in case")
	assert.Equal(t, claims{Subject: "alice", Tenant: "t-good"}, c)
	_, err = introspect.DecodeClaims[json.RawMessage](ti)
	require.NoError(t, err)
}

// nestedClaims has the fields whose names encoding/json matches in ways
// easy to miss: a tagged embedded struct of an unexported type, a tag name
// it refuses (the Go name counts), nested objects and lists of them, and
// two names that differ only in case.
type nestedClaims struct {
	roleInfo `json:"in"`
	Foo      string       `json:"€uro"`
	Addr     claimAddress `json:"address"`
	Addrs    []claimAddress
	Lower    string `json:"id"`
	Upper    string `json:"ID"`
}

type roleInfo struct {
	Role string `json:"role"`
}

type claimAddress struct {
	Admin bool `json:"admin"`
}

func TestDecodeClaimsNestedNames(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	for name, extra := range map[string]map[string]any{
		"a tagged embedded struct":      {"IN": map[string]any{"role": "admin"}},
		"a refused tag name":            {"FOO": "x"},
		"in a nested object":            {"address": map[string]any{"ADMIN": true}},
		"in a list of objects":          {"Addrs": []any{map[string]any{"ADMIN": true}}},
		"inside a tagged embedded":      {"in": map[string]any{"ROLE": "admin"}},
		"a list's name in another case": {"ADDRS": []any{}},
	} {
		t.Run(name, func(t *testing.T) {
			ti, err := mw.Verify(context.Background(), as.Issue(introspecttest.Claims{ClientID: "app", Extra: extra}))
			require.NoError(t, err)
			_, err = introspect.DecodeClaims[nestedClaims](ti)
			assert.EqualError(t, err, "introspect: DecodeClaims: a member's name differs only in case from a field's")
		})
	}
	ti, err := mw.Verify(context.Background(), as.Issue(introspecttest.Claims{ClientID: "app", Extra: map[string]any{
		"id": "a", "ID": "b", "address": map[string]any{"admin": true}, "in": map[string]any{"role": "r"}, "Foo": "f",
		"Addrs": []any{map[string]any{"admin": true}}}}))
	require.NoError(t, err)
	c, err := introspect.DecodeClaims[nestedClaims](ti)
	require.NoError(t, err, "every name spelt as a field's")
	assert.Equal(t, nestedClaims{roleInfo: roleInfo{Role: "r"}, Foo: "f", Addr: claimAddress{Admin: true},
		Addrs: []claimAddress{{Admin: true}}, Lower: "a", Upper: "b"}, c)
}

// Names shadowed through embedding, names given twice in a nested object,
// deep self-referencing types and embedding cycles: each is checked, and
// none hangs.
type shadowBase struct {
	Address string `json:"address"`
}

type shadowed struct {
	Addr claimAddress `json:"address"`
	shadowBase
}

type twice struct {
	A struct {
		B claimAddress `json:"b"`
	} `json:"a"`
}

type node struct {
	Child *node `json:"child"`
	Admin bool  `json:"admin"`
}

type cycleA struct {
	*cycleA
	*cycleB
	X string
}

type cycleB struct {
	*cycleA
	*cycleB
}

func TestDecodeClaimsHardShapes(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	verdict := func(t *testing.T, body string) *introspect.Introspection {
		t.Helper()
		as.SetFault(introspecttest.Respond(200, "application/json", body))
		t.Cleanup(as.ClearFault)
		ti, err := mw.Verify(context.Background(), as.Issue(introspecttest.Claims{Subject: "s"}))
		require.NoError(t, err)
		return ti
	}
	const refused = "introspect: DecodeClaims: a member's name differs only in case from a field's"

	ti := verdict(t, `{"active":true,"address":{"ADMIN":true}}`)
	_, err := introspect.DecodeClaims[shadowed](ti)
	assert.EqualError(t, err, refused, "the shallower field's type is checked")

	ti = verdict(t, `{"active":true,"a":{"b":{"ADMIN":true},"b":{}}}`)
	_, err = introspect.DecodeClaims[twice](ti)
	assert.EqualError(t, err, refused, "every member of a name given twice")

	deep := `{"ADMIN":true}`
	for range 40 {
		deep = `{"child":` + deep + `}`
	}
	ti = verdict(t, `{"active":true,"child":`+deep+`}`)
	_, err = introspect.DecodeClaims[node](ti)
	assert.ErrorContains(t, err, "introspect: DecodeClaims: ", "too deep to check is refused, never let through")

	ti = verdict(t, `{"active":true,"X":"x"}`)
	c, err := introspect.DecodeClaims[cycleA](ti)
	require.NoError(t, err, "an embedding cycle is walked once")
	assert.Equal(t, "x", c.X)
	assert.Nil(t, c.cycleA)
	assert.Nil(t, c.cycleB)
	assert.Nil(t, cycleB{}.cycleB)
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
