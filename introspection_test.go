package introspect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

func TestParseMembers(t *testing.T) {
	ti, err := parse(t, `{
		"active": true,
		"scope": "read  write admin",
		"client_id": "app",
		"username": "alice",
		"token_type": "Bearer",
		"exp": 1700003600,
		"iat": 1700000000,
		"nbf": 1699999990,
		"sub": "u-1",
		"aud": ["api", "other"],
		"iss": "https://as.example.com",
		"jti": "j-1",
		"tenant": "acme",
		"roles": ["r1", "r2"],
		"ext": {"a": 1}
	}`)
	require.NoError(t, err)
	assert.True(t, ti.Active)
	assert.Equal(t, []string{"read", "write", "admin"}, ti.Scopes)
	assert.Equal(t, "app", ti.ClientID)
	assert.Equal(t, "alice", ti.Username)
	assert.Equal(t, "Bearer", ti.TokenType)
	assert.Equal(t, time.Unix(1700003600, 0).UTC(), ti.Expiry)
	assert.Equal(t, time.Unix(1700000000, 0).UTC(), ti.IssuedAt)
	assert.Equal(t, time.Unix(1699999990, 0).UTC(), ti.NotBefore)
	assert.Equal(t, "u-1", ti.Subject)
	assert.Equal(t, []string{"api", "other"}, ti.Audience)
	assert.Equal(t, "https://as.example.com", ti.Issuer)
	assert.Equal(t, "j-1", ti.JWTID)
	assert.Nil(t, ti.Confirmation)
	assert.True(t, ti.HasScope("write"))
	assert.False(t, ti.HasScope("writ"))
	assert.True(t, ti.HasAudience("other"))
	assert.False(t, ti.HasAudience("ap"))

	assert.Len(t, ti.Extra, 3, "registered members stay out of Extra")
	var tenant string
	ok, err := ti.Claim("tenant", &tenant)
	assert.True(t, ok)
	require.NoError(t, err)
	assert.Equal(t, "acme", tenant)
	var roles []string
	ok, err = ti.Claim("roles", &roles)
	assert.True(t, ok)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1", "r2"}, roles)
	var ext struct{ A int }
	ok, err = ti.Claim("ext", &ext)
	assert.True(t, ok)
	require.NoError(t, err)
	assert.Equal(t, 1, ext.A)
	var n int
	ok, err = ti.Claim("tenant", &n)
	assert.True(t, ok)
	assert.Error(t, err, "wrong type")
	ok, err = ti.Claim("missing", &tenant)
	assert.False(t, ok)
	assert.NoError(t, err)
	ok, err = ti.Claim("sub", &tenant)
	assert.False(t, ok, "registered members are fields, not claims")
	assert.NoError(t, err)
}

func TestNilIntrospectionAccessors(t *testing.T) {
	var ti *introspect.Introspection
	assert.False(t, ti.HasScope("a"))
	assert.False(t, ti.HasAudience("a"))
	var v string
	ok, err := ti.Claim("a", &v)
	assert.False(t, ok)
	assert.NoError(t, err)
}

func TestIntrospectionJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		ti   introspect.Introspection
	}{
		{name: "inactive", ti: introspect.Introspection{}},
		{name: "active, nothing else", ti: introspect.Introspection{Active: true}},
		{name: "full", ti: introspect.Introspection{
			Active:    true,
			Scopes:    []string{"read", "write"},
			ClientID:  "app",
			Username:  "alice",
			TokenType: "Bearer",
			Expiry:    time.Unix(1700003600, 0).UTC(),
			IssuedAt:  time.Unix(1700000000, 0).UTC(),
			NotBefore: time.Unix(1699999999, 0).UTC(),
			Subject:   "u-1",
			Audience:  []string{"api", "other"},
			Issuer:    "https://as.example.com",
			JWTID:     "j-1",
			Confirmation: &introspect.Confirmation{
				X5TS256: "x5t", JKT: "jkt",
				Extra: map[string]json.RawMessage{"kid": json.RawMessage(`"k"`)},
			},
			Extra: map[string]json.RawMessage{
				"tenant": json.RawMessage(`"acme"`),
				"nested": json.RawMessage(`{"a":[1,2,{"b":null}]}`),
			},
		}},
		{name: "one audience", ti: introspect.Introspection{Active: true, Audience: []string{"api"}}},
		{name: "empty confirmation", ti: introspect.Introspection{Active: true, Confirmation: &introspect.Confirmation{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(&tt.ti)
			require.NoError(t, err)
			var got introspect.Introspection
			require.NoError(t, json.Unmarshal(b, &got), "%s", b)
			assert.Equal(t, tt.ti, got, "%s", b)

			// A value marshals the same as a pointer, so an Introspection
			// inside another struct keeps the RFC 7662 form.
			bv, err := json.Marshal(tt.ti)
			require.NoError(t, err)
			assert.JSONEq(t, string(b), string(bv))
			type wrapper struct{ TI introspect.Introspection }
			bw, err := json.Marshal(wrapper{tt.ti})
			require.NoError(t, err)
			var w wrapper
			require.NoError(t, json.Unmarshal(bw, &w), "%s", bw)
			assert.Equal(t, tt.ti, w.TI)
		})
	}
}

