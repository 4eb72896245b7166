package introspect

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// AuthMethod names a client authentication method as registered for OAuth
// (RFC 7591 §2, RFC 8414 token_endpoint_auth_methods_supported).
//
// When credentials come without a method ([WithAuthMethod] or
// [Credentials.AuthMethod]), the first method of this order that the
// credentials can perform and that the authorization server lists is used:
//
//	private_key_jwt, tls_client_auth, self_signed_tls_client_auth,
//	client_secret_basic, client_secret_post, client_secret_jwt, none
//
// The server's list is introspection_endpoint_auth_methods_supported, else
// token_endpoint_auth_methods_supported, else client_secret_basic alone (RFC
// 8414 §2); without discovery, the credentials alone decide. A private key
// and a client certificate come first: they prove possession without sending
// a secret. Among the secret methods client_secret_basic leads because RFC
// 7591 §2 makes it the method a client is registered with by default, and
// most servers accept only the registered one. When the server lists none of
// the possible methods, the first possible one is tried anyway. [BearerToken]
// is used exactly when an access token source is given. An explicit method
// always wins.
//
// # What the constructor checks, and what it cannot know
//
// [New] and [NewClient] refuse static credentials that cannot perform their
// method: an empty client secret for client_secret_basic,
// client_secret_post or client_secret_jwt, whether the method is explicit or
// the one a secret is sent with when no method is given (a client without a
// secret says how it authenticates: [WithAuthMethod] with [None] for a
// public client); a missing or unsuitable private key; an assertion
// algorithm that does not suit the key; a TLS method without a certificate;
// a client ID containing ':' with [WithRawBasicAuth]. Some things the
// constructor cannot know:
//
//   - whether the authorization server is reachable, and, with [WithIssuer],
//     which method its metadata leads to ([WithEagerDiscovery] fetches the
//     metadata in the constructor and fails with it);
//   - whether the server accepts the credentials: a wrong secret, an
//     unregistered client ID or key, an assertion audience it does not
//     accept, a method it was not registered with;
//   - the secret of [WithClientCredentialsFunc], read only when the server
//     must be asked (an empty one is then an error of that call);
//   - the credentials a [ClientStore] returns, which are checked as above
//     before each call to the server and fail that call alone (there a
//     client ID alone, without AuthMethod, is taken as a public client).
//
// Each of these shows when a call to the server fails: the request gets a
// 503; [Client.Introspect] returns the error (it matches [ErrUnavailable],
// [ErrClientConfig] for credentials that cannot be used, [ErrDiscovery] for
// discovery, a [*ResponseError] with status 400 or 401 and invalid_client
// for credentials the server refused); the middleware passes it to
// Hooks.IntrospectDone and logs it at WARN level ("introspect:
// introspection failed") with [WithLogger]. Neither holds the secret.
type AuthMethod string

// Client authentication methods.
const (
	// ClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header, each form-encoded before base64 as RFC 6749 §2.3.1
	// requires (a secret such as "a:b/c+d%e&f=g h" works against a strict AS),
	// or as they are with [WithRawBasicAuth].
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret in the form body.
	ClientSecretPost AuthMethod = "client_secret_post"
	// ClientSecretJWT sends a client assertion (RFC 7523 §2.2) signed with
	// the client secret: HS256 unless [Credentials.SigningAlg] says HS384 or
	// HS512. The secret itself never travels.
	ClientSecretJWT AuthMethod = "client_secret_jwt"
	// PrivateKeyJWT sends a client assertion (RFC 7523 §2.2) signed with
	// [Credentials.PrivateKey].
	PrivateKeyJWT AuthMethod = "private_key_jwt"
	// TLSClientAuth authenticates with the client certificate of the TLS
	// connection (RFC 8705 §2.1, PKI); the form carries client_id. The
	// certificate is set with [WithClientCertificate] or on the transport of
	// [WithHTTPClient]. When the metadata publishes
	// mtls_endpoint_aliases.introspection_endpoint, that endpoint is used.
	TLSClientAuth AuthMethod = "tls_client_auth"
	// SelfSignedTLSClientAuth is [TLSClientAuth] with a self-signed
	// certificate registered at the authorization server (RFC 8705 §2.2).
	SelfSignedTLSClientAuth AuthMethod = "self_signed_tls_client_auth"
	// BearerToken sends an access token of the resource server's own in an
	// Authorization: Bearer header, as some authorization servers accept
	// instead of client credentials. The token comes from
	// [Credentials.AccessTokenFunc]. It is not a registered method name and
	// is never chosen from metadata.
	BearerToken AuthMethod = "bearer_token"
	// None sends client_id only (a public client, RFC 7591 §2).
	None AuthMethod = "none"
)

