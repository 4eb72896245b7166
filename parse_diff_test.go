package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The ref* functions are the response parser as it was before the single-pass
// rewrite (encoding/json into a map of raw members, then map lookups), kept as
// the reference of FuzzParseDifferential. Three rules changed since, in
// both: scopes are split at SP alone (RFC 6749 §3.3), an element of a scope
// array holding SP makes the answer malformed (an empty one is dropped),
// and a "cnf" binding that is
// there but cannot be checked (null, not an object, a method that is null,
// empty or not a string) is kept for the binding check to refuse instead of
// being dropped or failing the parse.

var refRegistered = map[string]bool{
	"active": true, "scope": true, "client_id": true, "username": true,
	"token_type": true, "exp": true, "iat": true, "nbf": true, "sub": true,
	"aud": true, "iss": true, "jti": true, "cnf": true,
}

func refParseIntrospection(body []byte) (*Introspection, error) {
	m, err := refDecodeObject(body)
	if err != nil {
		return nil, err
	}
	return refFromMembers(m)
}

func refDecodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	if refTopLevelMembers(body) != len(m) {
		return nil, fmt.Errorf("%w: a member is given twice", ErrMalformedResponse)
	}
	return m, nil
}

func refTopLevelMembers(body []byte) int {
	depth, commas := 0, 0
	inString, escaped, empty := false, false, true
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 {
				empty = false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 1 {
				commas++
			}
		}
	}
	if empty {
		return 0
	}
	return commas + 1
}

func refFromMembers(m map[string]json.RawMessage) (*Introspection, error) {
	raw, ok := m["active"]
	if !ok {
		return nil, fmt.Errorf("%w: no \"active\" member", ErrMalformedResponse)
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
	case "false":
		return &Introspection{Active: false}, nil
	default:
		return nil, fmt.Errorf("%w: \"active\" is not a boolean", ErrMalformedResponse)
	}
	ti := &Introspection{Active: true}
	var err error
	str := func(name string, dst *string) {
		if err == nil {
			err = refDecodeString(m, name, dst)
		}
	}
	str("client_id", &ti.ClientID)
	str("username", &ti.Username)
	str("token_type", &ti.TokenType)
	str("sub", &ti.Subject)
	str("iss", &ti.Issuer)
	str("jti", &ti.JWTID)
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &ti.Expiry}, {"iat", &ti.IssuedAt}, {"nbf", &ti.NotBefore}} {
		if err == nil {
			*d.dst, err = refDecodeTime(m, d.name)
		}
	}
	if err == nil {
		ti.Scopes, err = refDecodeStrings(m, "scope", true)
	}
	if err == nil {
		ti.Audience, err = refDecodeStrings(m, "aud", false)
	}
	if err == nil {
		ti.Confirmation, err = refDecodeConfirmation(m)
	}
	if err != nil {
		return nil, err
	}
	for k, v := range m {
		if refRegistered[k] {
			continue
		}
		if ti.Extra == nil {
			ti.Extra = make(map[string]json.RawMessage, len(m))
		}
		ti.Extra[k] = v
	}
	return ti, nil
}

func refIsNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func refDecodeString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok || refIsNull(raw) {
		return nil
	}
	v, err := refUnquote(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
	}
	*dst = v
	return nil
}

func refUnquote(raw json.RawMessage) (string, error) {
	raw = bytes.Trim(raw, " \t\r\n")
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		in := raw[1 : n-1]
		plain := utf8.Valid(in)
		for _, c := range in {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(in), nil
		}
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

func refDecodeTime(m map[string]json.RawMessage, name string) (time.Time, error) {
	raw, ok := m[name]
	if !ok || refIsNull(raw) {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
		return time.Time{}, fmt.Errorf("%w: %q is not a NumericDate", ErrMalformedResponse, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func refDecodeStrings(m map[string]json.RawMessage, name string, split bool) ([]string, error) {
	raw, ok := m[name]
	if !ok || refIsNull(raw) {
		return nil, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := refUnquote(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
		}
		if split {
			return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), nil
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: %q is neither a string nor an array of strings", ErrMalformedResponse, name)
	}
	if split {
		if slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, " ") }) {
			return nil, fmt.Errorf("%w: an element of %q holds a space", ErrMalformedResponse, name)
		}
		return slices.DeleteFunc(list, func(s string) bool { return s == "" }), nil
	}
	return list, nil
}

func refDecodeConfirmation(m map[string]json.RawMessage) (*Confirmation, error) {
	raw, ok := m["cnf"]
	if !ok {
		return nil, nil
	}
	var cm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cm); err != nil || cm == nil {
		return &Confirmation{}, nil
	}
	c := &Confirmation{}
	for k, v := range cm {
		var s string
		if k == "x5t#S256" || k == "jkt" {
			if json.Unmarshal(v, &s) != nil || s == "" {
				s = ""
			}
		}
		switch {
		case k == "x5t#S256" && s != "":
			c.X5TS256 = s
		case k == "jkt" && s != "":
			c.JKT = s
		default:
			if c.Extra == nil {
				c.Extra = make(map[string]json.RawMessage)
			}
			c.Extra[k] = v
		}
	}
	return c, nil
}