// The scopes of an answer are the same after the answer is written as JSON
// and read back (a cache storing answers as JSON): an array element that
// the string form would split, "files:x admin", is refused when read.
func TestIntrospectionScopesSurviveJSON(t *testing.T) {
	for _, answer := range []string{
		`{"active":true,"scope":"read write"}`,
		`{"active":true,"scope":["read","write"]}`,
		`{"active":true,"scope":"files:x\u00a0admin read"}`,
		`{"active":true,"scope":["a\tb","c\u2028d"]}`,
	} {
		var ti introspect.Introspection
		require.NoError(t, json.Unmarshal([]byte(answer), &ti), answer)
		b, err := json.Marshal(&ti)
		require.NoError(t, err)
		var back introspect.Introspection
		require.NoError(t, json.Unmarshal(b, &back), "%s", b)
		assert.Equal(t, ti.Scopes, back.Scopes, "%s -> %s", answer, b)
		assert.False(t, back.HasScope("admin"), answer)
	}
	var ti introspect.Introspection
	assert.ErrorIs(t, json.Unmarshal([]byte(`{"active":true,"scope":["files:x admin"]}`), &ti), introspect.ErrMalformedResponse)
	require.NoError(t, json.Unmarshal([]byte(`{"active":true,"scope":["","read",null]}`), &ti))
	assert.Equal(t, []string{"read"}, ti.Scopes, "empty elements are no scope, as in the string")
}