// authMethodPreference is the order documented on [AuthMethod].
var authMethodPreference = [...]AuthMethod{
	PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth,
	ClientSecretBasic, ClientSecretPost, ClientSecretJWT, None,
}

func (m AuthMethod) valid() bool {
	switch m {
	case "", ClientSecretBasic, ClientSecretPost, ClientSecretJWT, PrivateKeyJWT,
		TLSClientAuth, SelfSignedTLSClientAuth, BearerToken, None:
		return true
	}
	return false
}

func (m AuthMethod) isTLS() bool { return m == TLSClientAuth || m == SelfSignedTLSClientAuth }

// canUse reports whether the credentials carry what method m needs. hasCert
// says a client certificate is configured on the transport.
func (cr Credentials) canUse(m AuthMethod, hasCert bool) bool {
	hasSecret := cr.ClientSecret != "" || cr.SecretFunc != nil
	switch m {
	case PrivateKeyJWT:
		return cr.PrivateKey != nil
	case TLSClientAuth, SelfSignedTLSClientAuth:
		return hasCert
	case ClientSecretBasic, ClientSecretPost, ClientSecretJWT:
		return hasSecret
	case None:
		return !hasSecret && cr.PrivateKey == nil && !hasCert
	case BearerToken:
		return cr.AccessTokenFunc != nil
	}
	return false
}

// chooseAuthMethod picks the method for credentials without an explicit one,
// by [authMethodPreference]. supported is the server's list (nil when there is
// no metadata: then the credentials alone decide).
func chooseAuthMethod(cr Credentials, hasCert bool, supported []string) AuthMethod {
	if cr.AuthMethod != "" {
		return cr.AuthMethod
	}
	if cr.AccessTokenFunc != nil {
		return BearerToken
	}
	first := AuthMethod("")
	for _, m := range authMethodPreference {
		if !cr.canUse(m, hasCert) {
			continue
		}
		if supported == nil || slices.Contains(supported, string(m)) {
			return m
		}
		if first == "" {
			first = m
		}
	}
	if first == "" {
		// No method suits the credentials (the None method always suits
		// bare ones, so this does not happen): Basic, whose checks then
		// refuse the missing secret.
		return ClientSecretBasic
	}
	return first
}

// checkAuthMaterial reports credentials that cannot perform their method m.
// It runs in the constructor for static credentials (m is then the method
// chosen without metadata, and cr.AuthMethod the one given, if any) and before
// each call for every client context, a ClientStore's included. Messages
// never contain a secret or key material.
func checkAuthMaterial(cr Credentials, m AuthMethod) error {
	hasSecret := cr.ClientSecret != "" || cr.SecretFunc != nil
	if cr.RawBasicAuth && strings.Contains(cr.ClientID, ":") {
		return errors.New("introspect: WithRawBasicAuth: the client ID contains ':', which raw Basic credentials cannot carry (the server would split the pair there): leave them form-encoded (the default) or use another method")
	}
	switch m {
	case ClientSecretBasic, ClientSecretPost, ClientSecretJWT:
		if !hasSecret {
			return fmt.Errorf("introspect: %s needs a client secret, and the one given is empty (WithClientCredentials, or the Credentials of a ClientStore)", m)
		}
		if m == ClientSecretJWT {
			if _, err := hmacMethod(cr.SigningAlg); err != nil {
				return err
			}
		}
	case PrivateKeyJWT:
		if cr.PrivateKey == nil {
			return errors.New("introspect: private_key_jwt needs a private key")
		}
		if _, err := keyMethod(cr.PrivateKey, cr.SigningAlg); err != nil {
			return err
		}
	case BearerToken:
		if cr.AccessTokenFunc == nil {
			return errors.New("introspect: bearer_token needs an access token source")
		}
	case None:
		if cr.AuthMethod == "" {
			// Chosen, not given: the credentials hold a client ID alone, which
			// in practice is a secret that was meant to be there.
			return errors.New("introspect: WithClientCredentials: empty client secret, and client_secret_basic, the method a secret is sent with, needs one (a client without a secret says how it authenticates with WithAuthMethod: None for a public client, TLSClientAuth for a certificate on WithHTTPClient's transport)")
		}
	}
	return nil
}

