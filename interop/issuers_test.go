package interop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/introspect-go/introspect"
)

// another starts one more provider for t, with the clients of o, on port (0:
// any) signing with jwks (nil: keys of its own). stop ends it before t does.
func (o *op) another(t *testing.T, port int, jwks []map[string]any) (p *op, stop func()) {
	t.Helper()
	var logs strings.Builder
	iss, _, stopNode, err := launch(o.config(port, jwks), &logs)
	if err != nil {
		t.Fatalf("starting another provider: %v\n%s", err, logs.String())
	}
	stop = sync.OnceFunc(stopNode)
	t.Cleanup(stop)
	return &op{issuer: iss, rsaKey: o.rsaKey, ecKey: o.ecKey}, stop
}

// privateJWK is k as a private JWK with kid and alg, for the provider's
// keystore.
func privateJWK(t *testing.T, k crypto.Signer, kid, alg string) map[string]any {
	t.Helper()
	jk, err := jwk.Import(k)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := jk.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(jk)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// signingKeys is a new RS256 and ES256 key pair of the provider's, with
// kids ending in gen.
func signingKeys(t *testing.T, gen string) []map[string]any {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []map[string]any{privateJWK(t, rk, "rsa-"+gen, "RS256"), privateJWK(t, ek, "ec-"+gen, "ES256")}
}

// serve sends a GET for path with the bearer token through mw to a handler
// that answers the verdict's source and issuer.
func serve(mw *introspect.Middleware, path, token string) (int, string) {
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		_, _ = w.Write([]byte(ti.Source.String() + " " + ti.Issuer))
	}))
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func newMiddleware(t *testing.T, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(append([]introspect.Option{introspect.WithTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("introspect.New: %v", err)
	}
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

func lruCache(t *testing.T) introspect.Option {
	t.Helper()
	c, err := introspect.NewLRUCache(100)
	if err != nil {
		t.Fatal(err)
	}
	return introspect.WithCache(c)
}

// Two providers in one middleware: each one's RFC 9068 JWT access tokens
// validate locally against its own keys; opaque tokens go to the provider
// of WithIssuer, which knows its own only.
func TestTwoIssuers(t *testing.T) {
	a := provider(t)
	b, _ := a.another(t, 0, nil)
	mw := newMiddleware(t,
		introspect.WithIssuer(a.issuer), introspect.WithJWTIssuers(b.issuer),
		introspect.WithValidation(introspect.ValidateHybrid), introspect.WithJWTAudience(resourceRS256),
		introspect.WithClientCredentials("rs-basic", reservedSecret), introspect.WithEagerDiscovery(), lruCache(t))

	for _, o := range []*op{a, b} {
		tok, _ := o.issueJWT(t, appID, resourceRS256, nil)
		if status, body := serve(mw, "/api", tok); status != http.StatusOK || body != "jwt "+o.issuer {
			t.Errorf("JWT of %s: %d %q, want 200 from local validation", o.issuer, status, body)
		}
	}
	if status, body := serve(mw, "/api", a.issue(t, appID)); status != http.StatusOK || body != "introspection "+a.issuer {
		t.Errorf("opaque token of a: %d %q, want 200 from a's introspection", status, body)
	}
	if status, _ := serve(mw, "/api", b.issue(t, appID)); status != http.StatusUnauthorized {
		t.Errorf("opaque token of b: %d, want 401 (a does not know it)", status)
	}
	// b's JWT with its iss changed to a's: routed to a's keys, refused.
	tok, _ := b.issueJWT(t, appID, resourceRS256, nil)
	parts := strings.Split(tok, ".")
	parts[1] = reencodeClaims(t, parts[1], func(c map[string]any) { c["iss"] = a.issuer })
	if status, _ := serve(mw, "/api", strings.Join(parts, ".")); status != http.StatusUnauthorized {
		t.Errorf("b's JWT claiming a: %d, want 401", status)
	}
}

// Two tenants, each a ClientContext naming its own provider by issuer:
// each one's metadata is discovered on its own, its answers are signed
// (RFC 9701) and verified with its own keys; a token of one tenant is
// refused on the other's routes, a revoked one on its own.
func TestTwoTenants(t *testing.T) {
	a := provider(t)
	b, _ := a.another(t, 0, nil)
	ct := &contentTypes{}
	store := introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		iss := map[string]string{"/a": a.issuer, "/b": b.issuer}[r.URL.Path]
		if iss == "" {
			return introspect.ClientContext{}, introspect.ErrInvalidRequest
		}
		return introspect.ClientContext{Issuer: iss,
			Credentials: introspect.Credentials{ClientID: "rs-signed-rs256", ClientSecret: reservedSecret}}, nil
	})
	mw := newMiddleware(t, introspect.WithClientStore(store), introspect.WithJWTResponse(),
		introspect.WithHTTPClient(&http.Client{Transport: ct}))

	tokA, tokB := a.issue(t, appID), b.issue(t, appID)
	for _, c := range []struct{ path, tok, iss string }{{"/a", tokA, a.issuer}, {"/b", tokB, b.issuer}} {
		if status, body := serve(mw, c.path, c.tok); status != http.StatusOK || body != "introspection "+c.iss {
			t.Errorf("%s: %d %q, want 200 from %s", c.path, status, body, c.iss)
		}
	}
	if status, _ := serve(mw, "/b", tokA); status != http.StatusUnauthorized {
		t.Errorf("a's token on b: %d, want 401", status)
	}
	b.revoke(t, tokB)
	if status, _ := serve(mw, "/b", tokB); status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", status)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if len(ct.seen) != 4 {
		t.Errorf("%d introspection answers, want 4", len(ct.seen))
	}
	for _, v := range ct.seen {
		if !strings.HasPrefix(v, "application/token-introspection+jwt") {
			t.Errorf("answer content type %q, want a signed answer", v)
		}
	}
}

