package introspect_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
)

func parseEdge(body string) (*introspect.Introspection, error) {
	var ti introspect.Introspection
	if err := ti.UnmarshalJSON([]byte(body)); err != nil {
		return nil, err
	}
	return &ti, nil
}

// malformed is the message of a malformed-response error with the given detail.
func malformed(detail string) string {
	return introspect.ErrMalformedResponse.Error() + ": " + detail
}

func TestParseConfirmationRepeatedMember(t *testing.T) {
	twice := malformed(`a member of "cnf" is given twice`)
	tests := []struct {
		name    string
		body    string
		wantErr string // empty: accepted
	}{
		{name: "jkt twice", body: `{"active":true,"cnf":{"jkt":"a","jkt":"b"}}`, wantErr: twice},
		{name: "jkt twice, same value", body: `{"active":true,"cnf":{"jkt":"a","jkt":"a"}}`, wantErr: twice},
		{name: "x5t#S256 twice", body: `{"active":true,"cnf":{"x5t#S256":"a","x5t#S256":"b"}}`, wantErr: twice},
		{name: "spelled with an escape", body: `{"active":true,"cnf":{"jkt":"a","\u006akt":"b"}}`, wantErr: twice},
		{name: "null, then a value", body: `{"active":true,"cnf":{"jkt":null,"jkt":"b"}}`, wantErr: twice},
		{name: "not a string, then a string", body: `{"active":true,"cnf":{"jkt":1,"jkt":"b"}}`, wantErr: twice},
		{name: "other method twice", body: `{"active":true,"cnf":{"kid":"a","kid":"b"}}`, wantErr: twice},
		{name: "an earlier member's error comes first", body: `{"active":true,"sub":1,"cnf":{"jkt":"a","jkt":"b"}}`, wantErr: malformed(`"sub" is not a string`)},
		{name: "inactive ignores cnf", body: `{"active":false,"cnf":{"jkt":"a","jkt":"b"}}`},
		{name: "same names in nested objects", body: `{"active":true,"cnf":{"jkt":"a","jwk":{"jkt":1},"x":{"jkt":2}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := parseEdge(tt.body)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.ErrorIs(t, err, introspect.ErrMalformedResponse)
				require.Nil(t, ti)
				return
			}
			require.NoError(t, err)
		})
	}
}

// TestParseErrorPrecedence pins which error a body with several faults
// gets: not a JSON object, then a member given twice, then no boolean
// "active", then the first malformed member in the order client_id,
// username, token_type, sub, iss, jti, exp, iat, nbf, scope, aud, cnf,
// wherever the members stand in the body.
func TestParseErrorPrecedence(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "invalid JSON over a repeated member", body: `{"active":true,"active":true`, want: "not a JSON object"},
		{name: "invalid JSON after the members", body: `{"active":true,"sub":1}}`, want: "not a JSON object"},
		{name: "invalid JSON in an extra member", body: `{"active":true,"a":1,"a":2,"x":[1,]}`, want: "not a JSON object"},
		{name: "repeated member over bad active", body: `{"active":"x","a":1,"a":2}`, want: "a member is given twice"},
		{name: "repeated member over no active", body: `{"sub":1,"x":1,"x":2}`, want: "a member is given twice"},
		{name: "repeated registered member", body: `{"active":true,"aud":"a","aud":"a"}`, want: "a member is given twice"},
		{name: "no active over bad members", body: `{"sub":1,"exp":"x"}`, want: `no "active" member`},
		{name: "bad active over bad members", body: `{"sub":1,"active":1}`, want: `"active" is not a boolean`},
		{name: "string members before dates", body: `{"exp":"x","active":true,"sub":1}`, want: `"sub" is not a string`},
		{name: "client_id first", body: `{"active":true,"jti":1,"client_id":2}`, want: `"client_id" is not a string`},
		{name: "dates before scope", body: `{"active":true,"scope":1,"nbf":-1}`, want: `"nbf" is not a NumericDate`},
		{name: "aud before cnf", body: `{"cnf":1,"active":true,"aud":1}`, want: `"aud" is neither a string nor an array of strings`},
		{name: "cnf last", body: `{"cnf":{"jkt":"a","jkt":"b"},"active":true}`, want: `a member of "cnf" is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := parseEdge(tt.body)
			require.EqualError(t, err, malformed(tt.want))
			require.Nil(t, ti)
		})
	}
}