// A value built by hand marshals to what reads back as itself, or fails:
// registered members come from the typed fields only, never from Extra,
// and a scope holding a space, which would read back as several, is an
// error.
func TestIntrospectionMarshalHandBuilt(t *testing.T) {
	_, err := json.Marshal(introspect.Introspection{Active: true, Scopes: []string{"read", "files:x admin"}})
	assert.ErrorContains(t, err, "holds a space")

	ti := introspect.Introspection{
		Active: true,
		Scopes: []string{"", "read"},
		Extra: map[string]json.RawMessage{
			"scope": json.RawMessage(`"admin"`), "sub": json.RawMessage(`"root"`), "active": json.RawMessage(`false`),
			"tenant": json.RawMessage(`"acme"`),
		},
		Confirmation: &introspect.Confirmation{Extra: map[string]json.RawMessage{"jkt": json.RawMessage(`"forged"`), "kid": json.RawMessage(`"k"`)}},
	}
	b, err := json.Marshal(ti)
	require.NoError(t, err)
	assert.JSONEq(t, `{"active":true,"scope":"read","tenant":"acme","cnf":{"jkt":null,"kid":"k"}}`, string(b))
	var back introspect.Introspection
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, []string{"read"}, back.Scopes)
	assert.False(t, back.HasScope("admin"))
	assert.Empty(t, back.Subject)
	assert.Empty(t, back.Confirmation.JKT)
	assert.Contains(t, back.Confirmation.Extra, "jkt", "still a method the binding check refuses")

	// A method both typed and marked stays marked: refused either way.
	b, err = json.Marshal(introspect.Introspection{Active: true, Confirmation: &introspect.Confirmation{
		JKT: "J", X5TS256: "T", Extra: map[string]json.RawMessage{"jkt": json.RawMessage(`null`), "x5t#S256": json.RawMessage(`5`)},
	}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"active":true,"cnf":{"jkt":null,"x5t#S256":null}}`, string(b))
}

// A parsed answer reads back, after MarshalJSON, as one that grants no
// more: a confirmation method the binding check refuses (null, empty, not
// a string) stays refused, and fractional dates round toward the stricter
// check (RFC 7662 writes integers).
func TestIntrospectionRoundTripFailsClosed(t *testing.T) {
	for _, answer := range []string{
		`{"active":true,"cnf":{"x5t#S256":"thumb","jkt":null}}`,
		`{"active":true,"cnf":{"x5t#S256":"thumb","jkt":""}}`,
		`{"active":true,"cnf":{"jkt":"J","x5t#S256":5}}`,
	} {
		var ti introspect.Introspection
		require.NoError(t, json.Unmarshal([]byte(answer), &ti), answer)
		b, err := json.Marshal(ti)
		require.NoError(t, err)
		var back introspect.Introspection
		require.NoError(t, json.Unmarshal(b, &back), "%s", b)
		assert.Equal(t, ti.Confirmation.JKT, back.Confirmation.JKT, "%s -> %s", answer, b)
		assert.Equal(t, ti.Confirmation.X5TS256, back.Confirmation.X5TS256, "%s -> %s", answer, b)
		assert.ElementsMatch(t, slices.Collect(maps.Keys(ti.Confirmation.Extra)), slices.Collect(maps.Keys(back.Confirmation.Extra)),
			"%s -> %s: the methods the binding check refuses", answer, b)
	}
	var ti introspect.Introspection
	require.NoError(t, json.Unmarshal([]byte(`{"active":true,"exp":2000000000.7,"nbf":1000000000.2,"iat":1000000000.5}`), &ti))
	b, err := json.Marshal(ti)
	require.NoError(t, err)
	var back introspect.Introspection
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, int64(2000000000), back.Expiry.Unix(), "exp rounds down")
	assert.Equal(t, int64(1000000001), back.NotBefore.Unix(), "nbf rounds up")
	assert.Equal(t, int64(1000000001), back.IssuedAt.Unix(), "iat rounds up")
	assert.False(t, back.Expiry.After(ti.Expiry))
	assert.False(t, back.NotBefore.Before(ti.NotBefore))
}

func TestIntrospectionMarshalForm(t *testing.T) {
	ti := &introspect.Introspection{
		Active:   true,
		Scopes:   []string{"a", "b"},
		Expiry:   time.Unix(1700000000, 900_000_000),
		Audience: []string{"api"},
	}
	b, err := json.Marshal(ti)
	require.NoError(t, err)
	assert.JSONEq(t, `{"active":true,"scope":"a b","exp":1700000000,"aud":"api"}`, string(b))

	b, err = json.Marshal(&introspect.Introspection{Active: false, Subject: "alice"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"active":false}`, string(b), "an inactive answer says nothing else")
}

func TestIntrospectionContext(t *testing.T) {
	ctx := t.Context()
	_, ok := introspect.FromContext(ctx)
	assert.False(t, ok)
	_, ok = introspect.FromContext(introspect.NewContext(ctx, nil))
	assert.False(t, ok, "nil verdict")
	want := &introspect.Introspection{Active: true, Subject: "alice"}
	got, ok := introspect.FromContext(introspect.NewContext(ctx, want))
	assert.True(t, ok)
	assert.Same(t, want, got)
}

func TestContextCarriesVerdict(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	ti := &introspect.Introspection{Active: true, Subject: "alice"}
	ctx := introspect.NewContext(parent, ti)
	got, ok := introspect.FromContext(ctx)
	require.True(t, ok)
	assert.Same(t, ti, got)
	assert.Equal(t, "v", ctx.Value(other{}), "the parent's values are still there")
	assert.NotContains(t, fmt.Sprint(ctx), "alice")
	_, ok = introspect.FromContext(parent)
	assert.False(t, ok)
	_, ok = introspect.FromContext(introspect.NewContext(parent, nil))
	assert.False(t, ok, "a nil verdict is no verdict")
	cancel()
	<-ctx.Done() // cancellation of the parent reaches it
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	child, stop := context.WithCancel(ctx)
	defer stop()
	got, ok = introspect.FromContext(child)
	require.True(t, ok)
	assert.Same(t, ti, got)
}
