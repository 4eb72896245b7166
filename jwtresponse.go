package introspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Media type and JOSE "typ" of a signed introspection answer (RFC 9701 §5).
const (
	jwtResponseMediaType = "application/token-introspection+jwt"
	jwtResponseTyp       = "token-introspection+jwt"
)

// ErrEncryptedResponse: the authorization server answered with an encrypted
// (JWE) introspection response, which this package does not decrypt. It
// wraps [ErrUnavailable] (503).
var ErrEncryptedResponse = fmt.Errorf("%w: encrypted (JWE) response not supported", ErrUnavailable)

// defaultJWTResponseMaxAge is how old the iat of a signed answer may be
// (before the leeway): the answer is made for this very request.
const defaultJWTResponseMaxAge = time.Minute

// asymmetricAlgs are the signature algorithms accepted for signed answers.
// none and the HMAC algorithms never are: an HMAC "signature" keyed with the
// server's public key proves nothing. Ed25519 is the fully-specified name
// (RFC 9864) of EdDSA with an Ed25519 key, the only EdDSA key supported.
var asymmetricAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA", "Ed25519",
}

// isEdDSA reports whether alg is EdDSA, by its polymorphic name or by its
// fully-specified one for Ed25519 (RFC 9864).
func isEdDSA(alg string) bool { return alg == "EdDSA" || alg == "Ed25519" }

// refusedAlgs are the JOSE signature algorithms never accepted for signed
// answers, whatever the configuration or the metadata says.
var refusedAlgs = []string{"none", "HS256", "HS384", "HS512"}

// errAlgorithmsWithoutJWTResponse is recorded by WithJWTResponseAlgorithms
// and withdrawn by WithJWTResponse, so the constructor reports the option
// given alone whatever the order of the two.
var errAlgorithmsWithoutJWTResponse = errors.New("introspect: WithJWTResponseAlgorithms needs WithJWTResponse: it sets the algorithms of signed answers, which are not asked for")

// signingAlgs is the allow-list for signed answers without
// WithJWTResponseAlgorithms: the server's
// introspection_signing_alg_values_supported restricted to asymmetric
// algorithms, or RS256 (the RFC 9701 §6 default of
// introspection_signed_response_alg) when the server lists none.
func signingAlgs(advertised []string) []string {
	if advertised == nil {
		return []string{"RS256"}
	}
	var algs []string
	for _, a := range advertised {
		if slices.Contains(asymmetricAlgs, a) && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	return algs
}

// WithJWTResponse asks for signed introspection answers (RFC 9701): the
// request carries Accept: application/token-introspection+jwt, and the
// answer must be a JWS whose header typ is token-introspection+jwt, whose
// algorithm is one the server lists in
// introspection_signing_alg_values_supported (RS256 if it lists none), or one
// of [WithJWTResponseAlgorithms] when given (never none, never HMAC), signed
// by a key of the server's jwks_uri, with iss equal to the issuer, aud
// containing our client ID and an iat at most a minute old (plus the
// leeway). Its token_introspection claim is the answer. A plain JSON answer
// is then an error, and so is an encrypted one ([ErrEncryptedResponse]);
// every such error is a 503. A refusal is not signed (RFC 9701 signs only
// answers of 200): a 400 with the error invalid_token still counts as an
// inactive token, cached for [WithNegativeTTL]; it can refuse a token, never
// accept one. It requires [WithIssuer]. Default off.
func WithJWTResponse() Option {
	return func(c *config) {
		c.jwtResponse = true
		c.errs = slices.DeleteFunc(c.errs, func(err error) bool { return err == errAlgorithmsWithoutJWTResponse })
	}
}

// WithJWTResponseAlgorithms sets the signature algorithms accepted for the
// signed answers of [WithJWTResponse], for a server that does not list them
// in its metadata (introspection_signing_alg_values_supported is optional
// in RFC 8414, and without it only RS256, the RFC 9701 default, is
// accepted) or lists them wrongly. The list replaces the server's rather than
// narrowing it: an answer signed with an algorithm the server lists but algs
// does not is refused, and one signed with an algorithm of algs is accepted
// whatever the server lists. Each of algs must be one of RS256, RS384, RS512,
// PS256, PS384, PS512, ES256, ES384, ES512, EdDSA and Ed25519 (RFC 9864);
// none and the HMAC algorithms (HS256, HS384, HS512) are refused, since an HMAC keyed with the
// server's public key proves nothing. Any other name, or no name, is an error
// from the constructor, and so is this option without WithJWTResponse.
// Default: the algorithms the server lists, RS256 if it lists none.
func WithJWTResponseAlgorithms(algs ...string) Option {
	return func(c *config) {
		if len(algs) == 0 {
			c.fail("WithJWTResponseAlgorithms: no algorithm")
			return
		}
		list := make([]string, 0, len(algs))
		ok := true
		for _, a := range algs {
			switch {
			case slices.ContainsFunc(refusedAlgs, func(r string) bool { return strings.EqualFold(r, a) }):
				c.fail("WithJWTResponseAlgorithms: %s is never accepted for signed answers (none and HMAC prove nothing about the server)", sanitize(a, 16))
				ok = false
			case !slices.Contains(asymmetricAlgs, a):
				c.fail("WithJWTResponseAlgorithms: unknown algorithm %q (want one of %s)", sanitize(a, 32), strings.Join(asymmetricAlgs, ", "))
				ok = false
			case !slices.Contains(list, a):
				list = append(list, a)
			}
		}
		if !ok {
			return
		}
		c.jwtResponseAlgs = list
		if !c.jwtResponse && !slices.Contains(c.errs, errAlgorithmsWithoutJWTResponse) {
			c.errs = append(c.errs, errAlgorithmsWithoutJWTResponse)
		}
	}
}

// verifyJWTResponse checks a signed answer and returns its
// token_introspection claim as the verdict.
func (c *Client) verifyJWTResponse(ctx context.Context, p *provider, st *providerState, clientID string, h http.Header, body []byte) (*Introspection, error) {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: no content type", ErrMalformedResponse)
	case mt == "application/json":
		return nil, fmt.Errorf("%w: plain JSON answer where a signed one was required", ErrMalformedResponse)
	case mt != jwtResponseMediaType && mt != "application/jwt":
		return nil, fmt.Errorf("%w: content type is not %s", ErrMalformedResponse, jwtResponseMediaType)
	}
	return c.parseJWTResponse(ctx, p, st, clientID, bytes.TrimSpace(body), c.cfg.now())
}