// callbackError is the failure of a credentials callback (a secret
// function, an access token function): ErrClientConfig, with the
// callback's error kept for errors.Is and errors.As but not in the text,
// which may carry what a server chose (golang.org/x/oauth2's token source
// error holds its token endpoint's answer).
type callbackError struct {
	text  string
	cause error
}

func (e *callbackError) Error() string   { return e.text }
func (e *callbackError) Unwrap() []error { return []error{ErrClientConfig, e.cause} }

// authenticate adds the client's credentials to an introspection request.
// form is encoded into the body after this returns. audience is the "aud" of
// client assertions unless the credentials set one.
func authenticate(ctx context.Context, cr Credentials, audience string, now time.Time, req *http.Request, form url.Values) error {
	method := cr.AuthMethod
	if method == "" {
		method = chooseAuthMethod(cr, false, nil)
	}
	switch method {
	case ClientSecretBasic, ClientSecretPost, ClientSecretJWT:
		secret, err := cr.secret(ctx)
		if err != nil {
			return &callbackError{text: ErrClientConfig.Error() + ": client secret unavailable: the secret function failed", cause: err}
		}
		if secret == "" {
			// Only a secret read lazily can be empty here: a static one was
			// checked before.
			return fmt.Errorf("%w: %s needs a client secret, and the secret function returned an empty one", ErrClientConfig, method)
		}
		switch method {
		case ClientSecretBasic:
			if cr.RawBasicAuth {
				req.Header.Set("Authorization", basicAuthorization(cr.ClientID, secret))
			} else {
				req.Header.Set("Authorization", basicAuthorization(url.QueryEscape(cr.ClientID), url.QueryEscape(secret)))
			}
		case ClientSecretPost:
			form.Set("client_id", cr.ClientID)
			form.Set("client_secret", secret)
		default:
			sm, err := hmacMethod(cr.SigningAlg)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrClientConfig, err)
			}
			return addAssertion(cr, sm, []byte(secret), audience, now, form)
		}
	case PrivateKeyJWT:
		sm, err := keyMethod(cr.PrivateKey, cr.SigningAlg)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrClientConfig, err)
		}
		return addAssertion(cr, sm, cr.PrivateKey, audience, now, form)
	case TLSClientAuth, SelfSignedTLSClientAuth, None:
		form.Set("client_id", cr.ClientID)
	case BearerToken:
		if cr.AccessTokenFunc == nil {
			return fmt.Errorf("%w: no access token source", ErrClientConfig)
		}
		tok, err := cr.AccessTokenFunc(ctx)
		if err != nil {
			return &callbackError{text: ErrClientConfig.Error() + ": access token unavailable: the token function failed", cause: err}
		}
		if tok == "" || !validB64Token(tok) {
			return fmt.Errorf("%w: access token source returned an unusable token", ErrClientConfig)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	default:
		return fmt.Errorf("%w: unsupported auth method %q", ErrClientConfig, method)
	}
	return nil
}

