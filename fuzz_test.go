package introspect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/introspect-go/introspect"
)

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' ||
		strings.IndexByte("-._~+/", s[i]) >= 0) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

// FuzzExtract feeds the extractor arbitrary Authorization headers, form
// bodies and queries. It never panics, every error is exactly one of the two
// extraction verdicts, a token always is a b64token within the limit, and the
// body stays intact for the handler.
func FuzzExtract(f *testing.F) {
	seeds := []struct {
		header, body, query string
		maxLen              int
	}{
		{"Bearer abc", "", "", 0},
		{"bearer   abc==", "", "", 0},
		{"Bearer a=b", "", "", 0},
		{"Bearer", "", "", 0},
		{"Bearer ", "", "", 0},
		{"Bearerx abc", "", "", 0},
		{"Basic dXNlcjpwYXNz", "access_token=abc", "", 0},
		{"", "access_token=abc&x=1", "", 0},
		{"", "access_token=abc&access_token=abc", "", 0},
		{"", "access_token=%zz", "", 0},
		{"", "", "access_token=abc", 0},
		{"", "access_token=abc", "access_token=abc", 0},
		{"Bearer abc", "", "access_token=abc", 0},
		{"Bearer abcdef", "", "", 3},
		{"Bearer \x00\r\n", "access_token=a%00", "access_token=%", 1},
		{"BEARER " + strings.Repeat("a", 5000), "", "", 0},
	}
	for _, s := range seeds {
		f.Add(s.header, s.body, s.query, s.maxLen)
	}
	f.Fuzz(func(t *testing.T, header, body, query string, maxLen int) {
		ex := introspect.BearerExtractor{
			MaxLength:     maxLen % 8192,
			AllowFormBody: true,
			MaxFormBody:   1 << 12,
			AllowQuery:    true,
		}
		limit := ex.MaxLength
		if limit <= 0 {
			limit = introspect.DefaultMaxTokenLength
		}
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		tok, err := ex.Extract(r)
		if err != nil {
			missing := errors.Is(err, introspect.ErrMissingToken)
			invalid := errors.Is(err, introspect.ErrInvalidRequest)
			if missing == invalid {
				t.Fatalf("error %v is not exactly one verdict", err)
			}
			if tok.Value != "" {
				t.Fatalf("token returned with an error")
			}
		} else {
			if !isB64Token(tok.Value) {
				t.Fatalf("token %q is not a b64token", tok.Value)
			}
			if len(tok.Value) > limit {
				t.Fatalf("token of %d bytes over the limit %d", len(tok.Value), limit)
			}
			if tok.Scheme != "Bearer" {
				t.Fatalf("scheme %q", tok.Scheme)
			}
			if tok.Source == introspect.SourceHeader && !strings.HasSuffix(header, tok.Value) {
				t.Fatalf("header token %q not taken from the header", tok.Value)
			}
		}
		got, rerr := io.ReadAll(r.Body)
		if rerr != nil || string(got) != body {
			t.Fatalf("body changed: %q, %v", got, rerr)
		}
	})
}

// activeMembers returns the raw values of the top-level "active" members of
// a JSON object, or ok false if body is not one.
func activeMembers(body []byte) (vals []string, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		if t == "active" {
			vals = append(vals, string(v))
		}
	}
	return vals, true
}

