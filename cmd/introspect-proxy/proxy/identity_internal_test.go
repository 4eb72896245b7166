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
