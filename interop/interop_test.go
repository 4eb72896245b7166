package interop

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
)

// client builds a discovery client of the provider with opts.
func (o *op) client(t *testing.T, opts ...introspect.Option) *introspect.Client {
	t.Helper()
	c, err := introspect.NewClient(append([]introspect.Option{
		introspect.WithIssuer(o.issuer),
		introspect.WithEagerDiscovery(),
		introspect.WithTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDiscovery(t *testing.T) {
	o := provider(t)
	c := o.client(t, introspect.WithClientCredentials("rs-basic", reservedSecret))
	md, ok := c.Metadata()
	if !ok {
		t.Fatal("no metadata after eager discovery")
	}
	if md.Issuer != o.issuer {
		t.Errorf("issuer %q, want %q", md.Issuer, o.issuer)
	}
	if md.IntrospectionEndpoint != o.issuer+"/token/introspection" {
		t.Errorf("introspection endpoint %q", md.IntrospectionEndpoint)
	}
	if md.JWKSURI == "" || len(md.IntrospectionSigningAlgValuesSupported) == 0 {
		t.Errorf("jwks_uri %q, signing algs %v", md.JWKSURI, md.IntrospectionSigningAlgValuesSupported)
	}

	_, err := introspect.NewClient(introspect.WithIssuer(o.issuer+"/other"), introspect.WithEagerDiscovery(),
		introspect.WithClientCredentials("rs-basic", reservedSecret))
	if !errors.Is(err, introspect.ErrDiscovery) {
		t.Errorf("wrong issuer: err = %v, want ErrDiscovery", err)
	}
}

// Each client authentication method against the provider, with the verdicts
// for active, revoked, expired and never-issued tokens.
func TestClientAuthentication(t *testing.T) {
	o := provider(t)
	tests := []struct {
		name string
		opts []introspect.Option
	}{
		{"client_secret_basic, reserved characters, method from metadata", []introspect.Option{
			introspect.WithClientCredentials("rs-basic", reservedSecret)}},
		{"client_secret_post, reserved characters", []introspect.Option{
			introspect.WithClientCredentials("rs-post", reservedSecret), introspect.WithAuthMethod(introspect.ClientSecretPost)}},
		{"client_secret_jwt HS256", []introspect.Option{
			introspect.WithClientCredentials("rs-jwt", jwtSecret), introspect.WithAuthMethod(introspect.ClientSecretJWT)}},
		{"client_secret_jwt HS512", []introspect.Option{
			introspect.WithClientCredentials("rs-jwt-hs512", jwtSecret), introspect.WithAuthMethod(introspect.ClientSecretJWT),
			introspect.WithAssertionSigningAlg("HS512")}},
		{"private_key_jwt RS256, method from metadata", []introspect.Option{
			introspect.WithPrivateKey("rs-pk-rsa", o.rsaKey, "rs-rsa")}},
		{"private_key_jwt PS256", []introspect.Option{
			introspect.WithPrivateKey("rs-pk-ps", o.rsaKey, "rs-rsa"), introspect.WithAssertionSigningAlg("PS256")}},
		{"private_key_jwt ES256", []introspect.Option{
			introspect.WithPrivateKey("rs-pk-ec", o.ecKey, "rs-ec")}},
		{"private_key_jwt with the endpoint as audience", []introspect.Option{
			introspect.WithPrivateKey("rs-pk-ec", o.ecKey, "rs-ec"), introspect.WithAssertionAudience(o.issuer + "/token/introspection")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdicts(t, o, o.client(t, tt.opts...))
		})
	}
}

// RFC 9701 signed answers, RS256 and ES256.
func TestSignedResponses(t *testing.T) {
	o := provider(t)
	tests := []struct {
		name string
		opts []introspect.Option
	}{
		{"RS256, client_secret_basic", []introspect.Option{introspect.WithClientCredentials("rs-signed-rs256", reservedSecret)}},
		{"ES256, private_key_jwt", []introspect.Option{introspect.WithPrivateKey("rs-signed-es256", o.ecKey, "rs-ec")}},
		{"RS256, algorithms configured", []introspect.Option{introspect.WithClientCredentials("rs-signed-rs256", reservedSecret),
			introspect.WithJWTResponseAlgorithms("PS256", "RS256")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &contentTypes{}
			opts := append(tt.opts, introspect.WithJWTResponse(), introspect.WithHTTPClient(&http.Client{Transport: ct}))
			checkVerdicts(t, o, o.client(t, opts...))
			ct.mu.Lock()
			defer ct.mu.Unlock()
			if len(ct.seen) == 0 {
				t.Fatal("no introspection answer seen")
			}
			for _, v := range ct.seen {
				if !strings.HasPrefix(v, "application/token-introspection+jwt") {
					t.Errorf("answer content type %q, want a signed answer", v)
				}
			}
		})
	}
}

// WithJWTResponseAlgorithms replaces the provider's list: an RS256 answer is
// refused when only ES256 is configured, though the provider lists RS256.
func TestSignedResponseAlgorithmNotConfigured(t *testing.T) {
	o := provider(t)
	c := o.client(t, introspect.WithClientCredentials("rs-signed-rs256", reservedSecret),
		introspect.WithJWTResponse(), introspect.WithJWTResponseAlgorithms("ES256"))
	md, _ := c.Metadata()
	if !slices.Contains(md.IntrospectionSigningAlgValuesSupported, "RS256") {
		t.Fatalf("the provider does not list RS256: %v", md.IntrospectionSigningAlgValuesSupported)
	}
	_, err := c.Introspect(context.Background(), o.issue(t, appID))
	if !errors.Is(err, introspect.ErrUnavailable) || !strings.Contains(err.Error(), "algorithm not allowed") {
		t.Fatalf("err = %v, want the algorithm refused", err)
	}
}

// contentTypes records the content types of the provider's answers.
type contentTypes struct {
	mu   sync.Mutex
	seen []string
}

func (ct *contentTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/introspection") {
		ct.mu.Lock()
		ct.seen = append(ct.seen, resp.Header.Get("Content-Type"))
		ct.mu.Unlock()
	}
	return resp, err
}

// Wrong credentials are the server refusing us: 503, never a token verdict.
func TestWrongCredentials(t *testing.T) {
	o := provider(t)
	c := o.client(t, introspect.WithClientCredentials("rs-basic", "not-the-secret"))
	_, err := c.Introspect(context.Background(), o.issue(t, appID))
	var re *introspect.ResponseError
	if !errors.As(err, &re) || introspect.StatusCode(err) != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a ResponseError (503)", err)
	}
	if re.ErrorCode != "invalid_client" {
		t.Errorf("error code %q, want invalid_client", re.ErrorCode)
	}
}

func checkVerdicts(t *testing.T, o *op, c *introspect.Client) {
	t.Helper()
	ctx := context.Background()

	active := o.issue(t, appID)
	ti, err := c.Introspect(ctx, active)
	if err != nil {
		t.Fatalf("active token: %v", err)
	}
	if !ti.Active || ti.ClientID != appID || !ti.HasScope("api") || ti.Issuer != o.issuer || ti.Expiry.IsZero() {
		t.Errorf("active token: got %+v", ti)
	}

	revoked := o.issue(t, appID)
	o.revoke(t, revoked)
	expectInactive(t, c, revoked, "revoked")
	expectInactive(t, c, "never-issued-"+active[:8], "never issued")

	expired := o.issue(t, shortID)
	time.Sleep(3 * time.Second) // its lifetime is 2 s
	expectInactive(t, c, expired, "expired")
}

func expectInactive(t *testing.T, c *introspect.Client, token, what string) {
	t.Helper()
	ti, err := c.Introspect(context.Background(), token)
	if !errors.Is(err, introspect.ErrInactiveToken) || introspect.StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("%s token: err = %v, want ErrInactiveToken (401)", what, err)
	}
	if ti != nil && ti.Active {
		t.Errorf("%s token: active", what)
	}
}
