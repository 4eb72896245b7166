package introspect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

func parse(t *testing.T, body string) (*introspect.Introspection, error) {
	t.Helper()
	var ti introspect.Introspection
	if err := ti.UnmarshalJSON([]byte(body)); err != nil {
		return nil, err
	}
	return &ti, nil
}

func TestParseActive(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantActive bool
		wantErr    bool
	}{
		{name: "true", body: `{"active":true}`, wantActive: true},
		{name: "true with spaces", body: ` { "active" : true } `, wantActive: true},
		{name: "false", body: `{"active":false}`},
		{name: "string true", body: `{"active":"true"}`, wantErr: true},
		{name: "number 1", body: `{"active":1}`, wantErr: true},
		{name: "null", body: `{"active":null}`, wantErr: true},
		{name: "object", body: `{"active":{}}`, wantErr: true},
		{name: "array", body: `{"active":[true]}`, wantErr: true},
		{name: "missing", body: `{"sub":"x"}`, wantErr: true},
		{name: "empty object", body: `{}`, wantErr: true},
		{name: "upper case name", body: `{"ACTIVE":true}`, wantErr: true},
		{name: "title case name", body: `{"Active":true}`, wantErr: true},
		{name: "escaped name", body: `{"\u0061ctive":true}`, wantActive: true},
		{name: "duplicate false then true", body: `{"active":false,"active":true}`, wantErr: true},
		{name: "duplicate true then false", body: `{"active":true,"active":false}`, wantErr: true},
		{name: "duplicate other member", body: `{"active":true,"sub":"a","sub":"b"}`, wantErr: true},
		{name: "duplicate spelled with an escape", body: `{"active":false,"\u0061ctive":true}`, wantErr: true},
		{name: "commas and braces inside values", wantActive: true,
			body: `{"active":true,"cnf":{"a":1,"b":[1,2]},"x":[{"y":","},"}"],"s":"a,b\"c,{","t":"\\"}`},
		{name: "nested active is not active", body: `{"x":{"active":true}}`, wantErr: true},
		{name: "array", body: `[{"active":true}]`, wantErr: true},
		{name: "string", body: `"active"`, wantErr: true},
		{name: "number", body: `1`, wantErr: true},
		{name: "JSON null", body: `null`, wantErr: true},
		{name: "JSON true", body: `true`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
		{name: "truncated", body: `{"active":tr`, wantErr: true},
		{name: "unterminated", body: `{"active":true`, wantErr: true},
		{name: "trailing data", body: `{"active":true} {"active":true}`, wantErr: true},
		{name: "trailing garbage", body: `{"active":true}x`, wantErr: true},
		{name: "HTML", body: `<html>active</html>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := parse(t, tt.body)
			if tt.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, introspect.ErrMalformedResponse)
				assert.ErrorIs(t, err, introspect.ErrUnavailable)
				assert.Nil(t, ti)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantActive, ti.Active)
		})
	}
}

func TestParseInactiveIgnoresOtherMembers(t *testing.T) {
	ti, err := parse(t, `{"active":false,"exp":"soon","scope":5,"aud":{},"cnf":1,"sub":"alice","x":1}`)
	require.NoError(t, err)
	assert.Equal(t, introspect.Introspection{}, *ti)
}

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

func TestParseScopeAndAudience(t *testing.T) {
	tests := []struct {
		name      string
		members   string
		wantScope []string
		wantAud   []string
		wantErr   bool
	}{
		{name: "absent"},
		{name: "null", members: `"scope":null,"aud":null`},
		{name: "empty strings", members: `"scope":"","aud":""`, wantScope: []string{}},
		{name: "scope string", members: `"scope":"a b"`, wantScope: []string{"a", "b"}},
		{name: "scope extra spaces", members: `"scope":"  a   b "`, wantScope: []string{"a", "b"}},
		{name: "scope array", members: `"scope":["a","b"]`, wantScope: []string{"a", "b"}},
		{name: "scope empty array", members: `"scope":[]`, wantScope: []string{}},
		{name: "scope number", members: `"scope":1`, wantErr: true},
		{name: "scope object", members: `"scope":{}`, wantErr: true},
		{name: "scope mixed array", members: `"scope":["a",1]`, wantErr: true},
		{name: "aud string", members: `"aud":"api"`, wantAud: []string{"api"}},
		{name: "aud string with space is one audience", members: `"aud":"a b"`, wantAud: []string{"a b"}},
		{name: "aud array", members: `"aud":["a","b"]`, wantAud: []string{"a", "b"}},
		{name: "aud number", members: `"aud":7`, wantErr: true},
		{name: "aud bool", members: `"aud":true`, wantErr: true},
		{name: "aud nested array", members: `"aud":[["a"]]`, wantErr: true},
		{name: "string member not a string", members: `"sub":1`, wantErr: true},
		{name: "client_id not a string", members: `"client_id":{}`, wantErr: true},
		{name: "string member null", members: `"sub":null,"iss":null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"active":true}`
			if tt.members != "" {
				body = `{"active":true,` + tt.members + `}`
			}
			ti, err := parse(t, body)
			if tt.wantErr {
				assert.ErrorIs(t, err, introspect.ErrMalformedResponse)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantScope, ti.Scopes)
			assert.Equal(t, tt.wantAud, ti.Audience)
			assert.Empty(t, ti.Extra)
		})
	}
}

func TestParseDates(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Time
		wantErr bool
	}{
		{name: "integer", value: `1700000000`, want: time.Unix(1700000000, 0)},
		{name: "float", value: `1700000000.5`, want: time.Unix(1700000000, 500_000_000)},
		{name: "float with ms", value: `1700000000.25`, want: time.Unix(1700000000, 250_000_000)},
		{name: "exponent", value: `1.7e9`, want: time.Unix(1700000000, 0)},
		{name: "zero", value: `0`, want: time.Unix(0, 0)},
		{name: "year 9999", value: `253402300799`, want: time.Unix(253402300799, 0)},
		{name: "null", value: `null`},
		{name: "string", value: `"1700000000"`, wantErr: true},
		{name: "string NaN", value: `"NaN"`, wantErr: true},
		{name: "string Infinity", value: `"Infinity"`, wantErr: true},
		{name: "negative", value: `-1`, wantErr: true},
		{name: "negative fraction", value: `-0.5`, wantErr: true},
		{name: "past year 9999", value: `253402300800`, wantErr: true},
		{name: "huge", value: `1e300`, wantErr: true},
		{name: "overflowing float", value: `1e400`, wantErr: true},
		{name: "huge integer", value: `99999999999999999999999999`, wantErr: true},
		{name: "bool", value: `true`, wantErr: true},
		{name: "array", value: `[1700000000]`, wantErr: true},
		{name: "object", value: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		for _, member := range []string{"exp", "iat", "nbf"} {
			t.Run(tt.name+"/"+member, func(t *testing.T) {
				ti, err := parse(t, `{"active":true,"`+member+`":`+tt.value+`}`)
				if tt.wantErr {
					assert.ErrorIs(t, err, introspect.ErrMalformedResponse)
					return
				}
				require.NoError(t, err)
				got := map[string]time.Time{"exp": ti.Expiry, "iat": ti.IssuedAt, "nbf": ti.NotBefore}[member]
				if tt.want.IsZero() {
					assert.True(t, got.IsZero(), "got %v", got)
					return
				}
				assert.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
				assert.Equal(t, time.UTC, got.Location())
			})
		}
	}
}

func TestParseDateFractionKept(t *testing.T) {
	ti, err := parse(t, `{"active":true,"exp":1700000000.123}`)
	require.NoError(t, err)
	want := time.Unix(1700000000, 123_000_000)
	assert.WithinDuration(t, want, ti.Expiry, time.Microsecond)
	assert.NotEqual(t, 0, ti.Expiry.Nanosecond())
}

func TestParseConfirmation(t *testing.T) {
	tests := []struct {
		name    string
		cnf     string
		want    *introspect.Confirmation
		wantErr bool
	}{
		// A binding that is there but cannot be checked is kept for the
		// binding check to refuse: never dropped, never a 503.
		{name: "null", cnf: `null`, want: &introspect.Confirmation{}},
		{name: "x5t#S256", cnf: `{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}`, want: &introspect.Confirmation{X5TS256: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}},
		{name: "jkt", cnf: `{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}`, want: &introspect.Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
		{name: "unknown method", cnf: `{"jwk":{"kty":"OKP"},"kid":"k1"}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"jwk": json.RawMessage(`{"kty":"OKP"}`), "kid": json.RawMessage(`"k1"`)}}},
		{name: "all", cnf: `{"x5t#S256":"a","jkt":"b","kid":"c"}`, want: &introspect.Confirmation{X5TS256: "a", JKT: "b", Extra: map[string]json.RawMessage{"kid": json.RawMessage(`"c"`)}}},
		{name: "empty object", cnf: `{}`, want: &introspect.Confirmation{}},
		{name: "string", cnf: `"a"`, want: &introspect.Confirmation{}},
		{name: "array", cnf: `[]`, want: &introspect.Confirmation{}},
		{name: "number", cnf: `1`, want: &introspect.Confirmation{}},
		{name: "x5t#S256 not a string", cnf: `{"x5t#S256":1}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"x5t#S256": json.RawMessage(`1`)}}},
		{name: "jkt not a string", cnf: `{"jkt":{}}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"jkt": json.RawMessage(`{}`)}}},
		{name: "jkt empty", cnf: `{"jkt":""}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"jkt": json.RawMessage(`""`)}}},
		{name: "x5t#S256 null", cnf: `{"x5t#S256":null}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"x5t#S256": json.RawMessage(`null`)}}},
		{name: "x5t#S256 empty, jkt null", cnf: `{"x5t#S256":"","jkt":null}`, want: &introspect.Confirmation{Extra: map[string]json.RawMessage{"x5t#S256": json.RawMessage(`""`), "jkt": json.RawMessage(`null`)}}},
		{name: "x5t#S256 good, jkt null", cnf: `{"x5t#S256":"a","jkt":null}`, want: &introspect.Confirmation{X5TS256: "a", Extra: map[string]json.RawMessage{"jkt": json.RawMessage(`null`)}}},
		{name: "repeated method", cnf: `{"jkt":"a","jkt":"a"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := parse(t, `{"active":true,"cnf":`+tt.cnf+`}`)
			if tt.wantErr {
				assert.ErrorIs(t, err, introspect.ErrMalformedResponse)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ti.Confirmation)
			assert.NotContains(t, ti.Extra, "cnf")
		})
	}
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
