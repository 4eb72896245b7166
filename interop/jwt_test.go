package interop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/introspect-go/introspect"
)

// The resources of the provider whose tokens are RFC 9068 JWT access tokens
// (features.resourceIndicators, accessTokenFormat jwt).
const (
	resourceRS256 = "https://api.interop.example/rs256"
	resourceES256 = "https://api.interop.example/es256"
)

// issueJWT obtains a client_credentials token of clientID for resource: a
// JWT access token. header adds request headers (a DPoP proof).
func (o *op) issueJWT(t *testing.T, clientID, resource string, header http.Header) (token, tokenType string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}, "resource": {resource}}
	req, err := http.NewRequest(http.MethodPost, o.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(appSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr tokenResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tr) != nil || strings.Count(tr.AccessToken, ".") != 2 {
		t.Fatalf("JWT token request: status %d: %s", resp.StatusCode, b)
	}
	return tr.AccessToken, tr.TokenType
}

// jwksCounter counts the requests for the provider's JWKS.
type jwksCounter struct{ n atomic.Int64 }

func (c *jwksCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (o *op) jwtValidator(t *testing.T, resource string, opts ...introspect.Option) *introspect.JWTValidator {
	t.Helper()
	v, err := introspect.NewJWTValidator(append([]introspect.Option{
		introspect.WithIssuer(o.issuer), introspect.WithJWTAudience(resource),
		introspect.WithEagerDiscovery(), introspect.WithTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("NewJWTValidator: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// The provider's JWT access tokens, RS256 and ES256, validate locally with
// the claims introspection gives.
func TestJWTAccessTokens(t *testing.T) {
	o := provider(t)
	for _, resource := range []string{resourceRS256, resourceES256} {
		t.Run(resource, func(t *testing.T) {
			v := o.jwtValidator(t, resource)
			tok, _ := o.issueJWT(t, appID, resource, nil)
			ti, err := v.Validate(context.Background(), tok)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !ti.Active || ti.Source != introspect.VerdictJWT || ti.ClientID != appID || !ti.HasScope("api") ||
				ti.Issuer != o.issuer || !ti.HasAudience(resource) || ti.Expiry.IsZero() || ti.JWTID == "" {
				t.Errorf("claims: %+v", ti)
			}
			// The provider does not introspect its structured JWT access
			// tokens (400 unsupported_token_type): no verdict, 503.
			c := o.client(t, introspect.WithClientCredentials("rs-basic", reservedSecret))
			_, err = c.Introspect(context.Background(), tok)
			var re *introspect.ResponseError
			if !errors.As(err, &re) || re.ErrorCode != "unsupported_token_type" || introspect.StatusCode(err) != http.StatusServiceUnavailable {
				t.Errorf("introspection of a JWT access token: %v", err)
			}
		})
	}
}

// Every validation mode of the middleware against the provider: JWTs served
// locally (jwt, hybrid), opaque tokens introspected (hybrid). The provider
// neither introspects nor revokes its structured JWT access tokens (400
// unsupported_token_type), so jwt+introspect gets no verdict for them: 503,
// fail closed; a token that is no JWT is refused locally first.
func TestJWTModes(t *testing.T) {
	o := provider(t)
	ctx := context.Background()
	cache, err := introspect.NewLRUCache(100)
	if err != nil {
		t.Fatal(err)
	}
	jwtOnly, err := introspect.New(introspect.WithIssuer(o.issuer), introspect.WithValidation(introspect.ValidateJWT),
		introspect.WithJWTAudience(resourceES256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jwtOnly.Close() })
	hybrid := o.middleware(t, introspect.WithValidation(introspect.ValidateHybrid), introspect.WithJWTAudience(resourceES256))
	both := o.middleware(t, introspect.WithValidation(introspect.ValidateJWTAndIntrospect),
		introspect.WithJWTAudience(resourceES256), introspect.WithCache(cache))

	tok, _ := o.issueJWT(t, appID, resourceES256, nil)
	opaque := o.issue(t, appID)
	for _, tc := range []struct {
		name   string
		mw     *introspect.Middleware
		tok    string
		source introspect.VerdictSource
		err    error
	}{
		{"jwt: JWT", jwtOnly, tok, introspect.VerdictJWT, nil},
		{"jwt: opaque", jwtOnly, opaque, 0, introspect.ErrInvalidJWT},
		{"hybrid: JWT", hybrid, tok, introspect.VerdictJWT, nil},
		{"hybrid: opaque", hybrid, opaque, introspect.VerdictIntrospection, nil},
		{"jwt+introspect: JWT", both, tok, 0, introspect.ErrUnavailable},
		{"jwt+introspect: opaque", both, opaque, 0, introspect.ErrInvalidJWT},
	} {
		ti, err := tc.mw.Verify(ctx, tc.tok)
		switch {
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		case tc.err == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == nil && ti.Source != tc.source:
			t.Errorf("%s: source %v, want %v", tc.name, ti.Source, tc.source)
		}
	}
	// A token that is not the resource's is refused locally, before any call.
	other, _ := o.issueJWT(t, appID, resourceRS256, nil)
	if _, err := both.Verify(ctx, other); !errors.Is(err, introspect.ErrAudienceMismatch) {
		t.Errorf("jwt+introspect, another audience: err = %v", err)
	}
}

// A provider's JWT refused locally: another audience, expired, a forged
// signature with an unknown key (one JWKS refresh), algorithm confusion, no
// typ.
func TestJWTRefusals(t *testing.T) {
	o := provider(t)
	ctx := context.Background()
	counter := &jwksCounter{}
	v := o.jwtValidator(t, resourceRS256, introspect.WithLeeway(0), introspect.WithHTTPClient(&http.Client{Transport: counter}))
	good, _ := o.issueJWT(t, appID, resourceRS256, nil)
	if _, err := v.Validate(ctx, good); err != nil {
		t.Fatalf("good token: %v", err)
	}
	parts := strings.Split(good, ".")
	var header map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	if header["typ"] != "at+jwt" {
		t.Fatalf("the provider's typ is %v", header["typ"])
	}
	withHeader := func(edit func(map[string]any)) string {
		h := map[string]any{}
		for k, v := range header {
			h[k] = v
		}
		edit(h)
		b, _ := json.Marshal(h)
		return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + parts[2]
	}
	expect := func(name, tok, reason string, target error) {
		t.Helper()
		_, err := v.Validate(ctx, tok)
		var je *introspect.JWTError
		if !errors.As(err, &je) || introspect.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want a JWTError (401)", name, err)
			return
		}
		if reason != "" && je.Reason != reason {
			t.Errorf("%s: reason %q, want %q", name, je.Reason, reason)
		}
		if target != nil && !errors.Is(err, target) {
			t.Errorf("%s: err = %v, want %v", name, err, target)
		}
	}

	other, _ := o.issueJWT(t, appID, resourceES256, nil)
	expect("another audience", other, "", introspect.ErrAudienceMismatch)

	short, _ := o.issueJWT(t, shortID, resourceRS256, nil)
	time.Sleep(3 * time.Second) // its lifetime is 2 s
	expect("expired", short, "", introspect.ErrTokenExpired)

	expect("no typ", withHeader(func(h map[string]any) { delete(h, "typ") }), "header typ is not at+jwt", nil)
	expect("typ JWT", withHeader(func(h map[string]any) { h["typ"] = "JWT" }), "header typ is not at+jwt", nil)

	// Algorithm confusion: HS256 keyed with the provider's RSA public key.
	pubPEM := o.publicKeyPEM(t, header["kid"].(string))
	confused := func(alg string) string {
		h := map[string]any{"alg": alg, "typ": "at+jwt", "kid": header["kid"]}
		b, _ := json.Marshal(h)
		input := base64.RawURLEncoding.EncodeToString(b) + "." + parts[1]
		mac := hmac.New(sha256.New, pubPEM)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	expect("alg confusion", confused("HS256"), "algorithm not allowed", nil)
	expect("alg none", withHeader(func(h map[string]any) { h["alg"] = "none" }), "algorithm not allowed", nil)

	// An unknown kid: one refresh of the keys, then no more for a flood.
	before := counter.n.Load()
	for i := range 50 {
		expect("unknown kid", withHeader(func(h map[string]any) { h["kid"] = "unknown-" + string(rune('a'+i%26)) }),
			"no key of the issuer matches its kid", nil)
	}
	if n := counter.n.Load() - before; n > 1 {
		t.Errorf("%d JWKS fetches for a flood of unknown kids, want at most 1", n)
	}
	expect("tampered signature", parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-4]+"AAAA", "bad signature", nil)
}

// publicKeyPEM is the PEM of the provider's public key kid.
func (o *op) publicKeyPEM(t *testing.T, kid string) []byte {
	t.Helper()
	resp, err := http.Get(o.issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := set.LookupKeyID(kid)
	if !ok {
		t.Fatalf("no key %s", kid)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// A DPoP-bound JWT of the provider (cnf.jkt) validated locally still needs
// a proof of its key.
func TestDPoPBoundJWT(t *testing.T) {
	o := provider(t)
	mw, err := introspect.New(introspect.WithIssuer(o.issuer), introspect.WithValidation(introspect.ValidateJWT),
		introspect.WithJWTAudience(resourceES256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	srv := api(t, mw)
	key := newDPoPKey(t)
	tok, typ := o.issueJWT(t, appID, resourceES256, http.Header{"Dpop": {key.Proof(http.MethodPost, o.issuer+"/token", "")}})
	if typ != "DPoP" {
		t.Fatalf("token type %q, want DPoP", typ)
	}
	u := srv.URL + "/orders"
	if a := call(t, http.DefaultClient, http.MethodGet, u, "DPoP "+tok, http.Header{"Dpop": {key.Proof(http.MethodGet, u, tok)}}); a.status != 200 || a.body != appID {
		t.Errorf("with its proof: %d %s", a.status, a.body)
	}
	if a := call(t, http.DefaultClient, http.MethodGet, u, "DPoP "+tok, nil); a.status != 401 {
		t.Errorf("without a proof: %d", a.status)
	}
	if a := call(t, http.DefaultClient, http.MethodGet, u, "Bearer "+tok, nil); a.status != 401 {
		t.Errorf("as a bearer token: %d", a.status)
	}
}