// validB64Token reports whether s has the RFC 6750 b64token syntax, so it
// can go into an Authorization header as is.
func validB64Token(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// basicAuthorization is the Authorization value of Basic credentials id and
// secret, what [http.Request.SetBasicAuth] sets, built in one allocation
// instead of four: "Basic " and the base64 of id ":" secret, encoded through
// a buffer on the stack.
func basicAuthorization(id, secret string) string {
	const prefix = "Basic "
	var b strings.Builder
	b.Grow(len(prefix) + base64.StdEncoding.EncodedLen(len(id)+1+len(secret)))
	b.WriteString(prefix)
	var in [48]byte // a multiple of 3: only the last chunk is padded
	var out [64]byte
	n := 0
	for _, s := range [3]string{id, ":", secret} {
		for s != "" {
			c := copy(in[n:], s)
			n, s = n+c, s[c:]
			if n == len(in) {
				base64.StdEncoding.Encode(out[:], in[:])
				b.Write(out[:])
				n = 0
			}
		}
	}
	base64.StdEncoding.Encode(out[:], in[:n])
	b.Write(out[:base64.StdEncoding.EncodedLen(n)])
	return b.String()
}

// assertionLifetime is the validity of a client assertion. RFC 7523 asks for
// a short one; the assertion is used once, right away.
const assertionLifetime = 60 * time.Second

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// addAssertion signs an RFC 7523 §3 client assertion and puts it in the form:
// iss = sub = the client ID, aud, a random jti, iat and an exp 60 s later.
func addAssertion(cr Credentials, sm jwt.SigningMethod, key any, audience string, now time.Time, form url.Values) error {
	if cr.AssertionAudience != "" {
		audience = cr.AssertionAudience
	}
	if audience == "" {
		return fmt.Errorf("%w: no audience for the client assertion", ErrClientConfig)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return fmt.Errorf("%w: %w", ErrClientConfig, err)
	}
	t := jwt.NewWithClaims(sm, jwt.MapClaims{
		"iss": cr.ClientID,
		"sub": cr.ClientID,
		"aud": audience,
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	})
	if cr.KeyID != "" {
		t.Header["kid"] = cr.KeyID
	}
	s, err := t.SignedString(key)
	if err != nil {
		// golang-jwt's errors name the problem, never the key.
		return fmt.Errorf("%w: signing the client assertion: %w", ErrClientConfig, err)
	}
	form.Set("client_id", cr.ClientID)
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", s)
	return nil
}

func hmacMethod(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case "", "HS256":
		return jwt.SigningMethodHS256, nil
	case "HS384":
		return jwt.SigningMethodHS384, nil
	case "HS512":
		return jwt.SigningMethodHS512, nil
	}
	return nil, fmt.Errorf("introspect: client_secret_jwt: algorithm %q is not HS256, HS384 or HS512", alg)
}

// keyMethod returns the signing method for key: alg when given and suited
// to the key, else RS256 for RSA, ES256/ES384/ES512 by curve, EdDSA for
// Ed25519.
func keyMethod(key crypto.Signer, alg string) (jwt.SigningMethod, error) {
	bad := func() error {
		return fmt.Errorf("introspect: private_key_jwt: algorithm %q does not suit a %s key", alg, keyKind(key))
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k == nil || k.N == nil || k.D == nil || len(k.Primes) < 2 {
			return nil, errors.New("introspect: private_key_jwt: incomplete RSA private key")
		}
		if k.N.BitLen() < 2048 {
			return nil, errors.New("introspect: private_key_jwt: RSA key shorter than 2048 bits")
		}
		switch alg {
		case "", "RS256":
			return jwt.SigningMethodRS256, nil
		case "RS384":
			return jwt.SigningMethodRS384, nil
		case "RS512":
			return jwt.SigningMethodRS512, nil
		case "PS256":
			return jwt.SigningMethodPS256, nil
		case "PS384":
			return jwt.SigningMethodPS384, nil
		case "PS512":
			return jwt.SigningMethodPS512, nil
		}
		return nil, bad()
	case *ecdsa.PrivateKey:
		//lint:ignore SA1019 only tested for nil: Bytes, its replacement, panics on a key without D
		if k == nil || k.D == nil || k.X == nil || k.Y == nil {
			return nil, errors.New("introspect: private_key_jwt: incomplete EC private key")
		}
		var m *jwt.SigningMethodECDSA
		switch k.Curve {
		case elliptic.P256():
			m = jwt.SigningMethodES256
		case elliptic.P384():
			m = jwt.SigningMethodES384
		case elliptic.P521():
			m = jwt.SigningMethodES512
		default:
			return nil, errors.New("introspect: private_key_jwt: unsupported elliptic curve")
		}
		if alg != "" && alg != m.Alg() {
			return nil, bad()
		}
		return m, nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("introspect: private_key_jwt: an Ed25519 private key has %d bytes, not %d (ed25519.NewKeyFromSeed makes one of a %d-byte seed)",
				len(k), ed25519.PrivateKeySize, ed25519.SeedSize)
		}
		if alg != "" && alg != "EdDSA" {
			return nil, bad()
		}
		return jwt.SigningMethodEdDSA, nil
	case nil:
		return nil, errors.New("introspect: private_key_jwt: no private key")
	}
	return nil, fmt.Errorf("introspect: private_key_jwt: unsupported key type %T (want *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey)", key)
}