// TestParseNestingLimit checks encoding/json's limit of 10000 nested arrays
// and objects, the top-level object included.
func TestParseNestingLimit(t *testing.T) {
	nested := func(prefix string, arrays int, suffix string) string {
		return prefix + strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + suffix
	}
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{name: "10000 levels", body: nested(`{"active":true,"x":`, 9999, `}`), ok: true},
		{name: "10001 levels", body: nested(`{"active":true,"x":`, 10000, `}`)},
		{name: "10000 levels through cnf", body: nested(`{"active":true,"cnf":{"x":`, 9998, `}}`), ok: true},
		{name: "10001 levels through cnf", body: nested(`{"active":true,"cnf":{"x":`, 9999, `}}`)},
		{name: "10001 levels, inactive", body: nested(`{"active":false,"x":`, 10000, `}`)},
		{name: "objects", body: `{"active":true,"x":` + strings.Repeat(`{"a":`, 9999) + `1` + strings.Repeat(`}`, 9999) + `}`, ok: true},
		{name: "objects past the limit", body: `{"active":true,"x":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ok, json.Valid([]byte(tt.body)), "encoding/json disagrees")
			_, err := parseEdge(tt.body)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, malformed("not a JSON object"))
		})
	}
}

func TestParseStringEscapes(t *testing.T) {
	tests := []struct {
		name  string
		value string // a JSON string
		want  string
	}{
		{name: "escaped slashes", value: `"https:\/\/as.example.com\/"`, want: "https://as.example.com/"},
		{name: "short escapes", value: `"\"\\\/\b\f\n\r\t"`, want: "\"\\/\b\f\n\r\t"},
		{name: "unicode escape", value: `"caf\u00e9 \u20AC"`, want: "café €"},
		{name: "surrogate pair", value: `"\ud83d\ude00"`, want: "😀"},
		{name: "lone high surrogate", value: `"a\ud800b"`, want: "a\uFFFDb"},
		{name: "high surrogate before an escape", value: `"\ud800\u0041"`, want: "\uFFFDA"},
		{name: "two high surrogates", value: `"\ud800\ud83d\ude00"`, want: "\uFFFD😀"},
		{name: "low then high surrogate", value: `"\udc00\ud800"`, want: "\uFFFD\uFFFD"},
		{name: "raw UTF-8", value: `"日本"`, want: "日本"},
		{name: "invalid UTF-8", value: "\"a\xffb\xc3\"", want: "a\uFFFDb\uFFFD"},
		{name: "encoded surrogate", value: "\"\xed\xa0\x80\"", want: "\uFFFD\uFFFD\uFFFD"},
		{name: "DEL", value: "\"\x7f\"", want: "\x7f"},
		{name: "long with a late escape", value: `"` + strings.Repeat("abcdefgh", 8) + `\n"`, want: strings.Repeat("abcdefgh", 8) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want string
			require.NoError(t, json.Unmarshal([]byte(tt.value), &want))
			require.Equal(t, tt.want, want, "the table disagrees with encoding/json")
			ti, err := parseEdge(`{"active":true,"sub":` + tt.value + `,"aud":` + tt.value + `,"cnf":{"jkt":` + tt.value + `},"x":` + tt.value + `}`)
			require.NoError(t, err)
			require.Equal(t, tt.want, ti.Subject)
			require.Equal(t, []string{tt.want}, ti.Audience)
			require.Equal(t, tt.want, ti.Confirmation.JKT)
			require.Equal(t, json.RawMessage(tt.value), ti.Extra["x"], "extra members keep their raw form")
		})
	}
	for _, bad := range []string{`"\x"`, `"\'"`, `"\u12"`, `"\u12G4"`, "\"a\tb\"", "\"a\x00\"", `"\`} {
		_, err := parseEdge(`{"active":true,"sub":` + bad + `}`)
		require.EqualError(t, err, malformed("not a JSON object"), "value %q", bad)
	}
}

func TestParseMemberNames(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantSub   string
		wantExtra map[string]json.RawMessage
		wantErr   string
	}{
		{name: "escaped registered name", body: `{"active":true,"\u0073ub":"a"}`, wantSub: "a"},
		{name: "escaped name twice", body: `{"active":true,"s\u0075b":"a","sub":"b"}`, wantErr: "a member is given twice"},
		{name: "escaped extra name", body: `{"active":true,"a\nb":1}`, wantExtra: map[string]json.RawMessage{"a\nb": json.RawMessage(`1`)}},
		{name: "empty name", body: `{"active":true,"":1}`, wantExtra: map[string]json.RawMessage{"": json.RawMessage(`1`)}},
		{name: "invalid UTF-8 name", body: "{\"active\":true,\"\xff\":1}", wantExtra: map[string]json.RawMessage{"\uFFFD": json.RawMessage(`1`)}},
		{name: "two invalid bytes, one name", body: "{\"active\":true,\"\xff\":1,\"\xfe\":2}", wantErr: "a member is given twice"},
		{name: "invalid byte and U+FFFD", body: "{\"active\":true,\"\xff\":1,\"\\ufffd\":2}", wantErr: "a member is given twice"},
		{name: "raw and escaped UTF-8", body: `{"active":true,"é":1,"\u00e9":2}`, wantErr: "a member is given twice"},
		{name: "names differ by case", body: `{"active":true,"Sub":"a","SUB":"b"}`, wantExtra: map[string]json.RawMessage{"Sub": json.RawMessage(`"a"`), "SUB": json.RawMessage(`"b"`)}},
		{name: "name with trailing space", body: `{"active":true,"sub ":"a"}`, wantExtra: map[string]json.RawMessage{"sub ": json.RawMessage(`"a"`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti, err := parseEdge(tt.body)
			if tt.wantErr != "" {
				require.EqualError(t, err, malformed(tt.wantErr))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantSub, ti.Subject)
			require.Equal(t, tt.wantExtra, ti.Extra)
		})
	}
}

