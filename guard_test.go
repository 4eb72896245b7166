package introspect_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// A guard that no token or every token meets is refused when it is built:
// with no scopes it would let every valid token through, with "" or "read
// write" (one scope with a space in it) it would refuse every token.
func TestGuardsRefusedWhenBuilt(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	builders := map[string]func(...string){
		"RequireScope":    func(s ...string) { mw.RequireScope(s...) },
		"RequireAnyScope": func(s ...string) { mw.RequireAnyScope(s...) },
		"AllScopes":       func(s ...string) { introspect.AllScopes(s...) },
		"AnyScope":        func(s ...string) { introspect.AnyScope(s...) },
	}
	bad := []struct {
		name   string
		scopes []string
		msg    string
	}{
		{name: "none", scopes: nil, msg: "no scopes: the guard would let every token through"},
		{name: "empty slice", scopes: []string{}, msg: "no scopes"},
		{name: "empty scope", scopes: []string{""}, msg: `"" is not a scope token`},
		{name: "two scopes in one", scopes: []string{"read write"}, msg: `"read write" is not a scope token`},
		{name: "one good, one bad", scopes: []string{"read", "write "}, msg: `"write " is not a scope token`},
		{name: "quote", scopes: []string{`a"b`}, msg: "is not a scope token"},
		{name: "backslash", scopes: []string{`a\b`}, msg: "is not a scope token"},
		{name: "non-ASCII", scopes: []string{"ädmin"}, msg: "is not a scope token"},
		{name: "control character", scopes: []string{"a\tb"}, msg: "is not a scope token"},
	}
	for name, build := range builders {
		for _, tt := range bad {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				defer func() {
					v := recover()
					require.NotNil(t, v, "no panic")
					msg, ok := v.(string)
					require.True(t, ok, "panic value %T", v)
					assert.Contains(t, msg, "introspect: "+name+": ")
					assert.Contains(t, msg, tt.msg)
				}()
				build(tt.scopes...)
			})
		}
		t.Run(name+"/valid", func(t *testing.T) {
			assert.NotPanics(t, func() { build("read", "files:write", "https://api.example.com/x!#$%&'()*+,-./:;<=>?@[]^_`{|}~") })
		})
	}
	for name, build := range map[string]func(...string){
		"RequireAudience": func(a ...string) { mw.RequireAudience(a...) },
		"AnyAudience":     func(a ...string) { introspect.AnyAudience(a...) },
	} {
		assert.PanicsWithValue(t, "introspect: "+name+": no audiences: the guard would let every token through", func() { build() })
		assert.PanicsWithValue(t, "introspect: "+name+": an empty audience: the guard could never be met", func() { build("api", "") })
		assert.NotPanics(t, func() { build("https://api.example.com") })
	}

	assert.NoError(t, introspect.CheckScopes([]string{"read", "write"}))
	assert.EqualError(t, introspect.CheckScopes(nil), "introspect: no scopes: the guard would let every token through")
	assert.ErrorContains(t, introspect.CheckScopes([]string{"read write"}), `"read write" is not a scope token`)
}

// The guards that are built work as before: all, any, audience.
func TestGuardsAllowAndRefuse(t *testing.T) {
	as := newAS(t)
	mw := newMW(t, as)
	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read files:write", Audience: []string{"api"}})
	tests := []struct {
		name  string
		guard func(http.Handler) http.Handler
		want  int
	}{
		{"all present", mw.RequireScope("read", "files:write"), http.StatusOK},
		{"one missing", mw.RequireScope("read", "admin"), http.StatusForbidden},
		{"any one present", mw.RequireAnyScope("admin", "read"), http.StatusOK},
		{"none present", mw.RequireAnyScope("admin", "root"), http.StatusForbidden},
		{"audience", mw.RequireAudience("other", "api"), http.StatusOK},
		{"other audience", mw.RequireAudience("other"), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, serve(mw.Handler(tt.guard(okHandler)), bearer(tok)).status)
		})
	}
}
