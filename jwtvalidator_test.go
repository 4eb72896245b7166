package introspect_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

const jwtResource = "https://api.example"

// newJWTValidator returns a validator of as's JWT access tokens for
// jwtResource.
func newJWTValidator(t testing.TB, as *introspecttest.Server, opts ...introspect.Option) *introspect.JWTValidator {
	t.Helper()
	v, err := introspect.NewJWTValidator(append([]introspect.Option{
		introspect.WithIssuer(as.Issuer), introspect.WithJWTAudience(jwtResource),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// jwtClaims are the claims of a good token for jwtResource.
func jwtClaims() introspecttest.Claims {
	return introspecttest.Claims{Subject: "alice", ClientID: "app", Scope: "read write",
		Audience: []string{jwtResource}, Extra: map[string]any{"acr": "1"}}
}

// signRaw signs header.payload, both given as JSON text, with as's key.
func signRaw(t testing.TB, as *introspecttest.Server, header, payload string) string {
	t.Helper()
	key, _ := as.SigningKey()
	input := b64(header) + "." + b64(payload)
	method := jwt.SigningMethodES256
	sig, err := method.Sign(input, key)
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// asHeader is the header as's IssueJWT writes, as JSON text.
func asHeader(as *introspecttest.Server, extra string) string {
	_, kid := as.SigningKey()
	return `{"alg":"ES256","typ":"at+jwt","kid":"` + kid + `"` + extra + `}`
}

func asPayload(as *introspecttest.Server, extra string) string {
	now := time.Now().Unix()
	return `{"iss":"` + as.Issuer + `","aud":"` + jwtResource + `","sub":"alice","client_id":"app","exp":` +
		itoa(now+3600) + `,"iat":` + itoa(now) + extra + `}`
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestJWTValidatorAccepts(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "PS256", "EdDSA", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			var opts []introspecttest.Option
			switch alg {
			case "RS256", "PS256":
				opts = append(opts, introspecttest.WithSigningKey(newRSAKey(t), alg))
			case "EdDSA", "Ed25519":
				opts = append(opts, introspecttest.WithSigningKey(newEdKey(t), alg))
			}
			as := discoAS(t, opts...)
			v := newJWTValidator(t, as)
			c := jwtClaims()
			c.Confirmation = map[string]string{"jkt": "thumb"}
			tok := as.IssueJWT(c)
			ti, err := v.Validate(context.Background(), tok)
			require.NoError(t, err)
			assert.True(t, ti.Active)
			assert.Equal(t, introspect.VerdictJWT, ti.Source)
			assert.Equal(t, "alice", ti.Subject)
			assert.Equal(t, "app", ti.ClientID)
			assert.Equal(t, as.Issuer, ti.Issuer)
			assert.Equal(t, []string{"read", "write"}, ti.Scopes)
			assert.Equal(t, []string{jwtResource}, ti.Audience)
			assert.NotEmpty(t, ti.JWTID)
			require.NotNil(t, ti.Confirmation)
			assert.Equal(t, "thumb", ti.Confirmation.JKT)
			assert.JSONEq(t, `"1"`, string(ti.Extra["acr"]))
			assert.Zero(t, as.Calls(), "no introspection")
		})
	}
}

// The header types RFC 9068 allows, and those WithPlainJWT adds.
func TestJWTValidatorTyp(t *testing.T) {
	as := discoAS(t)
	strict := newJWTValidator(t, as)
	plain := newJWTValidator(t, as, introspect.WithPlainJWT())
	for _, tc := range []struct {
		typ           any // nil: no typ
		strict, plain bool
	}{
		{"at+jwt", true, true},
		{"application/at+jwt", true, true},
		{"AT+JWT", true, true},
		{"Application/AT+jwt", true, true},
		{"JWT", false, true},
		{nil, false, true},
		{"", false, false},
		{"jwt+at", false, false},
		{"application/jwt", false, true},
		{"token-introspection+jwt", false, false},
		{"application/", false, false},
		{7, false, false},
	} {
		tok := as.IssueJWTFunc(jwtClaims(), func(h, _ map[string]any) {
			if tc.typ == nil {
				delete(h, "typ")
			} else {
				h["typ"] = tc.typ
			}
		})
		for _, v := range []struct {
			v    *introspect.JWTValidator
			want bool
		}{{strict, tc.strict}, {plain, tc.plain}} {
			_, err := v.v.Validate(context.Background(), tok)
			if v.want {
				assert.NoError(t, err, "typ %v", tc.typ)
			} else {
				assert.ErrorIs(t, err, introspect.ErrInvalidJWT, "typ %v", tc.typ)
			}
		}
	}
}

// Every bad token is refused with a *JWTError (401) in the package's words.
func TestJWTValidatorRefuses(t *testing.T) {
	as := discoAS(t)
	rsaAS := discoAS(t, introspecttest.WithSigningKey(newRSAKey(t), "RS256"))
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var jkuHits atomic.Int64
	jku := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { jkuHits.Add(1) }))
	t.Cleanup(jku.Close)
	attackerJWK := `{"kty":"EC","crv":"P-256","x":"` + base64.RawURLEncoding.EncodeToString(attacker.X.Bytes()) +
		`","y":"` + base64.RawURLEncoding.EncodeToString(attacker.Y.Bytes()) + `"}`
	now := time.Now()
	edit := func(f func(h, c map[string]any)) func(*introspecttest.Server) string {
		return func(s *introspecttest.Server) string { return s.IssueJWTFunc(jwtClaims(), f) }
	}
	withClaims := func(f func(*introspecttest.Claims)) func(*introspecttest.Server) string {
		return func(s *introspecttest.Server) string {
			c := jwtClaims()
			f(&c)
			return s.IssueJWT(c)
		}
	}
	raw := func(header, payload string) func(*introspecttest.Server) string {
		return func(s *introspecttest.Server) string {
			return signRaw(t, s, asHeader(s, header), asPayload(s, payload))
		}
	}
	for _, tc := range []struct {
		name string
		as   *introspecttest.Server
		tok  func(*introspecttest.Server) string
		want error
	}{
		{"expired", as, withClaims(func(c *introspecttest.Claims) { c.Expiry = now.Add(-time.Minute) }), introspect.ErrTokenExpired},
		{"not yet valid", as, withClaims(func(c *introspecttest.Claims) { c.NotBefore = now.Add(time.Minute) }), introspect.ErrTokenNotYetValid},
		{"issued in the future", as, withClaims(func(c *introspecttest.Claims) { c.IssuedAt = now.Add(time.Minute) }), introspect.ErrTokenIssuedInFuture},
		{"wrong audience", as, withClaims(func(c *introspecttest.Claims) { c.Audience = []string{"https://other.example"} }), introspect.ErrAudienceMismatch},
		{"no audience", as, withClaims(func(c *introspecttest.Claims) { c.Audience = nil }), introspect.ErrAudienceMismatch},
		{"wrong issuer", as, withClaims(func(c *introspecttest.Claims) { c.Issuer = "https://evil.example" }), nil},
		{"issuer with a trailing slash", as, withClaims(func(c *introspecttest.Claims) { c.Issuer = as.Issuer + "/" }), nil},
		{"no exp", as, withClaims(func(c *introspecttest.Claims) { c.NoExpiry = true }), nil},
		{"unknown kid", as, edit(func(h, _ map[string]any) { h["kid"] = "kid-planted-Zq8" }), nil},
		{"alg none", as, edit(func(h, _ map[string]any) { h["alg"] = "none" }), nil},
		{"alg confusion HS256", rsaAS, edit(func(h, _ map[string]any) { h["alg"] = "HS256" }), nil},
		{"alg confusion HS256 on EC", as, edit(func(h, _ map[string]any) { h["alg"] = "HS256" }), nil},
		{"alg of another key type", as, edit(func(h, _ map[string]any) { h["alg"] = "RS256" }), nil},
		{"alg names another curve", as, edit(func(h, _ map[string]any) { h["alg"] = "ES384" }), nil},
		{"alg not a string", as, raw(`,"alg":1`, ""), nil},
		{"no typ", as, edit(func(h, _ map[string]any) { delete(h, "typ") }), nil},
		{"typ JWT", as, edit(func(h, _ map[string]any) { h["typ"] = "JWT" }), nil},
		{"crit", as, edit(func(h, _ map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }), nil},
		{"b64", as, edit(func(h, _ map[string]any) { h["b64"] = false }), nil},
		{"nested JWT", as, edit(func(h, _ map[string]any) { h["cty"] = "JWT" }), nil},
		{"compressed", as, edit(func(h, _ map[string]any) { h["zip"] = "DEF" }), nil},
		{"enc in a JWS header", as, edit(func(h, _ map[string]any) { h["enc"] = "A256GCM" }), nil},
		{"embedded jwk of another key", as, func(s *introspecttest.Server) string {
			return signWith(t, attacker, `{"alg":"ES256","typ":"at+jwt","jwk":`+attackerJWK+`}`, asPayload(s, ""))
		}, nil},
		{"jku to another key set", as, func(s *introspecttest.Server) string {
			return signWith(t, attacker, `{"alg":"ES256","typ":"at+jwt","kid":"k","jku":"`+jku.URL+`"}`, asPayload(s, ""))
		}, nil},
		{"x5u", as, func(s *introspecttest.Server) string {
			return signWith(t, attacker, `{"alg":"ES256","typ":"at+jwt","x5u":"`+jku.URL+`"}`, asPayload(s, ""))
		}, nil},
		{"another key with the issuer's kid", as, func(s *introspecttest.Server) string {
			return signWith(t, attacker, asHeader(s, ""), asPayload(s, ""))
		}, nil},
		{"tampered claims", as, func(s *introspecttest.Server) string {
			parts := strings.Split(s.IssueJWT(jwtClaims()), ".")
			parts[1] = b64(asPayload(s, `,"scope":"admin"`))
			return strings.Join(parts, ".")
		}, nil},
		{"signature not base64url", as, func(s *introspecttest.Server) string { return s.IssueJWT(jwtClaims()) + "*" }, nil},
		{"signature spelt another way", as, func(s *introspecttest.Server) string { return respell(s.IssueJWT(jwtClaims())) }, nil},
		{"signature spelt another way, RSA", rsaAS, func(s *introspecttest.Server) string { return respell(s.IssueJWT(jwtClaims())) }, nil},
		{"line break in the signature", as, func(s *introspecttest.Server) string {
			tok := s.IssueJWT(jwtClaims())
			return tok[:len(tok)-4] + "\r\n" + tok[len(tok)-4:]
		}, nil},
		{"line break in the claims", as, func(s *introspecttest.Server) string {
			parts := strings.Split(s.IssueJWT(jwtClaims()), ".")
			parts[1] = parts[1][:4] + "\n" + parts[1][4:]
			return strings.Join(parts, ".")
		}, nil},
		{"JWE", as, func(*introspecttest.Server) string {
			return b64(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".a.b.c.d"
		}, nil},
		{"two parts", as, func(*introspecttest.Server) string { return b64(`{"alg":"ES256"}`) + ".e30" }, nil},
		{"opaque", as, func(s *introspecttest.Server) string { return s.Issue(jwtClaims()) }, nil},
		{"oversized", as, withClaims(func(c *introspecttest.Claims) {
			c.Extra = map[string]any{"pad": strings.Repeat("x", introspect.DefaultMaxJWTSize)}
		}), nil},
		{"duplicate claim", as, raw("", `,"sub":"mallory"`), nil},
		{"duplicate iss", as, raw("", `,"iss":"https://evil.example"`), nil},
		{"duplicate claim, escaped", as, raw("", `,"s\u0075b":"mallory"`), nil},
		{"duplicate header member", as, raw(`,"alg":"none"`, ""), nil},
		{"deep claims", as, raw("", `,"deep":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)), nil},
		{"claims not an object", as, func(s *introspecttest.Server) string { return signRaw(t, s, asHeader(s, ""), `[1]`) }, nil},
		{"trailing data after the claims", as, func(s *introspecttest.Server) string {
			return signRaw(t, s, asHeader(s, ""), asPayload(s, "")+"{}")
		}, nil},
		{"scope not a string", as, raw("", `,"scope":7`), nil},
		{"exp not a number", as, func(s *introspecttest.Server) string {
			return signRaw(t, s, asHeader(s, ""), `{"iss":"`+s.Issuer+`","aud":"`+jwtResource+`","exp":"soon"}`)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newJWTValidator(t, tc.as)
			tok := tc.tok(tc.as)
			ti, err := v.Validate(context.Background(), tok)
			require.Error(t, err)
			assert.ErrorIs(t, err, introspect.ErrInvalidJWT)
			assert.ErrorIs(t, err, introspect.ErrInactiveToken)
			var je *introspect.JWTError
			require.ErrorAs(t, err, &je)
			assert.Equal(t, http.StatusUnauthorized, introspect.StatusCode(err))
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
				require.NotNil(t, ti, "the verified claims come back with a claim check's refusal")
				assert.Equal(t, introspect.VerdictJWT, ti.Source)
			} else {
				assert.Nil(t, ti)
			}
			for _, s := range []string{tok, "kid-planted-Zq8", "evil.example", "mallory", jku.URL} {
				assert.NotContains(t, err.Error(), s)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "introspect: "))
		})
	}
	assert.Zero(t, jkuHits.Load(), "a URL of the header is never fetched")
	assert.Zero(t, as.Calls()+rsaAS.Calls(), "no introspection")
}

// respell writes tok's signature another way: its last character with a
// trailing bit set that base64url decoding drops (ES256's 64 bytes and
// RS256's 256 both end in a group of 2 characters carrying 8 bits in 12).
func respell(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// signWith signs header.payload with key (ES256).
func signWith(t testing.TB, key crypto.Signer, header, payload string) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodES256.Sign(input, key)
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// An unknown kid refreshes the keys once; a flood of them causes no more
// fetches until the refresh limit has passed; a rotated key is picked up.
func TestJWTValidatorUnknownKidAndRotation(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	as := discoAS(t)
	v := newJWTValidator(t, as, introspect.WithClock(clock), introspect.WithEagerDiscovery())
	ctx := context.Background()
	_, err := v.Validate(ctx, as.IssueJWT(jwtClaims()))
	require.NoError(t, err)
	require.EqualValues(t, 1, as.JWKSCalls())

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := as.IssueJWTFunc(jwtClaims(), func(h, _ map[string]any) { h["kid"] = "forged-" + itoa(int64(i)) })
			_, err := v.Validate(ctx, tok)
			assert.ErrorIs(t, err, introspect.ErrInvalidJWT)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, as.JWKSCalls(), "within the refresh limit of the first fetch: no refresh")

	advance(time.Minute)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := as.IssueJWTFunc(jwtClaims(), func(h, _ map[string]any) { h["kid"] = "forged-" + itoa(int64(i)) })
			_, err := v.Validate(ctx, tok)
			assert.ErrorIs(t, err, introspect.ErrInvalidJWT)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 2, as.JWKSCalls(), "one refresh for a flood of unknown kids")

	old := as.IssueJWT(jwtClaims())
	as.RotateSigningKey()
	advance(time.Minute)
	tok := as.IssueJWT(jwtClaims())
	ti, err := v.Validate(ctx, tok)
	require.NoError(t, err, "the new key is fetched for its kid")
	assert.Equal(t, "alice", ti.Subject)
	assert.EqualValues(t, 3, as.JWKSCalls())
	_, err = v.Validate(ctx, old)
	assert.ErrorIs(t, err, introspect.ErrInvalidJWT, "the retired key is gone from the key set")
}

// Keys that cannot be fetched are no verdict: 503.
func TestJWTValidatorKeysUnavailable(t *testing.T) {
	as := discoAS(t)
	as.SetJWKSFault(introspecttest.Respond(http.StatusInternalServerError, "text/plain", "down"))
	v := newJWTValidator(t, as)
	_, err := v.Validate(context.Background(), as.IssueJWT(jwtClaims()))
	require.ErrorIs(t, err, introspect.ErrDiscovery)
	assert.Equal(t, http.StatusServiceUnavailable, introspect.StatusCode(err))
	assert.NotErrorIs(t, err, introspect.ErrInvalidJWT)

	as.SetJWKSFault(introspecttest.Fault{})
}

func TestJWTValidatorOptions(t *testing.T) {
	as := discoAS(t)
	iss := introspect.WithIssuer(as.Issuer)
	aud := introspect.WithJWTAudience(jwtResource)
	for _, tc := range []struct {
		name string
		opts []introspect.Option
		want string
	}{
		{"no audience", []introspect.Option{iss}, "WithJWTAudience"},
		{"no issuer", []introspect.Option{aud}, "WithIssuer"},
		{"HS256", []introspect.Option{iss, aud, introspect.WithJWTAlgorithms("HS256")}, "never accepted"},
		{"none", []introspect.Option{iss, aud, introspect.WithJWTAlgorithms("none")}, "never accepted"},
		{"unknown alg", []introspect.Option{iss, aud, introspect.WithJWTAlgorithms("RS1")}, "unknown algorithm"},
		{"no alg", []introspect.Option{iss, aud, introspect.WithJWTAlgorithms()}, "no algorithm"},
		{"size", []introspect.Option{iss, aud, introspect.WithMaxJWTSize(0)}, "not between 1 and MaxJWTSize"},
		{"size over MaxJWTSize", []introspect.Option{iss, aud, introspect.WithMaxJWTSize(introspect.MaxJWTSize + 1)}, "not between 1 and MaxJWTSize (65536)"},
		{"endpoint", []introspect.Option{iss, aud, introspect.WithEndpoint(as.IntrospectionURL())}, "never introspects"},
		{"credentials", []introspect.Option{iss, aud, introspect.WithClientCredentials("a", "b")}, "never introspects"},
		{"middleware option", []introspect.Option{iss, aud, introspect.WithRealm("x")}, "applies to the middleware"},
		{"mode", []introspect.Option{iss, aud, introspect.WithValidation(introspect.ValidateHybrid)}, "applies to the middleware"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := introspect.NewJWTValidator(tc.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The JWT options without a mode that validates JWTs.
	_, err := introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("a", "b"), introspect.WithJWTAudience(jwtResource))
	require.ErrorContains(t, err, "WithJWTAudience needs WithValidation")

	// An algorithm list narrows what is accepted.
	v := newJWTValidator(t, as, introspect.WithJWTAlgorithms("RS256"))
	_, err = v.Validate(context.Background(), as.IssueJWT(jwtClaims()))
	require.ErrorIs(t, err, introspect.ErrInvalidJWT)
	// A size limit bounds the token.
	v = newJWTValidator(t, as, introspect.WithMaxJWTSize(64))
	_, err = v.Validate(context.Background(), as.IssueJWT(jwtClaims()))
	require.ErrorIs(t, err, introspect.ErrInvalidJWT)
	// The client allow-list applies.
	v = newJWTValidator(t, as, introspect.WithAllowedClientIDs("other"))
	_, err = v.Validate(context.Background(), as.IssueJWT(jwtClaims()))
	require.ErrorIs(t, err, introspect.ErrClientNotAllowed)
	// The leeway applies.
	v = newJWTValidator(t, as, introspect.WithLeeway(2*time.Minute))
	c := jwtClaims()
	c.Expiry = time.Now().Add(-time.Minute)
	_, err = v.Validate(context.Background(), as.IssueJWT(c))
	require.NoError(t, err)
}

func TestValidationModeNames(t *testing.T) {
	for _, m := range []introspect.ValidationMode{introspect.ValidateIntrospect, introspect.ValidateJWT,
		introspect.ValidateHybrid, introspect.ValidateJWTAndIntrospect} {
		got, err := introspect.ParseValidationMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := introspect.ParseValidationMode("jwt+introspection")
	require.Error(t, err)
	assert.Equal(t, "ValidationMode(9)", introspect.ValidationMode(9).String())
	assert.Equal(t, "jwt+introspection", introspect.VerdictJWTIntrospected.String())
	assert.Equal(t, "introspection", introspect.VerdictSource(0).String())
}

// A key whose JWK names EdDSA verifies EdDSA tokens only, not tokens of the
// fully-specified Ed25519 (RFC 9864), and the other way round: the JWK's
// alg binds the key.
func TestJWTValidatorEdDSANames(t *testing.T) {
	for _, keyAlg := range []string{"EdDSA", "Ed25519"} {
		as := discoAS(t, introspecttest.WithSigningKey(newEdKey(t), keyAlg))
		v := newJWTValidator(t, as)
		other := map[string]string{"EdDSA": "Ed25519", "Ed25519": "EdDSA"}[keyAlg]
		tok := as.IssueJWTFunc(jwtClaims(), func(h, _ map[string]any) { h["alg"] = other })
		_, err := v.Validate(context.Background(), tok)
		var jerr *introspect.JWTError
		require.ErrorAs(t, err, &jerr, keyAlg)
		assert.Equal(t, "no key of the issuer matches its kid", jerr.Reason, keyAlg)
		_, err = v.Validate(context.Background(), as.IssueJWT(jwtClaims()))
		require.NoError(t, err, keyAlg)
	}
}
