package introspect_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// Scopes are separated by SP alone (RFC 6749 §3.3): an answer whose scope
// string holds "admin" after any other white space does not grant "admin",
// in a plain answer or a signed one.
func TestScopeSplitOnSPOnly(t *testing.T) {
	tests := []struct {
		name  string
		scope string
		want  int
	}{
		{name: "SP", scope: "files:x admin", want: http.StatusOK},
		{name: "runs of SP", scope: "  files:x   admin ", want: http.StatusOK},
		{name: "NO-BREAK SPACE", scope: "files:x\u00a0admin", want: http.StatusForbidden},
		{name: "TAB", scope: "files:x\tadmin", want: http.StatusForbidden},
		{name: "LF", scope: "files:x\nadmin", want: http.StatusForbidden},
		{name: "CR", scope: "files:x\radmin", want: http.StatusForbidden},
		{name: "VT", scope: "files:x\vadmin", want: http.StatusForbidden},
		{name: "FF", scope: "files:x\fadmin", want: http.StatusForbidden},
		{name: "LINE SEPARATOR", scope: "files:x\u2028admin", want: http.StatusForbidden},
		{name: "NEXT LINE", scope: "files:x\u0085admin", want: http.StatusForbidden},
		{name: "IDEOGRAPHIC SPACE", scope: "files:x\u3000admin", want: http.StatusForbidden},
		{name: "leading TAB", scope: "\tadmin", want: http.StatusForbidden},
	}
	plainAS := newAS(t)
	plain := newMW(t, plainAS)
	signedAS := discoAS(t)
	signed := newJWTMiddleware(t, signedAS)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				kind string
				as   *introspecttest.Server
				mw   *introspect.Middleware
			}{{"plain", plainAS, plain}, {"signed", signedAS, signed}} {
				tok := c.as.Issue(introspecttest.Claims{Subject: "alice", Scope: tt.scope})
				h := c.mw.Handler(c.mw.RequireScope("admin")(okHandler))
				res := serve(h, bearer(tok))
				assert.Equal(t, tt.want, res.status, "%s answer, scope %q", c.kind, tt.scope)
				ti, err := c.mw.Authenticate(bearer(tok))
				require.NoError(t, err)
				assert.Equal(t, tt.want == http.StatusOK, ti.HasScope("admin"), "%s answer: HasScope", c.kind)
				for _, s := range ti.Scopes {
					assert.NotEmpty(t, s, "%s answer: an empty scope", c.kind)
				}
			}
		})
	}
}

// A "cnf" that is present but empty, null or of the wrong type, or names a
// method with a null, empty or non-string value, is a binding the library
// cannot check: the token is refused (401) like one bound by an unknown
// method, even over a connection whose client certificate would match.
func TestUnverifiableBindingRefused(t *testing.T) {
	as := newAS(t)
	api := selfSignedTLS(t, nil)
	cert := api.TLS.Certificates[0]
	sum := sha256.Sum256(cert.Certificate[0])
	thumb := base64.RawURLEncoding.EncodeToString(sum[:])
	mw := newMW(t, as)
	api.Config.Handler = mw.Handler(okHandler)
	tr := api.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	withCert := &http.Client{Transport: tr}
	call := func(tok string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, api.URL, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := withCert.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	tests := []struct {
		name string
		cnf  any
		want int
	}{
		{name: "certificate binding that matches", cnf: map[string]any{"x5t#S256": thumb}, want: http.StatusOK},
		{name: "null", cnf: nil, want: http.StatusUnauthorized},
		{name: "empty object", cnf: map[string]any{}, want: http.StatusUnauthorized},
		{name: "string", cnf: "x", want: http.StatusUnauthorized},
		{name: "number", cnf: 1, want: http.StatusUnauthorized},
		{name: "array", cnf: []any{thumb}, want: http.StatusUnauthorized},
		{name: "empty jkt", cnf: map[string]any{"jkt": ""}, want: http.StatusUnauthorized},
		{name: "null jkt", cnf: map[string]any{"jkt": nil}, want: http.StatusUnauthorized},
		{name: "jkt not a string", cnf: map[string]any{"jkt": 7}, want: http.StatusUnauthorized},
		{name: "null x5t#S256", cnf: map[string]any{"x5t#S256": nil}, want: http.StatusUnauthorized},
		{name: "empty x5t#S256", cnf: map[string]any{"x5t#S256": ""}, want: http.StatusUnauthorized},
		{name: "x5t#S256 not a string", cnf: map[string]any{"x5t#S256": []any{thumb}}, want: http.StatusUnauthorized},
		{name: "matching certificate and a null jkt", cnf: map[string]any{"x5t#S256": thumb, "jkt": nil}, want: http.StatusUnauthorized},
		{name: "matching certificate and an empty jkt", cnf: map[string]any{"x5t#S256": thumb, "jkt": ""}, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := as.Issue(introspecttest.Claims{Subject: "alice", Extra: map[string]any{"cnf": tt.cnf}})
			assert.Equal(t, tt.want, call(tok))
			if tt.want != http.StatusOK {
				_, err := mw.Authenticate(bearer(tok))
				assert.ErrorIs(t, err, introspect.ErrTokenBinding)
			}
		})
	}
}
