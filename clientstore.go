package introspect

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// Credentials authenticate the resource server to the authorization server's
// introspection endpoint.
//
// The secret never leaves the value through fmt, log/slog or encoding/json:
// every fmt verb and LogValue print the client ID and the method only, and
// the secret members are left out of JSON.
type Credentials struct {
	ClientID     string
	ClientSecret string `json:"-"`
	// SecretFunc, when set, supplies the secret instead of ClientSecret. It is
	// called only when the authorization server must be asked (on cache
	// misses), with that call's context, so a rotated secret can be read from a
	// file or a vault without restarting. It must be safe for concurrent use.
	SecretFunc func(ctx context.Context) (string, error) `json:"-"`
	// AuthMethod is how the credentials are sent. Empty means chosen by the
	// order documented on [AuthMethod]: ClientSecretBasic for a secret.
	AuthMethod AuthMethod
	// RawBasicAuth sends the client ID and secret of [ClientSecretBasic] as
	// they are, without RFC 6749 §2.3.1 form-encoding: see [WithRawBasicAuth].
	RawBasicAuth bool

	// PrivateKey signs [PrivateKeyJWT] client assertions: an *rsa.PrivateKey
	// (2048 bits or more), an *ecdsa.PrivateKey or an ed25519.PrivateKey
	// ([ParsePrivateKey] reads one from PEM or JWK). With a private key and no
	// AuthMethod, PrivateKeyJWT is used.
	PrivateKey crypto.Signer `json:"-"`
	// KeyID is the "kid" header of client assertions, if not empty.
	KeyID string
	// SigningAlg is the "alg" of client assertions; see
	// [WithAssertionSigningAlg] for the choices and defaults.
	SigningAlg string
	// AssertionAudience is the "aud" of client assertions. Empty means the
	// issuer with discovery ([WithIssuer]), else the introspection endpoint.
	AssertionAudience string
	// AccessTokenFunc supplies the access token sent with [BearerToken]. With
	// it and no AuthMethod, BearerToken is used. It must be safe for
	// concurrent use.
	AccessTokenFunc func(ctx context.Context) (string, error) `json:"-"`
}

// String describes the credentials without the secret.
func (c Credentials) String() string {
	m := c.AuthMethod
	if m == "" {
		m = "auth method chosen automatically"
	}
	return "client " + c.ClientID + " (" + string(m) + ", secrets redacted)"
}

// GoString is String, so %#v does not reveal the secret.
func (c Credentials) GoString() string { return c.String() }

// Format prints String for every verb, so no verb (%d, %x, %+v, ...) walks
// the fields and reveals the secret.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue implements [slog.LogValuer] without the secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", c.ClientID), slog.String("auth_method", string(c.AuthMethod)))
}

func (c Credentials) secret(ctx context.Context) (string, error) {
	if c.SecretFunc != nil {
		return c.SecretFunc(ctx)
	}
	return c.ClientSecret, nil
}

// ClientContext is the authorization server and the client to use for one
// request: the introspection endpoint and the credentials to present there.
// Cache entries are scoped by the endpoint and Credentials.ClientID, so two
// tenants share none unless they ask the same endpoint as the same client
// (and would be told the same).
//
// A context may name the authorization server by Issuer instead of (or as
// well as) Endpoint, one issuer per tenant say: the issuer's metadata (RFC
// 8414) is discovered on the first request that names it, then kept and
// refreshed in the background, each issuer on its own, with its own backoff
// while it fails (at most [WithMaxIssuers] of them, the least recently used
// dropped). It supplies the introspection endpoint when Endpoint is empty
// (its mTLS alias for a TLS method), the authentication method when
// Credentials.AuthMethod is empty, the audience of client assertions, the
// keys and algorithms of signed answers ([WithJWTResponse]) and of the
// issuer's JWT access tokens (local validation accepts them on the requests
// of this context: a request accepts the JWTs of its context's issuer and
// of [WithJWTIssuers] only), and its userinfo endpoint ([WithUserinfo]). A
// metadata document naming another issuer is refused (RFC 8414 §3.3), and
// an introspection answer naming an "iss" other than Issuer is refused
// ([ErrIssuerMismatch]). Until the issuer's first discovery succeeds, its
// requests answer 503 (and [Middleware.EvictAs] fails), and nothing is
// cached for it.
//
// With [WithIssuer], a context naming neither Endpoint nor Issuer is that
// issuer's. A context naming an Endpoint alone uses no discovery: its
// answers are not checked against an issuer, and with [WithUserinfo] its
// tokens get userinfo only from [WithUserinfoEndpoint].
//
// Issuer must be an issuer the application trusts, taken from its own
// configuration: never build it from request input (a header, a host), or a
// client could choose the server that vouches for its token.
type ClientContext struct {
	Endpoint    string // the introspection endpoint URL
	Issuer      string // the authorization server's issuer identifier, found by discovery
	Credentials Credentials
}

// ClientStore chooses the client context for each request, for example one
// authorization server and client per tenant taken from the path or the host.
// It is called on every request, cached or not, so it must be fast and must
// not call the network on the hot path; it must be safe for concurrent use.
//
// An error from ClientContext denies the request. Its status follows
// [StatusCode]: wrap [ErrInvalidRequest] for a 400 (an unknown tenant, say),
// anything unclassified is a 503.
type ClientStore interface {
	ClientContext(r *http.Request) (ClientContext, error)
}

// ClientStoreFunc adapts a function to [ClientStore].
type ClientStoreFunc func(r *http.Request) (ClientContext, error)

// ClientContext calls f(r).
func (f ClientStoreFunc) ClientContext(r *http.Request) (ClientContext, error) { return f(r) }

// StaticClientStore is a [ClientStore] that always returns the same context.
type StaticClientStore ClientContext

var (
	_ ClientStore = StaticClientStore{}
	_ ClientStore = ClientStoreFunc(nil)
)

// ClientContext returns s.
func (s StaticClientStore) ClientContext(*http.Request) (ClientContext, error) {
	return ClientContext(s), nil
}