// A key rotation: the provider restarts with a new key first (it signs)
// and the old one after it. A token of the new kid is validated after one
// refresh of the keys; one of the old kid still is.
func TestJWTKeyRotation(t *testing.T) {
	a := provider(t)
	gen1 := signingKeys(t, "gen1")
	c, stop := a.another(t, 0, gen1)
	u, err := url.Parse(c.issuer)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())

	var skew atomic.Int64 // the clock runs ahead by this, past the refresh limit
	jc := &jwksCounter{}
	v := c.jwtValidator(t, resourceRS256, introspect.WithHTTPClient(&http.Client{Transport: jc}),
		introspect.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	old, _ := c.issueJWT(t, appID, resourceRS256, nil)
	if _, err := v.Validate(context.Background(), old); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}

	stop()
	c2, _ := a.another(t, port, append(signingKeys(t, "gen2"), gen1...))
	if c2.issuer != c.issuer {
		t.Fatalf("restarted as %s, want %s", c2.issuer, c.issuer)
	}
	fresh, _ := c2.issueJWT(t, appID, resourceRS256, nil)
	if kid := headerKid(t, fresh); kid != "rsa-gen2" {
		t.Fatalf("the restarted provider signs with %q, want rsa-gen2", kid)
	}
	before := jc.n.Load()
	skew.Store(int64(31 * time.Second))
	ti, err := v.Validate(context.Background(), fresh)
	if err != nil || ti.Issuer != c.issuer {
		t.Fatalf("token of the new key: %v", err)
	}
	if n := jc.n.Load() - before; n != 1 {
		t.Errorf("%d fetches of the keys for the new kid, want 1", n)
	}
	if _, err := v.Validate(context.Background(), old); err != nil {
		t.Errorf("token of the old key, still published: %v", err)
	}
}

// Userinfo for a user's token (scopes openid and profile): the claims of
// the provider's userinfo_endpoint reach the handler, plain and signed
// (RS256, aud the token's client).
func TestUserinfoOfAUser(t *testing.T) {
	o := provider(t)
	for _, tc := range []struct{ client, contentType string }{
		{userAppID, "application/json"}, {signedUserAppID, "application/jwt"},
	} {
		client := tc.client
		t.Run(client, func(t *testing.T) {
			rec := &userinfoTypes{}
			mw := o.middleware(t, introspect.WithUserinfo(), introspect.WithEagerDiscovery(), lruCache(t),
				introspect.WithHTTPClient(&http.Client{Transport: rec}))
			tok := o.issueUser(t, client, "alice")
			ti, err := mw.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var name string
			if ok, err := ti.UserinfoClaim("name", &name); !ok || err != nil || name != "User alice" {
				t.Errorf("userinfo name %q (%v, %v), want User alice", name, ok, err)
			}
			if ti.Subject != "alice" {
				t.Errorf("subject %q", ti.Subject)
			}
			if _, err := mw.Verify(context.Background(), tok); err != nil {
				t.Errorf("second Verify, from the cache: %v", err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.seen) != 1 || !strings.HasPrefix(rec.seen[0], tc.contentType) {
				t.Errorf("userinfo answers %q, want one %s", rec.seen, tc.contentType)
			}
		})
	}
}

// userinfoTypes records the content types of the provider's userinfo
// answers.
type userinfoTypes struct {
	mu   sync.Mutex
	seen []string
}

func (u *userinfoTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.URL.Path == "/me" {
		u.mu.Lock()
		u.seen = append(u.seen, resp.Header.Get("Content-Type"))
		u.mu.Unlock()
	}
	return resp, err
}

// issueUser obtains a token of user with the provider's user grant.
func (o *op) issueUser(t *testing.T, clientID, user string) string {
	t.Helper()
	var body struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	defer func() {
		if t.Failed() {
			t.Log(logs())
		}
	}()
	o.post(t, "/token", clientID, url.Values{"grant_type": {userGrant}, "username": {user}}, &body)
	if body.AccessToken == "" || !strings.Contains(body.Scope, "openid") {
		t.Fatalf("user token: %+v\n%s", body, logs())
	}
	return body.AccessToken
}

// headerKid is the kid of a JWT's header.
func headerKid(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(decodeSegment(t, strings.Split(tok, ".")[0]), &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// decodeSegment decodes a base64url segment of a JWT.
func decodeSegment(t *testing.T, seg string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reencodeClaims is the claims segment seg with edit applied (the
// signature no longer matches).
func reencodeClaims(t *testing.T, seg string, edit func(map[string]any)) string {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(decodeSegment(t, seg), &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