// FuzzParseResponse feeds the response parser arbitrary bodies. It never
// panics, its only error is a malformed response, and it says active only if
// the body is an object whose one "active" member is literally true.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true}`,
		`{"active":false}`,
		`{"active":"true"}`,
		`{"active":1}`,
		`{"active":null}`,
		`{"ACTIVE":true}`,
		`{"active":false,"active":true}`,
		`{"\u0061ctive":true}`,
		`{"active":true,"scope":"a b","aud":["x","y"],"exp":1700000000.5,"cnf":{"x5t#S256":"abc","jkt":"d"},"ext":{"a":[1]}}`,
		`{"active":true,"scope":["a"],"aud":"x","iat":-1}`,
		`{"active":true,"exp":1e400}`,
		`{"active":true,"nbf":"1"}`,
		`{"active":true,"cnf":[]}`,
		`{"active":true,"cnf":null}`,
		`{"active":true,"cnf":{}}`,
		`{"active":true,"cnf":{"jkt":""}}`,
		`{"active":true,"cnf":{"x5t#S256":null}}`,
		`{"active":true,"cnf":{"x5t#S256":"abc","jkt":null}}`,
		`{"active":true,"cnf":{"x5t#S256":"abc"}}`,
		`{"active":true,"cnf":{"x5t#S256":"abc","jkt":""}}`,
		`{"active":true,"cnf":{"jkt":"J","x5t#S256":5}}`,
		`{"active":true,"exp":2000000000.7,"nbf":1000000000.2,"iat":-1.5}`,
		`{"active":true,"scope":["","a",null],"aud":["",""]}`,
		`{"active":true,"scope":["files:x admin"]}`,
		`{"active":true,"scope":"files:x\u00a0admin"}`,
		`{"active":true,"scope":" a\tb  c\u2028d\u0085e "}`,
		`[{"active":true}]`,
		`null`,
		`{"active":tr`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ti introspect.Introspection
		err := ti.UnmarshalJSON(body)
		if err != nil {
			if !errors.Is(err, introspect.ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		vals, ok := activeMembers(body)
		if !ok {
			t.Fatalf("accepted a body that is not a JSON object")
		}
		if len(vals) != 1 {
			t.Fatalf("accepted %d active members", len(vals))
		}
		if ti.Active != (vals[0] == "true") {
			t.Fatalf("active %v for %q", ti.Active, vals[0])
		}
		if !ti.Active && !equalZero(&ti) {
			t.Fatalf("an inactive answer carries members: %+v", ti)
		}
		if ti.Active {
			checkScopesAndBinding(t, body, &ti)
		}
		// What the parser accepted, it reads back the same from its own form.
		b, err := json.Marshal(&ti)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again introspect.Introspection
		if err := again.UnmarshalJSON(b); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if msg := grantsMore(&ti, &again); msg != "" {
			t.Fatalf("round trip of %s as %s: %s", body, b, msg)
		}
	})
}

// grantsMore says how after, an answer read back from the JSON form of
// before, grants more than before; "" when it grants no more (a cache
// storing answers as JSON must not widen them).
func grantsMore(before, after *introspect.Introspection) string {
	switch {
	case after.Active != before.Active:
		return "active changed"
	case !slices.Equal(after.Scopes, before.Scopes) && !(len(after.Scopes) == 0 && len(before.Scopes) == 0):
		return fmt.Sprintf("scopes %q became %q", before.Scopes, after.Scopes)
	case slices.ContainsFunc(after.Audience, func(a string) bool { return !slices.Contains(before.Audience, a) }):
		return fmt.Sprintf("audiences %q became %q", before.Audience, after.Audience)
	case after.Subject != before.Subject || after.ClientID != before.ClientID || after.Username != before.Username ||
		after.Issuer != before.Issuer || after.JWTID != before.JWTID || after.TokenType != before.TokenType:
		return "a string member changed"
	case after.Expiry.After(before.Expiry) || after.Expiry.IsZero() != before.Expiry.IsZero():
		return fmt.Sprintf("exp %v became %v", before.Expiry, after.Expiry)
	case after.NotBefore.Before(before.NotBefore) || after.NotBefore.IsZero() != before.NotBefore.IsZero():
		return fmt.Sprintf("nbf %v became %v", before.NotBefore, after.NotBefore)
	case after.IssuedAt.Before(before.IssuedAt) || after.IssuedAt.IsZero() != before.IssuedAt.IsZero():
		return fmt.Sprintf("iat %v became %v", before.IssuedAt, after.IssuedAt)
	case (after.Confirmation == nil) != (before.Confirmation == nil):
		return "cnf appeared or went"
	case !slices.Equal(slices.Sorted(maps.Keys(after.Extra)), slices.Sorted(maps.Keys(before.Extra))):
		return "the other members changed"
	}
	if c, d := before.Confirmation, after.Confirmation; c != nil {
		if d.JKT != c.JKT || d.X5TS256 != c.X5TS256 ||
			!slices.Equal(slices.Sorted(maps.Keys(d.Extra)), slices.Sorted(maps.Keys(c.Extra))) {
			return fmt.Sprintf("cnf %+v became %+v", *c, *d)
		}
	}
	return ""
}

func equalZero(ti *introspect.Introspection) bool {
	return !ti.Active && ti.Scopes == nil && ti.Audience == nil && ti.Extra == nil && ti.Confirmation == nil &&
		ti.Subject == "" && ti.ClientID == "" && ti.Expiry.IsZero()
}

