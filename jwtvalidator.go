package introspect

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ErrInvalidJWT: a JWT access token validated locally was refused (401
// invalid_token). Every such refusal is a [*JWTError], which matches it and
// [ErrInactiveToken]; one refused by a claim check matches the reason too
// ([ErrTokenExpired], [ErrAudienceMismatch], ...).
var ErrInvalidJWT = fmt.Errorf("%w: invalid JWT access token", ErrInactiveToken)

// JWTError is the refusal of a JWT access token validated locally. Reason
// is in the package's own words: it never holds the token or a value the
// token chose (a kid, an algorithm name, a claim).
type JWTError struct {
	Reason string
	// Err is the claim check that failed ([ErrTokenExpired], ...), nil when
	// the token was refused before its claims were checked.
	Err error
}

func (e *JWTError) Error() string { return "introspect: invalid JWT access token: " + e.Reason }

// Unwrap makes a JWTError match [ErrInvalidJWT] and, when set, Err.
func (e *JWTError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidJWT, e.Err}
	}
	return []error{ErrInvalidJWT}
}

func jwtRefused(reason string) error { return &JWTError{Reason: reason} }

// Fixed refusals, made once: a refusal costs no allocation.
var (
	errJWTTooLarge    = jwtRefused("too large")
	errJWTNotCompact  = jwtRefused("not a compact JWS")
	errJWTEncrypted   = jwtRefused("encrypted (JWE) tokens are not supported")
	errJWTHeader      = jwtRefused("malformed header")
	errJWTTyp         = jwtRefused("header typ is not at+jwt")
	errJWTCrit        = jwtRefused("critical header parameters are not supported")
	errJWTNested      = jwtRefused("nested or compressed tokens are not supported")
	errJWTAlg         = jwtRefused("algorithm not allowed")
	errJWTPayload     = jwtRefused("malformed claims")
	errJWTTooDeep     = jwtRefused("claims nested too deeply")
	errJWTIssuer      = jwtRefused("iss is not an accepted issuer")
	errJWTNoExp       = jwtRefused("no exp")
	errJWTAudience    = &JWTError{Reason: "aud does not name this resource", Err: ErrAudienceMismatch}
	errJWTUnknownKey  = jwtRefused("no key of the issuer matches its kid")
	errJWTNoKey       = jwtRefused("no key of the issuer suits its algorithm")
	errJWTBadSig      = jwtRefused("bad signature")
	errJWTSigEncoding = jwtRefused("signature is not base64url")
)

// maxClaimsDepth bounds the nesting of arrays and objects in the claims.
const maxClaimsDepth = 16

// JWTValidator validates JWT access tokens (RFC 9068) locally, against the
// keys of the issuer's jwks_uri, found by discovery. It is safe for
// concurrent use; the middleware uses one for [WithValidation].
type JWTValidator struct {
	c   *Client
	own bool // Close closes c

	audience string
	algs     []string
	plain    bool
	maxSize  int
}

// NewJWTValidator returns a validator of the JWT access tokens of the issuer
// of [WithIssuer] and of [WithJWTIssuers] (one of them required) for the
// resource of [WithJWTAudience] (required), like an OpenID Connect ID token
// verifier. It takes the JWT options
// ([WithJWTAlgorithms], [WithPlainJWT], [WithMaxJWTSize]), the local checks
// ([WithLeeway], [WithClock], [WithAllowedClientIDs], [WithExpectedAudience])
// and the transport and discovery options ([WithHTTPClient], [WithTimeout],
// [WithMaxResponseSize], [InsecureAllowHTTP], [WithMetadataRefresh],
// [WithEagerDiscovery], [WithClientCertificate]). Introspection options
// (an endpoint, client credentials, signed answers) and middleware options
// are errors. Close it when done: it refreshes the keys in the background.
func NewJWTValidator(opts ...Option) (*JWTValidator, error) {
	cfg := newConfig(opts)
	for _, name := range cfg.mwOnly {
		cfg.fail("%s applies to the middleware, not to a JWTValidator", name)
	}
	cfg.validation = ValidateJWT
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	v := newJWTValidator(c)
	v.own = true
	return v, nil
}

// newJWTValidator returns the validator of c, whose configuration enables
// local validation and was checked.
func newJWTValidator(c *Client) *JWTValidator {
	cfg := c.cfg
	return &JWTValidator{
		c: c, audience: cfg.jwtAudience,
		algs: cfg.jwtAlgs, plain: cfg.jwtPlain, maxSize: cfg.jwtMaxSize,
	}
}