// diffSeeds are bodies for FuzzParseDifferential and FuzzScanValid.
var diffSeeds = []string{
	`{"active":true,"sub":"user-123","client_id":"app","scope":"read write","iss":"https://as.bench.test","token_type":"Bearer","exp":1795000000,"iat":1794990000,"aud":"https://api.bench.test"}`,
	`{"active":true,"sub":"user-123","tenant":"acme","roles":["a","b"],"ext":{"a":[1,{"b":null}],"c":"}"}}`,
	`{"active":true}`,
	`{"active":false}`,
	`{"active":false,"exp":"soon","scope":5,"aud":{},"cnf":1,"sub":"alice","x":1}`,
	`{"active":"true"}`,
	`{"active":1}`,
	`{"active":null}`,
	`{"active":[true]}`,
	`{"active":{}}`,
	`{"ACTIVE":true}`,
	`{"Active":true}`,
	`{"sub":"x"}`,
	`{}`,
	` { "active" : true } `,
	"\t\r\n{\n\t\"active\"\r:\ttrue ,\n\"sub\" : \"a\" , \"x\" : [ 1 , { \"y\" : [ ] } ] }\n",
	`{"\u0061ctive":true}`,
	`{"active":false,"\u0061ctive":true}`,
	`{"active":true,"active":false}`,
	`{"active":true,"sub":"a","sub":"b"}`,
	`{"active":true,"x":1,"x":2}`,
	`{"active":true,"x":1,"\u0078":2}`,
	`{"active":true,"\ud800":1,"\udc00":2}`,
	`{"active":true,"\ud83d\ude00":1,"\ud83d":2}`,
	"{\"active\":true,\"\xff\":1,\"\xfe\":2}",
	"{\"active\":true,\"\xff\":1}",
	"{\"active\":true,\"sub\":\"\xff\xfe\",\"iss\":\"\xed\xa0\x80\"}",
	"{\"active\":true,\"sub\":\"caf\u00e9\",\"iss\":\"\u65e5\u672c\"}",
	`{"active":true,"sub":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00\ud800x\udc00"}`,
	`{"active":true,"iss":"https:\/\/as.example.com","aud":"https:\/\/api.example.com","scope":"a\u0020b\tc"}`,
	`{"active":true,"scope":"  a   b ","aud":""}`,
	`{"active":true,"scope":"","aud":"a b"}`,
	"{\"active\":true,\"scope\":\"a\u00a0b\u2003c\u0085d\"}",
	`{"active":true,"scope":["a","b"],"aud":["x","y"]}`,
	`{"active":true,"scope":[],"aud":[]}`,
	`{"active":true,"scope":[null,"a"],"aud":[null]}`,
	`{"active":true,"scope":["files:x admin"],"aud":["a b"]}`,
	`{"active":true,"scope":["a"," "]}`,
	"{\"active\":true,\"scope\":[\"a\\u0020b\",\"c\u00a0d\"]}",
	`{"active":true,"scope":["a",1]}`,
	`{"active":true,"aud":[["a"]]}`,
	`{"active":true,"scope":1,"aud":true}`,
	`{"active":true,"scope":{},"aud":{}}`,
	`{"active":true,"sub":null,"iss":null,"scope":null,"aud":null,"exp":null,"cnf":null}`,
	`{"active":true,"sub":1,"client_id":{},"exp":"x"}`,
	`{"active":true,"aud":1,"exp":"x"}`,
	`{"active":true,"cnf":1,"jti":2}`,
	`{"active":true,"exp":1700000000.5,"iat":1.7e9,"nbf":0}`,
	`{"active":true,"exp":-0,"iat":0.0,"nbf":-0.0}`,
	`{"active":true,"exp":1E2,"iat":1e+2,"nbf":1e-2}`,
	`{"active":true,"exp":-1}`,
	`{"active":true,"exp":253402300799,"iat":253402300799.5,"nbf":253402300800}`,
	`{"active":true,"exp":999999999999999,"iat":9999999999999999}`,
	`{"active":true,"exp":1e400}`,
	`{"active":true,"exp":99999999999999999999999999}`,
	`{"active":true,"exp":0.0000000001,"iat":1.999999999999}`,
	`{"active":true,"exp":"1700000000","iat":true,"nbf":[1]}`,
	`{"active":true,"exp":01}`,
	`{"active":true,"exp":1.}`,
	`{"active":true,"exp":.5}`,
	`{"active":true,"exp":+1}`,
	`{"active":true,"exp":1e}`,
	`{"active":true,"exp":NaN}`,
	`{"active":true,"cnf":{"x5t#S256":"a","jkt":"b","kid":"c","jwk":{"kty":"OKP"}}}`,
	`{"active":true,"cnf":{}}`,
	`{"active":true,"cnf":[]}`,
	`{"active":true,"cnf":"a"}`,
	`{"active":true,"cnf":{"jkt":1}}`,
	`{"active":true,"cnf":{"x5t#S256":null,"jkt":null}}`,
	`{"active":true,"cnf":{"jkt":"a","jkt":"b"}}`,
	`{"active":true,"cnf":{"jkt":"a","\u006Akt":"b"}}`,
	`{"active":true,"cnf":{"x5t#S256":"a","x5t#S256":1}}`,
	`{"active":true,"cnf":{"k":1,"k":2}}`,
	`{"active":false,"cnf":{"jkt":"a","jkt":"b"}}`,
	`{"active":true,"sub":1,"cnf":{"jkt":"a","jkt":"b"}}`,
	`{"active":true,"cnf":{"\u006Akt":"a","x5t\u0023S256":"b"}}`,
	`{"active":true,"x":"a,b\"c,{","y":"\\","z":[{"y":","},"}"]}`,
	`{"x":{"active":true}}`,
	`[{"active":true}]`,
	`"active"`,
	`1`,
	`null`,
	`true`,
	``,
	` `,
	`{`,
	`}`,
	`{"active":tr`,
	`{"active":true`,
	`{"active":true,}`,
	`{"active":true,,"a":1}`,
	`{"active":true "a":1}`,
	`{"active" true}`,
	`{active:true}`,
	`{'active':true}`,
	`{"active":true} {"active":true}`,
	`{"active":true}x`,
	`{"active":true}]`,
	`{"active":true,"sub":"al`,
	`{"active":true,"sub":"a\`,
	`{"active":true,"sub":"\x"}`,
	`{"active":true,"sub":"\u12"}`,
	`{"active":true,"sub":"\u12G4"}`,
	`{"active":true,"sub":"\'"}`,
	"{\"active\":true,\"sub\":\"a\tb\"}",
	"{\"active\":true,\"sub\":\"a\x00b\"}",
	"{\"active\":true,\"sub\":\"a\x7fb\"}",
	"{\"active\":true\v}",
	"{\"active\":true\f}",
	"\xef\xbb\xbf{\"active\":true}",
	`{"active":true,"x":[1,2,]}`,
	`{"active":true,"x":[,1]}`,
	`{"active":true,"x":{"a"}}`,
	`{"active":true,"x":{"a":}}`,
	`{"active":true,"x":{"a":1,}}`,
	`{"active":true,"x":{1:1}}`,
	`{"active":true,"x":[}`,
	`{"active":true,"x":{]}`,
	`{"active":true,"x":nul}`,
	`{"active":true,"x":falsey}`,
	`{"active":true,"x":truefalse}`,
	`{"active":true,"x":-}`,
	`{"active":true,"x":-01}`,
	`{"active":true,"x":1.5e+}`,
	`{"active":true,"x":1.5E-07,"y":-0.0e0,"z":123456789012345678901234567890}`,
	`<html>active</html>`,
	"{\"active\":true,\"deep\":" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}",
	"{\"active\":true,\"deep\":" + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40) + "}",
	"{\"active\":true,\"long\":\"" + strings.Repeat("abcdefgh", 40) + "\\n" + strings.Repeat("\u00e9", 20) + "\"}",
}

// FuzzParseDifferential checks parseIntrospection against the previous
// parser, refParseIntrospection: for any body both accept or both refuse,
// with the same error message, and what both accept is the same verdict,
// compared with reflect.DeepEqual as is. The comparison does not equate nil
// with empty: a nil map or slice and an empty one differ (Scopes is []string{}
// for "scope":"" and nil for "scope":null, Extra is nil when there are no
// other members), and both parsers must agree on which. (Signed answers go
// through parseIntrospection too.)
//
// The one intended difference is a member name repeated inside "cnf", which
// the previous parser resolved by keeping the last one: where the reference
// would have decoded such a "cnf" (its verdict on the same members without
// "cnf" is active), the new code must refuse the body, and only there.
//
// The parsed body is overwritten afterwards, so a result that kept pointing
// into it would show.
func FuzzParseDifferential(f *testing.F) {
	for _, s := range diffSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := refParseIntrospection(body)
		scratch := bytes.Clone(body)
		got, gotErr := parseIntrospection(scratch)
		for i := range scratch {
			scratch[i] = '#'
		}
		m, err := refDecodeObject(body)
		compareVerdicts(t, "parseIntrospection", body, err == nil && cnfDecidesDuplicate(m), got, gotErr, want, wantErr)

	})
}

// cnfDecidesDuplicate reports whether the members include a "cnf" object with
// a repeated member name, and the reference would decode that "cnf": its
// verdict on the other members is active.
func cnfDecidesDuplicate(m map[string]json.RawMessage) bool {
	if !hasDuplicateMember(m["cnf"]) {
		return false
	}
	rest := maps.Clone(m)
	delete(rest, "cnf")
	ti, err := refFromMembers(rest)
	return err == nil && ti.Active
}

func compareVerdicts(t *testing.T, what string, body []byte, cnfDuplicate bool, got *Introspection, gotErr error, want *Introspection, wantErr error) {
	t.Helper()
	if cnfDuplicate {
		if gotErr == nil || !errors.Is(gotErr, ErrMalformedResponse) || got != nil ||
			!strings.HasSuffix(gotErr.Error(), `a member of "cnf" is given twice`) {
			t.Fatalf("%s(%q): a repeated member of cnf gives %+v, %v", what, body, got, gotErr)
		}
		return
	}
	switch {
	case (gotErr != nil) != (wantErr != nil):
		t.Fatalf("%s(%q):\n got %+v, %v\nwant %+v, %v", what, body, got, gotErr, want, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() || !errors.Is(gotErr, ErrMalformedResponse) {
			t.Fatalf("%s(%q): error %q, want %q", what, body, gotErr, wantErr)
		}
		if got != nil {
			t.Fatalf("%s(%q): a result with the error %v", what, body, gotErr)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("%s(%q):\n got %#v\nwant %#v", what, body, got, want)
	}
}

// hasDuplicateMember reports whether raw is a JSON object with a member name
// (as encoding/json decodes it) given twice.
func hasDuplicateMember(raw json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		name, _ := tok.(string)
		if seen[name] {
			return true
		}
		seen[name] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
	}
	return false
}

// FuzzScanValid checks the grammar checks of the parser's scanner against
// json.Valid on arbitrary input, whatever its top-level value.
func FuzzScanValid(f *testing.F) {
	for _, s := range diffSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`[]`, `[1,"a",{"b":[true,false,null]}]`, `"\u00e9"`, `-1.5e3`, `0`, `nul`, `[`, `{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end := valueEnd(data, skipSpace(data, 0), 0)
		got := end >= 0 && skipSpace(data, end) == len(data)
		if want := json.Valid(data); got != want {
			t.Fatalf("%q: scanner says valid %v, json.Valid %v", data, got, want)
		}
	})
}