// jwtHeader is the protected header of a signed answer.
type jwtHeader struct {
	Alg, Typ, Kid, Enc string
	Crit               bool // a "crit" member is present
}

// parseJWTHeader decodes the members of a JOSE header that matter here,
// matching names exactly.
func parseJWTHeader(data []byte) (jwtHeader, error) {
	var h jwtHeader
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return h, errors.New("not a JSON object")
	}
	_, h.Crit = m["crit"]
	return h, errors.Join(
		decodeString(m, "alg", &h.Alg),
		decodeString(m, "typ", &h.Typ),
		decodeString(m, "kid", &h.Kid),
		decodeString(m, "enc", &h.Enc),
	)
}

// parseJWTResponse verifies a compact JWS answer. Every failure wraps
// ErrUnavailable: no verdict was possible.
func (c *Client) parseJWTResponse(ctx context.Context, p *provider, st *providerState, clientID string, tok []byte, now time.Time) (*Introspection, error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%w: signed answer: "+format, append([]any{ErrMalformedResponse}, args...)...)
	}
	switch bytes.Count(tok, []byte{'.'}) {
	case 2:
	case 4:
		return nil, ErrEncryptedResponse
	default:
		return nil, malformed("not a compact JWS")
	}
	rawHeader, _, _ := bytes.Cut(tok, []byte{'.'})
	hb := make([]byte, base64.RawURLEncoding.DecodedLen(len(rawHeader)))
	n, err := strictBase64URL.Decode(hb, rawHeader)
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	hdr, err := parseJWTHeader(hb[:n])
	if err != nil {
		return nil, malformed("header is not a JSON object")
	}
	switch {
	case hdr.Enc != "":
		return nil, ErrEncryptedResponse
	case !strings.EqualFold(hdr.Typ, jwtResponseTyp) && !strings.EqualFold(hdr.Typ, "application/"+jwtResponseTyp):
		return nil, malformed("typ is not %s", jwtResponseTyp)
	case hdr.Crit:
		return nil, malformed("critical header parameters are not supported")
	case !slices.Contains(st.algs, hdr.Alg):
		// The header's values are the server's text: not repeated.
		return nil, malformed("algorithm not allowed")
	}

	payload, err := p.verifySignature(ctx, tok, hdr)
	if err != nil {
		return nil, err
	}

	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, malformed("claims are not a JSON object")
	}
	var iss string
	if decodeString(claims, "iss", &iss) != nil || iss != st.meta.Issuer {
		return nil, malformed("iss is not the issuer")
	}
	aud, err := decodeStrings(claims, "aud", false)
	if err != nil || !slices.Contains(aud, clientID) {
		return nil, malformed("aud does not name this client")
	}
	lw := c.cfg.leeway
	iat, err := decodeTime(claims, "iat")
	switch {
	case err != nil || iat.IsZero():
		return nil, malformed("no iat")
	case now.Add(lw).Before(iat):
		return nil, malformed("iat is in the future")
	case now.Sub(iat) > c.cfg.jwtResponseMaxAge+lw:
		return nil, malformed("iat is too old")
	}
	if exp, err := decodeTime(claims, "exp"); err != nil || !exp.IsZero() && now.After(exp.Add(lw)) {
		return nil, malformed("expired")
	}
	raw, ok := claims["token_introspection"]
	if !ok {
		return nil, malformed("no token_introspection claim")
	}
	// The answer goes through the parser of plain answers, with its rules
	// (a member given twice, an "active" that is not a boolean, ...).
	ti, err := parseIntrospection(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (signed answer: token_introspection)", err)
	}
	return ti, nil
}