// Close stops the background refreshes of a validator from
// [NewJWTValidator]. It is safe to call twice.
func (v *JWTValidator) Close() error {
	if v.own {
		return v.c.Close()
	}
	return nil
}

// Validate checks token as an RFC 9068 JWT access token and returns its
// claims as an [*Introspection] (Active, Source [VerdictJWT]), as
// introspection would have:
//
//   - the token is a compact JWS of at most the size limit: no JWE, no
//     nested JWT (cty), no compression; its header names each member once,
//     has typ at+jwt or application/at+jwt (or JWT or none with
//     [WithPlainJWT]) and no crit; jku, x5u, x5c and jwk are ignored: keys
//     only ever come from the issuer's jwks_uri;
//   - alg is one of the allowed asymmetric algorithms (never none or HMAC),
//     and the signature verifies with the issuer's key of the header's kid
//     (an unknown kid refreshes the keys once, no more often than every 30
//     s), or without a kid with a key of the issuer that suits the
//     algorithm;
//   - the claims are a JSON object naming each member once, nested at most
//     16 deep; iss is one of the issuers exactly (the token's unverified iss
//     chose the keys); aud contains the resource; exp is
//     present; exp, nbf and iat hold with the leeway; client_id is allowed
//     ([WithAllowedClientIDs]);
//   - scope is split at spaces only; cnf is kept for the binding checks;
//     other claims go to Extra.
//
// A refusal is a [*JWTError] (401); the claims come back with it when the
// signature verified and a claim check failed. When the keys cannot be
// fetched, the error matches [ErrDiscovery] (503).
func (v *JWTValidator) Validate(ctx context.Context, token string) (*Introspection, error) {
	ti, _, err := v.validate(ctx, token, v.c.cfg.now(), v.c.contextIssuer(&ClientContext{}))
	return ti, err
}

// validate checks token at now. The token's unverified iss chooses the
// issuer whose keys and rules apply: one of WithJWTIssuers, or ctxIssuer,
// the issuer of the request's client context (WithIssuer's for the static
// one). ours reports whether the token is a JWS whose unverified iss is one
// of those: in hybrid mode, a token that is not (ours false) is introspected
// instead; once it is, the verdict is final.
func (v *JWTValidator) validate(ctx context.Context, token string, now time.Time, ctxIssuer string) (ti *Introspection, ours bool, err error) {
	if len(token) > v.maxSize {
		return nil, false, errJWTTooLarge
	}
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return nil, false, errJWTNotCompact
	}
	d2 := d1 + 1 + strings.IndexByte(token[d1+1:], '.')
	if d2 == d1 {
		return nil, false, errJWTNotCompact
	}
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		if strings.Count(token, ".") == 4 {
			return nil, false, errJWTEncrypted
		}
		return nil, false, errJWTNotCompact
	}
	// One copy of the token and one buffer for its three decoded parts.
	tb := []byte(token)
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(tb)))
	hb, rest, err := decodePart(buf, tb[:d1])
	if err != nil {
		return nil, false, errJWTHeader
	}
	hdr, err := parseTokenHeader(hb)
	if err != nil {
		return nil, false, err
	}
	payload, rest, err := decodePart(rest, tb[d1+1:d2])
	if err != nil {
		return nil, false, errJWTPayload
	}
	if tooDeep(payload, maxClaimsDepth) {
		return nil, false, errJWTTooDeep
	}
	claims, err := parseClaims(payload)
	if err != nil {
		return nil, false, errJWTPayload
	}
	p, err := v.c.jwtProvider(claims.Issuer, ctxIssuer)
	if err != nil {
		return nil, false, err
	}
	if p == nil {
		return nil, false, errJWTIssuer
	}
	// From here on the token claims to be the issuer's: the verdict is final.
	if err := v.checkHeader(hdr); err != nil {
		return nil, true, err
	}
	if err := v.verify(ctx, p, tb[:d2], tb[d2+1:], rest, hdr); err != nil {
		return nil, true, err
	}
	claims.Source = VerdictJWT
	switch {
	case claims.Expiry.IsZero():
		return nil, true, errJWTNoExp
	case !claims.HasAudience(v.audience):
		return claims, true, errJWTAudience
	}
	if err := v.c.validate(claims, now); err != nil {
		return claims, true, &JWTError{Reason: strings.TrimPrefix(err.Error(), "introspect: "), Err: err}
	}
	return claims, true, nil
}

// tokenHeader is the JOSE header of a JWT access token.
type tokenHeader struct {
	alg, typ, kid string
	hasTyp        bool
	crit          bool // crit or b64 (RFC 7797, which needs crit) is present
	encrypted     bool // enc is present
	nested        bool // cty or zip is present
}

