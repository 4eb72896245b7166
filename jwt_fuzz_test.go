package introspect_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// FuzzLocalJWT feeds the local validator arbitrary tokens, seeded with good
// and forged JWT access tokens of a live issuer. It never panics; a token it
// accepts names the issuer and the resource and has an exp, with the
// source VerdictJWT; every refusal is a *JWTError (401), or a 503 that
// matches ErrDiscovery; and no error's text repeats the token.
func FuzzLocalJWT(f *testing.F) {
	as := introspecttest.NewServer()
	f.Cleanup(as.Close)
	v, err := introspect.NewJWTValidator(introspect.WithIssuer(as.Issuer), introspect.WithJWTAudience(jwtResource),
		introspect.WithEagerDiscovery())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	good := as.IssueJWT(jwtClaims())
	f.Add(good)
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1])
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + ".x.y")
	for _, edit := range []func(h, c map[string]any){
		func(h, _ map[string]any) { h["alg"] = "none" },
		func(h, _ map[string]any) { h["alg"] = "HS256" },
		func(h, _ map[string]any) { delete(h, "typ") },
		func(h, _ map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false },
		func(h, _ map[string]any) { h["cty"] = "JWT" },
		func(h, _ map[string]any) { h["jku"] = "http://127.0.0.1:1/jwks" },
		func(h, _ map[string]any) { delete(h, "kid") },
		func(_, c map[string]any) { c["aud"] = []string{"x", jwtResource} },
		func(_, c map[string]any) { c["cnf"] = map[string]any{"jkt": "t"} },
		func(_, c map[string]any) { c["scope"] = "a\u00a0b c" },
		func(_, c map[string]any) { c["exp"] = 1.5 },
		func(_, c map[string]any) { c["deep"] = []any{[]any{[]any{map[string]any{"a": []any{}}}}} },
	} {
		f.Add(as.IssueJWTFunc(jwtClaims(), edit))
	}
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ti, err := v.Validate(ctx, tok)
		if err == nil {
			if ti == nil || !ti.Active || ti.Source != introspect.VerdictJWT || ti.Issuer != as.Issuer ||
				!ti.HasAudience(jwtResource) || ti.Expiry.IsZero() {
				t.Fatalf("accepted a token without the required claims: %+v", ti)
			}
			return
		}
		var je *introspect.JWTError
		switch {
		case errors.As(err, &je):
			if introspect.StatusCode(err) != http.StatusUnauthorized || !errors.Is(err, introspect.ErrInvalidJWT) {
				t.Fatalf("a JWTError that is not a 401 invalid JWT: %v", err)
			}
		case errors.Is(err, introspect.ErrDiscovery):
		default:
			t.Fatalf("unexpected error: %v", err)
		}
		if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("the error repeats the token: %v", err)
		}
	})
}