// parseChallenge checks the grammar of a Bearer challenge:
// "Bearer" [ " " name="quoted" *( ", " name="quoted" ) ], and returns its
// parameters unescaped.
func parseChallenge(s string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(s, "Bearer")
	if !ok {
		return nil, false
	}
	params := map[string]string{}
	sep := " "
	for rest != "" {
		if rest, ok = strings.CutPrefix(rest, sep); !ok {
			return nil, false
		}
		sep = ", "
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.ContainsAny(name, ` ",\`) {
			return nil, false
		}
		var v strings.Builder
		i := 0
		for ; i < len(after) && after[i] != '"'; i++ {
			if after[i] == '\\' {
				i++
				if i == len(after) {
					return nil, false
				}
			}
			v.WriteByte(after[i])
		}
		if i == len(after) {
			return nil, false // unterminated quoted-string
		}
		if _, dup := params[name]; dup {
			return nil, false
		}
		params[name] = v.String()
		rest = after[i+1:]
	}
	return params, true
}

// keepPrintable is what Challenge is documented to keep of a free-text value.
func keepPrintable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x20 && s[i] <= 0x7e {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// FuzzChallenge feeds Challenge arbitrary values. The result never holds a
// control or non-ASCII byte, starts with "Bearer", parses as a list of
// quoted-string parameters, and keeps the realm and resource_metadata.
func FuzzChallenge(f *testing.F) {
	f.Add("api", "invalid_token", "the access token is not valid", "read write", "https://rs.example.com/.well-known/oauth-protected-resource")
	f.Add("", "", "", "", "")
	f.Add(`a"b\c`, `x"y`, "d\r\ne", "a\"b c\\d", "https://x/\"")
	f.Add("r\r\nSet-Cookie: x=y", "invalid_request\n", "\x00\x7f\xff", "admin\tread", "\\")
	f.Add("é", "ü", "naïve", "scöpe", "https://例え.jp")
	f.Fuzz(func(t *testing.T, realm, code, desc, scope, meta string) {
		scopes := strings.Split(scope, " ")
		out := introspect.Challenge(realm, code, desc, scopes, meta)
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] > 0x7e {
				t.Fatalf("byte %#x in %q", out[i], out)
			}
		}
		params, ok := parseChallenge(out)
		if !ok {
			t.Fatalf("malformed challenge %q", out)
		}
		for name, in := range map[string]string{"realm": realm, "resource_metadata": meta} {
			// An attribute with nothing printable left is left out.
			if got, ok := params[name]; got != keepPrintable(in) || ok != (keepPrintable(in) != "") {
				t.Fatalf("%s = %q (present %v), input %q", name, got, ok, in)
			}
		}
		for _, name := range []string{"error", "error_description", "scope"} {
			if strings.ContainsAny(params[name], `"\`) {
				t.Fatalf("%s holds a quote or a backslash: %q", name, params[name])
			}
		}
		for name := range params {
			switch name {
			case "realm", "error", "error_description", "scope", "resource_metadata":
			default:
				t.Fatalf("unexpected parameter %q in %q", name, out)
			}
		}
	})
}

// checkScopesAndBinding holds an accepted active answer to the scope and cnf
// rules, against encoding/json's reading of body: a scope string is split at
// SP alone into non-empty scopes, and the certificate binding is the one
// enforceable binding only when "cnf" is an object whose sole member is a
// non-empty string "x5t#S256"; any other "cnf" that is there, null included,
// leaves a Confirmation the binding check refuses.
func checkScopesAndBinding(t *testing.T, body []byte, ti *introspect.Introspection) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
	}
	var scope string
	if raw, ok := m["scope"]; ok && json.Unmarshal(raw, &scope) == nil {
		want := strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' })
		if strings.Join(ti.Scopes, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("scope %q split into %q, want %q", scope, ti.Scopes, want)
		}
	}
	raw, present := m["cnf"]
	if present != (ti.Confirmation != nil) {
		t.Fatalf("cnf present %v, Confirmation %+v", present, ti.Confirmation)
	}
	if !present {
		return
	}
	var cm map[string]any
	certOnly := false
	if json.Unmarshal(raw, &cm) == nil && len(cm) == 1 {
		v, ok := cm["x5t#S256"].(string)
		certOnly = ok && v != ""
	}
	c := ti.Confirmation
	enforceable := c.X5TS256 != "" && c.JKT == "" && len(c.Extra) == 0
	if enforceable != certOnly {
		t.Fatalf("cnf %s gives %+v: enforceable certificate binding %v, want %v", raw, c, enforceable, certOnly)
	}
}