// strictBase64URL decodes unpadded base64url and refuses non-zero trailing
// bits: one value, one spelling. Lenient decoding would let one token be
// written in several ways (the last character of a signature carries bits
// that nothing reads), each a different cache key and a different string
// to revoke.
var strictBase64URL = base64.RawURLEncoding.Strict()

// decodePart decodes the base64url src into the start of buf, returning
// the decoded bytes and the rest of buf.
func decodePart(buf, src []byte) (part, rest []byte, err error) {
	if bytes.ContainsAny(src, "\r\n") { // which base64 decoding skips
		return nil, nil, errJWTNotCompact
	}
	n, err := strictBase64URL.Decode(buf, src)
	if err != nil {
		return nil, nil, err
	}
	return buf[:n:n], buf[n:], nil
}

// parseTokenHeader reads the decoded header, refusing a member given twice
// and members of the wrong type.
func parseTokenHeader(data []byte) (tokenHeader, error) {
	var h tokenHeader
	start := skipSpace(data, 0)
	if start == len(data) || data[start] != '{' || tooDeep(data, 4) {
		return h, errJWTHeader
	}
	it := objectMembers(data, start, 1)
	var err error
	var seen [8]string
	n := 0
	for it.next() {
		name := string(it.name)
		if it.special {
			name = it.decodedName()
		}
		for _, s := range seen[:min(n, len(seen))] {
			if s == name {
				return h, errJWTHeader
			}
		}
		if n >= len(seen) {
			// A header of more than a few members is no access token's:
			// names beyond these are not checked for repeats, so refuse.
			return h, errJWTHeader
		}
		seen[n] = name
		n++
		str := func(dst *string) error {
			s, err := unquote(it.value)
			if err != nil {
				return errJWTHeader
			}
			*dst = s
			return nil
		}
		switch name {
		case "alg":
			err = str(&h.alg)
		case "typ":
			h.hasTyp = true
			err = str(&h.typ)
		case "kid":
			err = str(&h.kid)
		case "crit", "b64":
			h.crit = true
		case "enc":
			h.encrypted = true
		case "cty", "zip":
			h.nested = true
		}
		if err != nil {
			return h, err
		}
	}
	if it.bad || skipSpace(data, it.i) != len(data) {
		return h, errJWTHeader
	}
	return h, nil
}

// checkHeader applies the header rules.
func (v *JWTValidator) checkHeader(h tokenHeader) error {
	switch {
	case h.encrypted:
		return errJWTEncrypted
	case h.crit:
		return errJWTCrit
	case h.nested:
		return errJWTNested
	case !v.typOK(h):
		return errJWTTyp
	}
	for _, a := range v.algs {
		if a == h.alg {
			return nil
		}
	}
	return errJWTAlg
}

// typOK applies RFC 9068 §4 (typ at+jwt, application/ optional, letter
// case ignored as for media types), or accepts JWT or no typ too with
// WithPlainJWT.
func (v *JWTValidator) typOK(h tokenHeader) bool {
	t := h.typ
	if len(t) > 12 && strings.EqualFold(t[:12], "application/") {
		t = t[12:]
	}
	switch {
	case strings.EqualFold(t, "at+jwt"):
		return true
	case v.plain:
		return !h.hasTyp || strings.EqualFold(t, "jwt")
	}
	return false
}

