package introspect_test

import (
	"encoding/json"
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
		// One scope here, two in the string form the scopes are written
		// back in (MarshalJSON): "admin" would appear.
		{name: "scope array element with a space", members: `"scope":["files:x admin"]`, wantErr: true},
		{name: "scope array element with an escaped space", members: `"scope":["read","files:x\u0020admin"]`, wantErr: true},
		{name: "scope array element with other white space", members: `"scope":["a\tb","c\u00a0d"]`, wantScope: []string{"a\tb", "c\u00a0d"}},
		{name: "aud array element with a space", members: `"aud":["a b"]`, wantAud: []string{"a b"}},
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
