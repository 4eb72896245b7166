package proxy

import (
	"encoding/json"
	"testing"

	"github.com/introspect-go/introspect"
)

// TestTypedMembers checks typedMembers against the library: a member of an
// answer that Introspection does not keep in Extra must be in it, or its
// identity header would stay empty.
func TestTypedMembers(t *testing.T) {
	answer := map[string]any{
		"active": true, "scope": "a b", "client_id": "c", "username": "u", "token_type": "Bearer",
		"exp": 4102444800, "iat": 1700000000, "nbf": 1700000000, "sub": "s", "aud": []string{"x", "y"},
		"iss": "https://as.example.com", "jti": "j", "cnf": map[string]any{"jkt": "k"},
		// Members of RFC 7662, RFC 9068, RFC 8693 and OpenID Connect that
		// the library may or may not type.
		"act": map[string]any{"sub": "a"}, "may_act": map[string]any{"sub": "m"}, "auth_time": 1700000000,
		"acr": "1", "amr": []string{"pwd"}, "groups": []string{"g"}, "roles": []string{"r"},
		"entitlements": []string{"e"}, "azp": "c", "sid": "sid", "email": "e@example.com",
	}
	raw, err := json.Marshal(answer)
	if err != nil {
		t.Fatal(err)
	}
	var ti introspect.Introspection
	if err := json.Unmarshal(raw, &ti); err != nil {
		t.Fatal(err)
	}
	for name := range answer {
		if _, extra := ti.Extra[name]; !extra && !typedMembers[name] {
			t.Errorf("%s: Introspection keeps it out of Extra, and typedMembers does not list it", name)
		}
	}
	back := registeredMembers(&ti)
	for name := range typedMembers {
		if _, ok := back[name]; !ok {
			t.Errorf("%s: in typedMembers, and not in the marshalled answer", name)
		}
	}
}

// TestHeaderSafe checks which claim values travel in an identity header:
// none that a parser or a service would read as another value once it
// trimmed white space, ASCII's or Unicode's, off its ends.
func TestHeaderSafe(t *testing.T) {
	for v, want := range map[string]bool{
		"":                                       true,
		"alice":                                  true,
		"Zoë Ångström":                           true,
		"a b":                                    true,
		"a\u00a0b":                               true, // inside: no service trims it
		" root":                                  false,
		"root ":                                  false,
		"root\t":                                 false,
		"line\r\nX-Inj: 1":                       false,
		"nul\x00":                                false,
		"del\x7f":                                false,
		"admin\u00a0":                            false, // strings.TrimSpace: "admin"
		"\u00a0admin":                            false,
		"admin\u0085":                            false,
		"admin\u2028":                            false,
		"admin\u3000":                            false,
		"admin\u200b":                            false,
		"\ufeffadmin":                            false,
		string(make([]byte, maxIdentityValue+1)): false,
	} {
		if got := headerSafe(v); got != want {
			t.Errorf("headerSafe(%q) = %v, want %v", v, got, want)
		}
	}
	long := make([]byte, maxIdentityValue)
	for i := range long {
		long[i] = 'a'
	}
	if !headerSafe(string(long)) {
		t.Errorf("a value of maxIdentityValue bytes is left out")
	}
}

// TestScopeText checks that the scope header holds scope tokens only: a
// scope with white space or a character RFC 6749 excludes would be split
// by the service into scopes the proxy never checked.
func TestScopeText(t *testing.T) {
	for _, tc := range []struct {
		scopes []string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{[]string{"read"}, "read", true},
		{[]string{"read", "files:x", "a!#[]~;"}, "read files:x a!#[]~;", true},
		{[]string{"files:x admin"}, "", false},
		{[]string{"files:x\u00a0admin"}, "", false},
		{[]string{"read", ""}, "", false},
		{[]string{`a"b`}, "", false},
		{[]string{`a\b`}, "", false},
		{[]string{"a\tb"}, "", false},
		{[]string{"é"}, "", false},
		{[]string{"read", "files:a,admin"}, "", false}, // an HTTP list: "read files:a", "admin"
	} {
		got, ok := scopeText(tc.scopes)
		if got != tc.want || ok != tc.ok {
			t.Errorf("scopeText(%q) = %q, %v; want %q, %v", tc.scopes, got, ok, tc.want, tc.ok)
		}
	}
}