// checkKey checks the whole of a key that keyMethod accepted, once, in the
// constructor: an RSA key's primes and exponents, an EC key's scalar
// against its curve and public point. A key that fails them would fail
// every call.
func checkKey(key crypto.Signer) error {
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		err = k.Validate()
	case *ecdsa.PrivateKey:
		var ek *ecdh.PrivateKey
		if ek, err = k.ECDH(); err == nil {
			if pub, perr := k.PublicKey.ECDH(); perr != nil || !ek.PublicKey().Equal(pub) {
				err = errors.New("the public key is not the private key's")
			}
		}
	}
	if err != nil {
		return fmt.Errorf("introspect: private_key_jwt: invalid %s private key", keyKind(key))
	}
	return nil
}

func keyKind(key crypto.Signer) string {
	switch key.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "EC"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// ParsePrivateKey reads a private key for [PrivateKeyJWT]: a PEM block
// (PKCS #8 "PRIVATE KEY", PKCS #1 "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY")
// (after the "EC PARAMETERS" block that openssl ecparam writes before it)
// or a JWK (RFC 7517), alone or as the only key of a JWK set. It returns the
// key and, for a JWK, its "kid" (empty for PEM). Errors never contain key
// material.
func ParsePrivateKey(data []byte) (crypto.Signer, string, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		return parseJWKPrivateKey([]byte(trimmed))
	}
	block, rest := pem.Decode(data)
	params := false
	for block != nil && block.Type == "EC PARAMETERS" {
		// openssl ecparam -genkey writes the curve's name before the key.
		params = true
		block, rest = pem.Decode(rest)
	}
	switch {
	case block == nil && params:
		return nil, "", errors.New("introspect: the PEM holds EC parameters and no private key")
	case block == nil:
		return nil, "", errors.New("introspect: private key is neither PEM nor a JWK")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("introspect: PEM block %q is not a private key", sanitize(block.Type, 40))
	}
	if err != nil {
		return nil, "", errors.New("introspect: private key PEM block does not parse")
	}
	return asSigner(key, "")
}

func parseJWKPrivateKey(data []byte) (crypto.Signer, string, error) {
	var probe struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(data, &probe) == nil && probe.Keys != nil {
		if len(probe.Keys) != 1 {
			return nil, "", fmt.Errorf("introspect: JWK set holds %d keys, want exactly one", len(probe.Keys))
		}
		data = probe.Keys[0]
	}
	k, err := jwk.ParseKey(data)
	if err != nil {
		return nil, "", errors.New("introspect: JWK does not parse")
	}
	if priv, err := jwk.IsPrivateKey(k); err != nil || !priv {
		return nil, "", errors.New("introspect: JWK is not a private key")
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, "", errors.New("introspect: JWK does not parse")
	}
	if p, ok := raw.(*ed25519.PrivateKey); ok {
		raw = *p
	}
	kid, _ := k.KeyID()
	return asSigner(raw, kid)
}

func asSigner(key any, kid string) (crypto.Signer, string, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("introspect: %T is not a signing key", key)
	}
	if _, err := keyMethod(s, ""); err != nil {
		return nil, "", err
	}
	return s, kid, nil
}

// WithPrivateKey sets static client credentials made of a client ID and a
// private key, sent with [PrivateKeyJWT] unless [WithAuthMethod] says
// otherwise. key is an *rsa.PrivateKey (2048 bits or more), an
// *ecdsa.PrivateKey or an ed25519.PrivateKey; [ParsePrivateKey] reads one from
// PEM or JWK. keyID, when not empty, is sent as the "kid" header so the
// server finds the key among the client's. No default.
func WithPrivateKey(clientID string, key crypto.Signer, keyID string) Option {
	return func(c *config) {
		if _, err := keyMethod(key, ""); err != nil {
			c.errs = append(c.errs, err)
			return
		}
		if err := checkKey(key); err != nil {
			c.errs = append(c.errs, err)
			return
		}
		c.creds.ClientID, c.creds.PrivateKey, c.creds.KeyID = clientID, key, keyID
		c.credsSet = true
	}
}