// tooDeep reports whether JSON data nests arrays and objects deeper than
// max (a cheap scan; the parser checks the rest).
func tooDeep(data []byte, max int) bool {
	depth := 0
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case in:
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
		case c == '"':
			in = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// parseClaims decodes a JWT claims set with the parser of introspection
// answers: registered members typed, others in Extra, a member given twice
// refused. An "active" claim has no meaning in a JWT: it goes to Extra.
func parseClaims(body []byte) (*Introspection, error) {
	raws, extra, err := scanMembers(body, true)
	if err != nil {
		return nil, err
	}
	raws[memberActive] = []byte("true")
	return fromRaw(&raws, extra)
}

// verify checks the signature of input (header.payload) against the issuer's
// keys.
// buf holds room for the decoded signature.
func (v *JWTValidator) verify(ctx context.Context, p *provider, input, sig, buf []byte, h tokenHeader) error {
	idx, err := p.keyIndex(ctx, false)
	if err != nil {
		return err
	}
	if !idx.has(h.kid, h.alg) {
		// An unknown kid (a rotation, or a forgery): one refresh, at most
		// once per refresh limit whatever the number of such tokens.
		idx, err = p.keyIndex(ctx, true)
		if err != nil {
			return err
		}
		if !idx.has(h.kid, h.alg) {
			if h.kid == "" {
				return errJWTNoKey
			}
			return errJWTUnknownKey
		}
	}
	s, _, err := decodePart(buf, sig)
	if err != nil {
		return errJWTSigEncoding
	}
	tried := 0
	for i := range idx.keys {
		k := &idx.keys[i]
		if !k.fits(h.kid, h.alg) {
			continue
		}
		if k.verify(h.alg, input, s) {
			return nil
		}
		if tried++; tried == maxCandidates {
			break
		}
	}
	return errJWTBadSig
}

// keyIndex returns the verification keys of the issuer's current JWKS,
// fetching it if there is none yet, or, with force, again (rate-limited).
func (p *provider) keyIndex(ctx context.Context, force bool) (*keyIndex, error) {
	if !force {
		if ks := p.keys.current(); ks != nil {
			if idx := p.index.Load(); idx != nil && idx.set == *ks {
				return idx, nil
			}
			return p.indexOf(*ks), nil
		}
	}
	set, err := p.keySet(ctx, force)
	if set == nil || err != nil && !errors.Is(err, errRefreshLimited) {
		// No keys, or the refresh for an unknown kid failed: no verdict
		// is possible.
		return nil, discoveryError(err)
	}
	return p.indexOf(set), nil
}

// indexOf returns the index of set, building and keeping it if it is not
// the one kept.
func (p *provider) indexOf(set jwk.Set) *keyIndex {
	if idx := p.index.Load(); idx != nil && idx.set == set {
		return idx
	}
	idx := newKeyIndex(set)
	p.index.Store(idx)
	return idx
}

// keyIndex holds the usable public keys of a JWKS, exported once.
type keyIndex struct {
	set  jwk.Set
	keys []verifyKey
}

type verifyKey struct {
	kid string
	alg string // the JWK's own "alg"; "" when it names none
	pub crypto.PublicKey
}

func newKeyIndex(set jwk.Set) *keyIndex {
	idx := &keyIndex{set: set}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			continue
		}
		vk := verifyKey{}
		vk.kid, _ = k.KeyID()
		if a, ok := k.Algorithm(); ok {
			vk.alg = a.String()
		}
		switch pub := raw.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				continue // too weak to prove anything
			}
			vk.pub = pub
		case *ecdsa.PublicKey:
			vk.pub = pub
		case ed25519.PublicKey:
			vk.pub = pub
		default:
			continue
		}
		idx.keys = append(idx.keys, vk)
	}
	return idx
}

// maxCandidates bounds the keys a signature is tried with, when the token
// names no kid.
const maxCandidates = 8

// has reports whether a key of the index may have made a signature with
// alg and the header's kid.
func (idx *keyIndex) has(kid, alg string) bool {
	for i := range idx.keys {
		if idx.keys[i].fits(kid, alg) {
			return true
		}
	}
	return false
}

// fits reports whether k may have made a signature with alg: it is the key
// with kid, or any key when there is no kid, of a type that suits alg. A key
// whose own alg differs is never used.
func (k *verifyKey) fits(kid, alg string) bool {
	return (kid == "" || k.kid == kid) && (k.alg == "" || k.alg == alg) && k.suits(alg)
}

// suits reports whether the key's type (and curve) fits alg.
func (k *verifyKey) suits(alg string) bool {
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		c, _ := ecCurve(alg)
		return c != nil && pub.Curve == c
	case ed25519.PublicKey:
		return isEdDSA(alg)
	}
	return false
}

func ecCurve(alg string) (elliptic.Curve, crypto.Hash) {
	switch alg {
	case "ES256":
		return elliptic.P256(), crypto.SHA256
	case "ES384":
		return elliptic.P384(), crypto.SHA384
	case "ES512":
		return elliptic.P521(), crypto.SHA512
	}
	return nil, 0
}

func algHash(alg string) crypto.Hash {
	switch alg[len(alg)-3:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return 0
}

// verify checks sig over input with the key for alg, which suits it.
func (k *verifyKey) verify(alg string, input, sig []byte) bool {
	if isEdDSA(alg) {
		pub, ok := k.pub.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, input, sig)
	}
	hf := algHash(alg)
	var sum [sha512.Size]byte
	var digest []byte
	switch hf {
	case crypto.SHA256:
		s := sha256.Sum256(input)
		digest = append(sum[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(input)
		digest = append(sum[:0], s[:]...)
	case crypto.SHA512:
		s := sha512.Sum512(input)
		digest = append(sum[:0], s[:]...)
	default:
		return false
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(pub, hf, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, hf, digest, sig) == nil
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	}
	return false
}