// TestParseExtraIsCopied checks that nothing in the verdict points into the
// body, and that the extra values, which share storage, cannot reach one
// another through append.
func TestParseExtraIsCopied(t *testing.T) {
	body := []byte(`{"active":true,"sub":"alice","a":[1, 2],"b":{"c":"d"},"cnf":{"jkt":"k","m":"n"}}`)
	var ti introspect.Introspection
	require.NoError(t, ti.UnmarshalJSON(body))
	for i := range body {
		body[i] = 'x'
	}
	want := map[string]json.RawMessage{"a": json.RawMessage(`[1, 2]`), "b": json.RawMessage(`{"c":"d"}`)}
	require.Equal(t, want, ti.Extra)
	require.Equal(t, "alice", ti.Subject)
	require.Equal(t, &introspect.Confirmation{JKT: "k", Extra: map[string]json.RawMessage{"m": json.RawMessage(`"n"`)}}, ti.Confirmation)

	_ = append(ti.Extra["a"], "garbage"...)
	require.Equal(t, want, ti.Extra)
}

func TestParseJSONGrammar(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{name: "JSON whitespace everywhere", body: " \t\r\n{ \t\r\n\"active\" \t\r\n: \t\r\ntrue \t\r\n, \"x\" : [ 1 , { \"y\" : [ ] } , \"z\" ] \t\r\n} \t\r\n", ok: true},
		{name: "vertical tab", body: "{\"active\":true\v}"},
		{name: "form feed", body: "\f{\"active\":true}"},
		{name: "no-break space", body: "{\"active\":true}\u00a0"},
		{name: "byte order mark", body: "\ufeff{\"active\":true}"},
		{name: "numbers", body: `{"active":true,"x":[-0,0.5e-3,1E+2,-1.25,123456789012345678901234567890,1e999]}`, ok: true},
		{name: "leading zero", body: `{"active":true,"x":01}`},
		{name: "bare point", body: `{"active":true,"x":1.}`},
		{name: "leading point", body: `{"active":true,"x":.5}`},
		{name: "lone minus", body: `{"active":true,"x":-}`},
		{name: "plus sign", body: `{"active":true,"x":+1}`},
		{name: "empty exponent", body: `{"active":true,"x":1e+}`},
		{name: "hexadecimal", body: `{"active":true,"x":0x1}`},
		{name: "NaN", body: `{"active":true,"x":NaN}`},
		{name: "underscore", body: `{"active":true,"x":1_000}`},
		{name: "literals", body: `{"active":true,"x":[true,false,null]}`, ok: true},
		{name: "short literal", body: `{"active":true,"x":nul}`},
		{name: "long literal", body: `{"active":true,"x":nulll}`},
		{name: "trailing comma in array", body: `{"active":true,"x":[1,]}`},
		{name: "trailing comma in object", body: `{"active":true,"x":{"a":1,}}`},
		{name: "trailing comma at top", body: `{"active":true,}`},
		{name: "missing colon", body: `{"active":true,"x":{"a" 1}}`},
		{name: "unquoted name", body: `{"active":true,"x":{a:1}}`},
		{name: "mismatched brackets", body: `{"active":true,"x":[}`},
		{name: "unclosed string in array", body: `{"active":true,"x":["a]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ok, json.Valid([]byte(tt.body)), "encoding/json disagrees")
			ti, err := parseEdge(tt.body)
			if tt.ok {
				require.NoError(t, err)
				require.True(t, ti.Active)
				return
			}
			require.EqualError(t, err, malformed("not a JSON object"))
		})
	}
}

func TestParseDateForms(t *testing.T) {
	tests := []struct {
		value   string
		want    int64 // seconds
		wantErr bool
	}{
		{value: `1e3`, want: 1000},
		{value: `1000.0`, want: 1000},
		{value: `-0`, want: 0},
		{value: `99999999999`, want: 99999999999},
		{value: `999999999999`, wantErr: true},
		{value: `253402300799`, want: 253402300799},
		{value: `253402300799.0`, want: 253402300799},
		{value: `999999999999999`, wantErr: true},
		{value: `1000000000000000000000`, wantErr: true},
		{value: `-1e-9`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			ti, err := parseEdge(`{"active":true,"exp":` + tt.value + `}`)
			if tt.wantErr {
				require.EqualError(t, err, malformed(`"exp" is not a NumericDate`))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, ti.Expiry.Unix())
			require.Zero(t, ti.Expiry.Nanosecond())
		})
	}
}