// verifySignature checks tok's signature with the server's key named by the
// header's kid (or, without a kid, with each key that suits the algorithm).
// An unknown kid refreshes the key set once, no more often than the refresh
// limit allows, then fails.
func (p *provider) verifySignature(ctx context.Context, tok []byte, hdr jwtHeader) ([]byte, error) {
	alg, ok := jwa.LookupSignatureAlgorithm(hdr.Alg)
	if !ok {
		// The allow-list holds only algorithms the JOSE library knows.
		return nil, fmt.Errorf("%w: signed answer: algorithm not allowed", ErrMalformedResponse)
	}
	set, err := p.keySet(ctx, false)
	if err != nil {
		return nil, discoveryError(err)
	}
	keys := candidateKeys(set, hdr.Kid, alg)
	if len(keys) == 0 {
		if set, err = p.keySet(ctx, true); err != nil && !errors.Is(err, errRefreshLimited) {
			return nil, err
		}
		if set != nil {
			keys = candidateKeys(set, hdr.Kid, alg)
		}
		if len(keys) == 0 {
			// The kid is the server's text: not repeated.
			if hdr.Kid == "" {
				return nil, fmt.Errorf("%w: signed answer: no key of the server suits its algorithm", ErrMalformedResponse)
			}
			return nil, fmt.Errorf("%w: signed answer: no key of the server matches its kid", ErrMalformedResponse)
		}
	}
	for _, k := range keys {
		if payload, err := jws.Verify(tok, jws.WithKey(alg, k)); err == nil {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("%w: signed answer: bad signature", ErrMalformedResponse)
}

// candidateKeys are the keys of set that may have made a signature with alg:
// the key with that kid, or without a kid every key of the right type (at
// most a few). A key whose own "alg" differs is never used.
func candidateKeys(set jwk.Set, kid string, alg jwa.SignatureAlgorithm) []jwk.Key {
	var out []jwk.Key
	for i := 0; i < set.Len() && len(out) < 8; i++ {
		k, _ := set.Key(i)
		if kid != "" {
			if id, _ := k.KeyID(); id != kid {
				continue
			}
		}
		if ka, ok := k.Algorithm(); ok && ka.String() != "" && ka.String() != alg.String() {
			continue
		}
		if !keyTypeFits(k.KeyType(), alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func keyTypeFits(kty jwa.KeyType, alg jwa.SignatureAlgorithm) bool {
	switch a := alg.String(); {
	case strings.HasPrefix(a, "RS"), strings.HasPrefix(a, "PS"):
		return kty == jwa.RSA()
	case strings.HasPrefix(a, "ES"):
		return kty == jwa.EC()
	case isEdDSA(a):
		return kty == jwa.OKP()
	}
	return false
}