// WithClientCertificate sets static client credentials made of a client ID
// and a TLS client certificate, sent with [TLSClientAuth] (or
// [SelfSignedTLSClientAuth] when the server lists only that) unless
// [WithAuthMethod] says otherwise. The certificate is added to a copy of the
// transport, which must then be an *http.Transport. No default.
func WithClientCertificate(clientID string, cert tls.Certificate) Option {
	return func(c *config) {
		if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
			c.fail("WithClientCertificate: certificate without its private key")
			return
		}
		c.creds.ClientID = clientID
		c.clientCert = &cert
		c.credsSet = true
	}
}

// WithBearerCredentials authenticates to the introspection endpoint with an
// access token of the resource server's own ([BearerToken]), as some servers
// accept. token is called on each call to the authorization server, so it
// can hand out a refreshed token; it must be safe for concurrent use. An
// error of token fails the call ([ErrClientConfig], 503); errors.Is and
// errors.As find it, but its text is left out of the package's errors and
// logs (golang.org/x/oauth2's holds its token endpoint's answer): log it in
// token if you need it. clientID names the caller for the cache and is not
// sent. No default.
func WithBearerCredentials(clientID string, token func(ctx context.Context) (string, error)) Option {
	return func(c *config) {
		if token == nil {
			c.fail("WithBearerCredentials: nil function")
			return
		}
		c.creds.ClientID, c.creds.AccessTokenFunc = clientID, token
		c.credsSet = true
	}
}

// WithAssertionSigningAlg sets the "alg" of client assertions: HS256, HS384
// or HS512 for [ClientSecretJWT]; RS256, RS384, RS512, PS256, PS384 or PS512
// for an RSA key, ES256, ES384 or ES512 by curve for an EC key, EdDSA for
// Ed25519. Default HS256 for a secret, RS256 for RSA, the curve's ES
// algorithm for EC.
func WithAssertionSigningAlg(alg string) Option {
	return func(c *config) {
		if alg == "" {
			c.fail("WithAssertionSigningAlg: empty algorithm")
			return
		}
		c.creds.SigningAlg = alg
	}
}

// WithAssertionAudience sets the "aud" of client assertions. Some servers
// want the introspection endpoint URL or the token endpoint URL rather than
// their issuer: Okta refuses any "aud" but the URL of the endpoint called,
// so give it the introspection endpoint's URL. Default: the issuer given to
// [WithIssuer] (what Keycloak, ZITADEL and node oidc-provider take, and
// what the revision of RFC 7523 in progress asks for against audience
// injection), or the introspection endpoint URL without discovery.
func WithAssertionAudience(aud string) Option {
	return func(c *config) {
		if aud == "" {
			c.fail("WithAssertionAudience: empty audience")
			return
		}
		c.creds.AssertionAudience = aud
	}
}

// WithRawBasicAuth sends the client ID and secret of [ClientSecretBasic] as
// they are, without the form-encoding (application/x-www-form-urlencoded)
// that RFC 6749 §2.3.1 asks for before base64. It exists for servers that
// read Basic credentials as a plain HTTP Basic login does, without
// form-decoding them (curl's -u sends them so too): such a server refuses a
// secret holding a character that form-encoding changes ('+', '/', '=', ':',
// '%', '&', a space, ...) unless it comes raw. Letters, digits and "-._~"
// read the same either way, so only such secrets tell the two apart. A
// client ID containing ':' cannot be sent raw (the pair would be split
// there): the constructor refuses it, and it refuses the option with another
// method set by [WithAuthMethod]; a method chosen from the server's metadata
// other than client_secret_basic ignores it. A [ClientStore] sets
// [Credentials.RawBasicAuth] instead. Default off: the
// client ID and secret are form-encoded.
func WithRawBasicAuth() Option {
	return func(c *config) { c.creds.RawBasicAuth = true }
}
