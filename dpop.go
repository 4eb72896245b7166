package introspect

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DPoP errors. [DPoPVerifier.Verify] returns errors that match
// ErrInvalidDPoPProof (RFC 9449 §7.1 error code invalid_dpop_proof), except
// a key that is not the one the token is bound to ([ErrDPoPKeyMismatch]) and
// a missing or stale nonce (a [*DPoPNonceError], error code use_dpop_nonce).
// Each matches [ErrInactiveToken], so [StatusCode] maps it to 401. Their text
// names the rule that failed, never a value the client chose: not the proof,
// the token, a claim or a header.
var (
	// ErrInvalidDPoPProof: the request's DPoP proof is missing, malformed or
	// fails a check of RFC 9449 §4.3.
	ErrInvalidDPoPProof = fmt.Errorf("%w: invalid DPoP proof", ErrInactiveToken)
	// ErrDPoPKeyMismatch: the proof is valid but signed with another key than
	// the one the token is bound to (cnf.jkt).
	ErrDPoPKeyMismatch = fmt.Errorf("%w: DPoP proof key does not match the token's binding", ErrTokenBinding)
	// ErrUseDPoPNonce: server nonces are on and the proof carries no nonce,
	// or one that is not current. The concrete error is a [*DPoPNonceError].
	ErrUseDPoPNonce = fmt.Errorf("%w: a DPoP nonce is required", ErrInvalidDPoPProof)
)

// DPoPNonceError is the error of a proof without a current server nonce
// (RFC 9449 §8, §9): the answer sends Nonce in a DPoP-Nonce header with
// error="use_dpop_nonce", and the client retries with it.
type DPoPNonceError struct {
	// Nonce is a fresh nonce for the client: the server's value, not a secret.
	Nonce string
}

// Error names the rule: a DPoP nonce is required. The nonce is not part of it.
func (e *DPoPNonceError) Error() string { return ErrUseDPoPNonce.Error() }

// Unwrap makes a DPoPNonceError match [ErrUseDPoPNonce] and
// [ErrInvalidDPoPProof].
func (e *DPoPNonceError) Unwrap() error { return ErrUseDPoPNonce }

// dpopRule is the error of a failed rule: ErrInvalidDPoPProof and the
// rule's name, in the package's words.
func dpopRule(rule string) error { return fmt.Errorf("%w: %s", ErrInvalidDPoPProof, rule) }

// The rules of Verify, each with its error. They are made once: a refusal
// allocates nothing.
var (
	errDPoPNotMade      = dpopRule("verifier not made by NewDPoPVerifier")
	errDPoPNoRequest    = dpopRule("no request")
	errDPoPMissing      = dpopRule("no DPoP header")
	errDPoPTwice        = dpopRule("more than one DPoP header")
	errDPoPTooLarge     = dpopRule("proof too large")
	errDPoPNotJWS       = dpopRule("not a compact JWS")
	errDPoPHeader       = dpopRule("header is not a base64url-encoded JSON object")
	errDPoPHeaderTwice  = dpopRule("a header parameter is given twice")
	errDPoPTyp          = dpopRule("typ is not dpop+jwt")
	errDPoPCrit         = dpopRule("critical header parameters are not supported")
	errDPoPAlg          = dpopRule("algorithm not allowed")
	errDPoPNoJWK        = dpopRule("no jwk header parameter")
	errDPoPJWK          = dpopRule("jwk is not a valid public key")
	errDPoPPrivate      = dpopRule("jwk holds private key material")
	errDPoPKeyType      = dpopRule("jwk key type or curve not supported")
	errDPoPRSASize      = dpopRule("RSA key shorter than 2048 bits or longer than 8192")
	errDPoPKeyAlg       = dpopRule("jwk does not suit the algorithm")
	errDPoPSignature    = dpopRule("bad signature")
	errDPoPClaims       = dpopRule("claims are not a base64url-encoded JSON object")
	errDPoPClaimTwice   = dpopRule("a claim is given twice")
	errDPoPHTM          = dpopRule("htm does not match the request method")
	errDPoPNoHTM        = dpopRule("htm missing or not a string")
	errDPoPNoHTU        = dpopRule("htu missing or not a string")
	errDPoPHTU          = dpopRule("htu does not match the request URL")
	errDPoPHTUUserinfo  = dpopRule("htu has user information")
	errDPoPHTUFragment  = dpopRule("htu has a fragment")
	errDPoPHTUInvalid   = dpopRule("htu is not an absolute http or https URL")
	errDPoPRequestURL   = dpopRule("the request URL cannot be compared")
	errDPoPNoIat        = dpopRule("iat missing or not a number")
	errDPoPStale        = dpopRule("iat is too old")
	errDPoPFuture       = dpopRule("iat is in the future")
	errDPoPNoAth        = dpopRule("ath missing or not a string")
	errDPoPAth          = dpopRule("ath does not match the access token")
	errDPoPNoJTI        = dpopRule("jti missing, empty or not a string")
	errDPoPJTILong      = dpopRule("jti too long")
	errDPoPNonceInvalid = dpopRule("nonce is not a string")
	errDPoPReplay       = dpopRule("proof replayed")
)

// dpopCacheError is the error of a failing replay cache: the proof fails,
// with the package's words; the cache's error stays reachable through
// errors.Is and errors.As, but its text is not repeated.
type dpopCacheError struct{ cause error }

func (e *dpopCacheError) Error() string {
	return ErrInvalidDPoPProof.Error() + ": replay cache failed"
}

func (e *dpopCacheError) Unwrap() []error { return []error{ErrInvalidDPoPProof, e.cause} }

// Defaults of [NewDPoPVerifier] and [NewDPoPMemoryReplayCache].
const (
	// DefaultDPoPReplayCacheSize is the number of proofs the default replay
	// cache remembers.
	DefaultDPoPReplayCacheSize = 100_000

	defaultDPoPProofLifetime = 5 * time.Minute
	defaultDPoPLeeway        = 5 * time.Second
	defaultDPoPMaxProofSize  = 8 << 10
	maxDPoPProofLifetime     = time.Hour
	maxDPoPLeeway            = 5 * time.Minute
	minDPoPProofSize         = 512
	maxDPoPProofSize         = 64 << 10
	minDPoPNonceSecret       = 32
	minDPoPNoncePeriod       = time.Second
	maxDPoPNoncePeriod       = 24 * time.Hour
	// maxDPoPJTI bounds the length of a jti: 96 random bits (RFC 9449
	// §4.2) take 16 characters in base64url, a UUID 36.
	maxDPoPJTI = 256
	// dpopRecordMargin is the least added to a record's end, past the end
	// of the window in which its proof is accepted; the leeway when longer,
	// so that replicas sharing a replay cache whose clocks differ by up to
	// the leeway never accept a proof another one recorded and dropped.
	dpopRecordMargin = time.Second
)

// dpopKeyKind is the JWK key type of a DPoP key.
type dpopKeyKind uint8

const (
	kindEC dpopKeyKind = iota + 1
	kindOKP
	kindRSA
)

// dpopAlg is a signature algorithm accepted for proofs.
type dpopAlg struct {
	name string
	kind dpopKeyKind
	crv  string      // the curve, for EC and OKP keys
	hash crypto.Hash // 0 for EdDSA
	pss  bool
}

// dpopAlgs are the algorithms a verifier may accept, in the order of the
// default list.
var dpopAlgs = []dpopAlg{
	{name: "ES256", kind: kindEC, crv: "P-256", hash: crypto.SHA256},
	{name: "ES384", kind: kindEC, crv: "P-384", hash: crypto.SHA384},
	{name: "ES512", kind: kindEC, crv: "P-521", hash: crypto.SHA512},
	{name: "PS256", kind: kindRSA, hash: crypto.SHA256, pss: true},
	{name: "PS384", kind: kindRSA, hash: crypto.SHA384, pss: true},
	{name: "PS512", kind: kindRSA, hash: crypto.SHA512, pss: true},
	{name: "RS256", kind: kindRSA, hash: crypto.SHA256},
	{name: "RS384", kind: kindRSA, hash: crypto.SHA384},
	{name: "RS512", kind: kindRSA, hash: crypto.SHA512},
	{name: "EdDSA", kind: kindOKP, crv: "Ed25519"},
	{name: "Ed25519", kind: kindOKP, crv: "Ed25519"}, // RFC 9864
}

// DPoPVerifier checks DPoP proofs (RFC 9449 §4.3): the proof of possession
// of a key that a client sends with each request in a DPoP header, signed
// with that key, for that request (method and URL), at that time, for that
// access token. It is usable alone, as a resource server's own check or at a
// token endpoint, and is what the middleware uses for DPoP tokens. Safe for
// concurrent use; immutable after [NewDPoPVerifier]. Its printed forms show
// its settings, never the nonce secret.
//
// # Comparing htu
//
// The htu claim is compared with the URL of the request, without query,
// after RFC 3986 syntax- and scheme-based normalisation on both sides: scheme
// and host in lower case, the default port (80 for http, 443 for https) and
// an empty port removed, an empty path made "/", percent-encodings in upper
// case, percent-encoded unreserved characters (letters, digits, "-", ".",
// "_", "~") decoded, and characters that a URI does not allow as they are
// percent-encoded. Dot segments ("/a/../b") are not removed: not every
// router resolves them, so "/a/../b" may reach another handler than "/b",
// and a proof made for one must not pass for the other. An htu with user
// information or a fragment is refused; its query is ignored. The URL of the
// request is the scheme of its connection (https when r.TLS is set, else
// http), r.Host and the request's escaped path, or, with
// [WithDPoPExternalURL], one of its base URLs and the escaped path:
// X-Forwarded headers are never read.
type DPoPVerifier struct {
	algs     []dpopAlg
	lifetime time.Duration
	leeway   time.Duration
	replay   DPoPReplayCache
	nonces   *dpopNonces // nil: nonces off
	bases    []string    // normalised external URLs without a trailing "/"; none: the request's
	maxSize  int
	now      func() time.Time
	keys     *dpopKeyCache
}

// DPoPOption configures [NewDPoPVerifier].
type DPoPOption func(*dpopConfig)

type dpopConfig struct {
	algs        []dpopAlg
	lifetime    time.Duration
	leeway      time.Duration
	replay      DPoPReplayCache
	nonceSecret []byte
	noncePeriod time.Duration
	bases       []string
	maxSize     int
	now         func() time.Time
	errs        []error
}

func (c *dpopConfig) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("introspect: "+format, args...))
}

// WithDPoPAlgorithms sets the signature algorithms accepted for proofs, in
// the order [DPoPVerifier.Algorithms] lists them. Each must be one of ES256,
// ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512, EdDSA (Ed25519)
// and Ed25519 (its fully-specified name, RFC 9864): none and the HMAC
// algorithms are refused, since a proof must be signed with a private key
// whose public half it carries; so is any other name, and an empty list.
// Default: all eleven, in that order.
func WithDPoPAlgorithms(algs ...string) DPoPOption {
	return func(c *dpopConfig) {
		if len(algs) == 0 {
			c.fail("WithDPoPAlgorithms: no algorithm")
			return
		}
		list := make([]dpopAlg, 0, len(algs))
		ok := true
		for _, a := range algs {
			i := slices.IndexFunc(dpopAlgs, func(d dpopAlg) bool { return d.name == a })
			switch {
			case slices.ContainsFunc(refusedAlgs, func(r string) bool { return strings.EqualFold(r, a) }):
				c.fail("WithDPoPAlgorithms: %s is never accepted for DPoP proofs: a proof is signed with an asymmetric key", sanitize(a, 16))
				ok = false
			case i < 0:
				c.fail("WithDPoPAlgorithms: unknown algorithm %q (want one of %s)", sanitize(a, 32), strings.Join(dpopAlgNames(dpopAlgs), ", "))
				ok = false
			case !slices.ContainsFunc(list, func(d dpopAlg) bool { return d.name == a }):
				list = append(list, dpopAlgs[i])
			}
		}
		if ok {
			c.algs = list
		}
	}
}

// WithDPoPProofLifetime sets how old a proof's iat may be, up to an hour: a
// proof is made for one request and sent at once (RFC 9449 §11.1 suggests
// seconds to minutes), and the replay cache remembers each proof this long.
// Default 5 minutes.
func WithDPoPProofLifetime(d time.Duration) DPoPOption {
	return func(c *dpopConfig) {
		if d <= 0 || d > maxDPoPProofLifetime {
			c.fail("WithDPoPProofLifetime: %v is not between 0 and %v", d, maxDPoPProofLifetime)
			return
		}
		c.lifetime = d
	}
}

// WithDPoPLeeway sets how far in the future a proof's iat may be, for
// clients whose clocks are ahead, up to 5 minutes. A proof's replay record
// is kept that long past the proof's lifetime too (at least a second), for
// replicas sharing a replay cache whose clocks differ. Default 5 seconds.
func WithDPoPLeeway(d time.Duration) DPoPOption {
	return func(c *dpopConfig) {
		if d < 0 || d > maxDPoPLeeway {
			c.fail("WithDPoPLeeway: %v is not between 0 and %v", d, maxDPoPLeeway)
			return
		}
		c.leeway = d
	}
}

// WithDPoPReplayCache sets where proofs are remembered, for a store shared
// by replicas: a proof replayed to another replica is caught only if they
// share it. Default: a [DPoPMemoryReplayCache] of
// [DefaultDPoPReplayCacheSize] proofs, on the verifier's clock.
func WithDPoPReplayCache(cache DPoPReplayCache) DPoPOption {
	return func(c *dpopConfig) {
		if cache == nil {
			c.fail("WithDPoPReplayCache: nil cache")
			return
		}
		c.replay = cache
	}
}

// WithDPoPNonces turns server nonces on (RFC 9449 §9): a proof must carry a
// nonce the verifier made ([DPoPVerifier.Nonce]) in the current period or
// the one before, so a nonce lasts between period and twice period. A proof
// without one fails with a [*DPoPNonceError] holding a fresh nonce. Nonces
// are stateless: the period's number and an HMAC-SHA-256 of it under secret,
// so replicas sharing secret (at least 32 random bytes, copied) and
// synchronised clocks accept each other's nonces. period is between a second
// and a day. Default off.
func WithDPoPNonces(secret []byte, period time.Duration) DPoPOption {
	return func(c *dpopConfig) {
		ok := true
		if len(secret) < minDPoPNonceSecret {
			c.fail("WithDPoPNonces: the secret has %d bytes, fewer than %d", len(secret), minDPoPNonceSecret)
			ok = false
		}
		if period < minDPoPNoncePeriod || period > maxDPoPNoncePeriod {
			c.fail("WithDPoPNonces: period %v is not between %v and %v", period, minDPoPNoncePeriod, maxDPoPNoncePeriod)
			ok = false
		}
		if ok {
			c.nonceSecret, c.noncePeriod = slices.Clone(secret), period
		}
	}
}

// WithDPoPExternalURL sets the URLs clients use to reach the server: htu
// is compared with each base followed by the request's escaped path, and
// must match one. Each base is an absolute http or https URL without user
// information, query or fragment; a path in it is the prefix a proxy in
// front strips ("https://example.com/api" for requests to /users reaching
// the server as /users). Default: the scheme of the request's connection
// (https when r.TLS is set, else http) and r.Host; forwarded headers are
// never read.
//
// Set it in production. Without it the host of htu is the request's Host
// header, which the client chooses: a proof made for another server
// (another resource server that takes the same tokens, another region)
// passes here when it is sent with that server's name in Host, and this
// server's replay cache has not seen it. With it, only proofs made for
// these URLs pass.
func WithDPoPExternalURL(base string, more ...string) DPoPOption {
	return func(c *dpopConfig) {
		c.bases = nil
		for _, b := range append([]string{base}, more...) {
			norm, err := normaliseBase(b)
			if err != nil {
				c.errs = append(c.errs, err)
				continue
			}
			if !slices.Contains(c.bases, norm) {
				c.bases = append(c.bases, norm)
			}
		}
	}
}

// WithDPoPMaxProofSize sets the largest DPoP header accepted, in bytes,
// between 512 and 64 KiB. A proof with an RSA key of 4096 bits takes about
// 2 KiB. Default 8 KiB.
func WithDPoPMaxProofSize(n int) DPoPOption {
	return func(c *dpopConfig) {
		if n < minDPoPProofSize || n > maxDPoPProofSize {
			c.fail("WithDPoPMaxProofSize: %d is not between %d and %d", n, minDPoPProofSize, maxDPoPProofSize)
			return
		}
		c.maxSize = n
	}
}

// WithDPoPClock sets the clock proofs' iat and nonces are checked against;
// the default replay cache uses it too (a cache given with
// [WithDPoPReplayCache] keeps its own). Default time.Now.
func WithDPoPClock(now func() time.Time) DPoPOption {
	return func(c *dpopConfig) {
		if now == nil {
			c.fail("WithDPoPClock: nil clock")
			return
		}
		c.now = now
	}
}

// NewDPoPVerifier returns a verifier of DPoP proofs. Every mistake in the
// options is an error here, all of them joined.
func NewDPoPVerifier(opts ...DPoPOption) (*DPoPVerifier, error) {
	cfg := dpopConfig{
		algs:     dpopAlgs,
		lifetime: defaultDPoPProofLifetime,
		leeway:   defaultDPoPLeeway,
		maxSize:  defaultDPoPMaxProofSize,
		now:      time.Now,
	}
	for _, o := range opts {
		if o == nil {
			cfg.fail("NewDPoPVerifier: nil option")
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	v := &DPoPVerifier{
		algs:     slices.Clone(cfg.algs),
		lifetime: cfg.lifetime,
		leeway:   cfg.leeway,
		replay:   cfg.replay,
		bases:    cfg.bases,
		maxSize:  cfg.maxSize,
		now:      cfg.now,
		keys:     newDPoPKeyCache(),
	}
	if v.replay == nil {
		c, _ := NewDPoPMemoryReplayCache(DefaultDPoPReplayCacheSize) // the size is valid
		c.now = cfg.now
		v.replay = c
	}
	if cfg.nonceSecret != nil {
		v.nonces = &dpopNonces{secret: cfg.nonceSecret, period: cfg.noncePeriod}
	}
	return v, nil
}

func dpopAlgNames(algs []dpopAlg) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = a.name
	}
	return names
}

// Algorithms returns the accepted algorithms, for the "algs" attribute of a
// DPoP challenge (RFC 9449 §7.1) and dpop_signing_alg_values_supported in
// metadata (RFC 9728). The slice is the caller's.
func (v *DPoPVerifier) Algorithms() []string {
	if v == nil {
		return nil
	}
	return dpopAlgNames(v.algs)
}

// Nonce returns a fresh server nonce for a DPoP-Nonce header, or "" when
// nonces are off ([WithDPoPNonces]).
func (v *DPoPVerifier) Nonce() string {
	if v == nil || v.nonces == nil {
		return ""
	}
	return v.nonces.at(v.now()).cur
}

// Verify checks the DPoP proof of r for accessToken (RFC 9449 §4.3), each
// rule with its own error:
//
//   - exactly one DPoP header, of at most [WithDPoPMaxProofSize] bytes;
//   - a compact JWS whose header is a JSON object with typ dpop+jwt
//     (application/dpop+jwt too, case aside), no crit, an accepted alg
//     ([WithDPoPAlgorithms]) and a jwk: a public key (no d, p, q, dp, dq, qi,
//     oth or k member) of a type and curve that suit alg (P-256, P-384 and
//     P-521 for ES256, ES384 and ES512, Ed25519 for EdDSA and Ed25519, RSA of 2048 to
//     8192 bits for the others), in canonical form (coordinates of full
//     length, no leading zeros in n and e), with no jwk alg other than alg,
//     that verifies the signature (PSS salts of any length);
//   - claims that are a JSON object with htm equal to r.Method (GET when
//     empty, as net/http has it); htu equal to
//     the request's URL as [DPoPVerifier] describes; a numeric iat at most
//     [WithDPoPProofLifetime] old and at most [WithDPoPLeeway] ahead; when
//     accessToken is not "", ath equal to the base64url SHA-256 of
//     accessToken; a non-empty string jti of at most 256 bytes; with
//     [WithDPoPNonces], a current nonce. A header parameter or claim read
//     here and given twice is refused, whatever its values.
//   - when boundJKT is not "", the proof's key has that thumbprint (compared
//     in constant time), checked before the proof is recorded, so proofs
//     made with other keys cannot fill the replay cache;
//   - the proof was not seen before: the replay cache records SHA-256 over
//     the key's thumbprint and the jti until the proof's iat plus its
//     lifetime. A failing cache fails the proof.
//
// It returns the RFC 7638 SHA-256 thumbprint (base64url) of the proof's key.
// Errors match [ErrInvalidDPoPProof], except [ErrDPoPKeyMismatch] and
// [*DPoPNonceError]; the error of a failing cache matches the cache's error
// too. ctx goes to the replay cache.
func (v *DPoPVerifier) Verify(ctx context.Context, r *http.Request, accessToken, boundJKT string) (jkt string, err error) {
	if v == nil || v.replay == nil || v.keys == nil {
		return "", errDPoPNotMade
	}
	if r == nil {
		return "", errDPoPNoRequest
	}
	proof, err := dpopHeader(r.Header)
	if err != nil {
		return "", err
	}
	if len(proof) > v.maxSize {
		return "", errDPoPTooLarge
	}
	dot1 := strings.IndexByte(proof, '.')
	if dot1 <= 0 {
		return "", errDPoPNotJWS
	}
	dot2 := strings.IndexByte(proof[dot1+1:], '.') + dot1 + 1
	if dot2 <= dot1+1 || dot2 == len(proof)-1 || strings.IndexByte(proof[dot2+1:], '.') >= 0 {
		return "", errDPoPNotJWS
	}

	// The proof as bytes, then its decoded header, claims and signature,
	// then room for a digest and a DER signature, later for a copy of the
	// access token, in one buffer. The crypto packages keep none of it.
	need := 2*len(proof) + max(dpopScratch, len(accessToken))
	pooled := dpopBuffers.Get().(*[]byte)
	defer dpopBuffers.Put(pooled)
	buf := (*pooled)[:0]
	if need > cap(buf) {
		buf = make([]byte, 0, need)
	}
	buf = append(buf, proof...)
	raw := buf[:len(proof)]
	input := raw[:dot2] // the signing input
	var ok bool
	start := len(buf)
	if buf, ok = appendBase64URL(buf, raw[:dot1]); !ok {
		return "", errDPoPHeader
	}
	header := buf[start:]
	start = len(buf)
	if buf, ok = appendBase64URL(buf, raw[dot1+1:dot2]); !ok {
		return "", errDPoPClaims
	}
	payload := buf[start:]
	start = len(buf)
	if buf, ok = appendBase64URL(buf, raw[dot2+1:]); !ok {
		return "", errDPoPSignature
	}
	sig := buf[start:]
	scratch := buf[len(buf):cap(buf)]

	h, err := parseDPoPHeader(header)
	if err != nil {
		return "", err
	}
	alg, err := v.checkHeader(&h)
	if err != nil {
		return "", err
	}
	key, cached := v.keys.get(h.jwk)
	if !cached {
		if key, err = parseDPoPJWK(h.jwk); err != nil {
			return "", err
		}
	}
	if !key.suits(alg) {
		return "", errDPoPKeyAlg
	}
	if !key.verify(alg, input, sig, scratch) {
		return "", errDPoPSignature
	}
	if !cached {
		v.keys.put(h.jwk, key)
	}

	c, err := parseDPoPClaims(payload)
	if err != nil {
		return "", err
	}
	now := v.now()
	iat, err := v.checkClaims(&c, r, accessToken, now, scratch)
	if err != nil {
		return "", err
	}
	if v.nonces != nil {
		if err := v.nonces.check(c.nonce, now); err != nil {
			return "", err
		}
	}
	if boundJKT != "" && subtle.ConstantTimeCompare([]byte(key.jkt), []byte(boundJKT)) != 1 {
		return "", ErrDPoPKeyMismatch
	}
	seen, err := v.replay.Seen(ctx, replayKey(key.jkt, c.jti), iat.Add(v.lifetime+max(dpopRecordMargin, v.leeway)))
	switch {
	case err != nil:
		return "", &dpopCacheError{cause: err}
	case seen:
		return "", errDPoPReplay
	}
	return key.jkt, nil
}

// dpopHeader returns the one DPoP header of h.
func dpopHeader(h http.Header) (string, error) {
	vals := h["Dpop"] // http.CanonicalHeaderKey("DPoP")
	switch {
	case len(vals) == 0 || len(vals) == 1 && vals[0] == "":
		return "", errDPoPMissing
	case len(vals) > 1:
		return "", errDPoPTwice
	}
	return vals[0], nil
}

// checkHeader applies the header rules and returns the proof's algorithm.
func (v *DPoPVerifier) checkHeader(h *dpopHeaderParams) (*dpopAlg, error) {
	typ, ok := jsonText(h.typ)
	if !ok || !asciiEqualFold(string(typ), "dpop+jwt") && !asciiEqualFold(string(typ), "application/dpop+jwt") {
		return nil, errDPoPTyp
	}
	if h.crit != nil {
		return nil, errDPoPCrit
	}
	name, ok := jsonText(h.alg)
	if !ok {
		return nil, errDPoPAlg
	}
	var alg *dpopAlg
	for i := range v.algs {
		if v.algs[i].name == string(name) {
			alg = &v.algs[i]
			break
		}
	}
	if alg == nil {
		return nil, errDPoPAlg
	}
	if h.jwk == nil {
		return nil, errDPoPNoJWK
	}
	if h.jwk[0] != '{' {
		return nil, errDPoPJWK
	}
	return alg, nil
}

// checkClaims applies the rules of htm, htu, iat, ath and jti, and returns
// iat. scratch has room for a copy of accessToken.
func (v *DPoPVerifier) checkClaims(c *dpopClaims, r *http.Request, accessToken string, now time.Time, scratch []byte) (time.Time, error) {
	method := r.Method
	if method == "" { // net/http's spelling of GET
		method = http.MethodGet
	}
	htm, ok := jsonText(c.htm)
	switch {
	case !ok:
		return time.Time{}, errDPoPNoHTM
	case string(htm) != method:
		return time.Time{}, errDPoPHTM
	}
	htu, ok := jsonText(c.htu)
	if !ok {
		return time.Time{}, errDPoPNoHTU
	}
	if err := v.checkHTU(htu, r); err != nil {
		return time.Time{}, err
	}
	if c.iat == nil || c.iat[0] == '"' {
		return time.Time{}, errDPoPNoIat
	}
	iat, err := numericDate("iat", c.iat)
	switch {
	case err != nil:
		return time.Time{}, errDPoPNoIat
	case iat.Sub(now) > v.leeway:
		return time.Time{}, errDPoPFuture
	case now.Sub(iat) > v.lifetime:
		return time.Time{}, errDPoPStale
	}
	if accessToken != "" {
		ath, ok := jsonText(c.ath)
		if !ok {
			return time.Time{}, errDPoPNoAth
		}
		sum := sha256.Sum256(append(scratch[:0], accessToken...))
		var want [43]byte
		base64.RawURLEncoding.Encode(want[:], sum[:])
		if subtle.ConstantTimeCompare(ath, want[:]) != 1 {
			return time.Time{}, errDPoPAth
		}
	}
	jti, ok := jsonText(c.jti)
	switch {
	case !ok || len(jti) == 0:
		return time.Time{}, errDPoPNoJTI
	case len(jti) > maxDPoPJTI:
		return time.Time{}, errDPoPJTILong
	}
	c.jti = jti
	return iat, nil
}

// checkHTU compares htu with the URL of r, both normalised: with external
// URLs, with each of them followed by r's path, until one matches.
func (v *DPoPVerifier) checkHTU(htu []byte, r *http.Request) error {
	var a, b [512]byte
	got, err := appendHTU(a[:0], htu)
	if err != nil {
		return err
	}
	path := ""
	if r.URL != nil {
		path = r.URL.EscapedPath()
	}
	for _, base := range v.bases {
		if want, ok := appendPath(append(b[:0], base...), path); ok && bytes.Equal(got, want) {
			return nil
		}
	}
	if len(v.bases) > 0 {
		return errDPoPHTU
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}
	want, err := appendOrigin(b[:0], scheme, host)
	if err != nil {
		return errDPoPRequestURL
	}
	if want, ok := appendPath(want, path); !ok || !bytes.Equal(got, want) {
		return errDPoPHTU
	}
	return nil
}

// dpopScratch is the room verify needs past the decoded proof: a digest and
// a DER signature.
const dpopScratch = sha512.Size + 2*66 + 16

// dpopBuffers holds the buffers of Verify, large enough for most proofs.
var dpopBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// replayKey is SHA-256 over the thumbprint and the jti, each
// length-prefixed.
func replayKey(jkt string, jti []byte) [32]byte {
	var stack [4 + 64 + 4 + maxDPoPJTI]byte
	b := binary.BigEndian.AppendUint32(stack[:0], uint32(len(jkt)))
	b = append(b, jkt...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(jti)))
	b = append(b, jti...)
	return sha256.Sum256(b)
}

// dpopHeaderParams are the raw values (valid JSON, nil if absent) of the
// header parameters Verify reads.
type dpopHeaderParams struct {
	typ, alg, jwk, crit []byte
}

// parseDPoPHeader reads the JOSE header of a proof. A parameter read here
// that is given twice is refused; others are ignored.
func parseDPoPHeader(data []byte) (dpopHeaderParams, error) {
	var v [4][]byte
	ok, twice := pickMembers(data, 1, []string{"typ", "alg", "jwk", "crit"}, v[:])
	switch {
	case !ok:
		return dpopHeaderParams{}, errDPoPHeader
	case twice:
		return dpopHeaderParams{}, errDPoPHeaderTwice
	}
	return dpopHeaderParams{typ: v[0], alg: v[1], jwk: v[2], crit: v[3]}, nil
}

// dpopClaims are the raw values of the claims Verify reads; jti is
// replaced by its text once checked.
type dpopClaims struct {
	jti, htm, htu, iat, ath, nonce []byte
}

// parseDPoPClaims reads the claims of a proof. A claim read here that is
// given twice is refused; others are ignored.
func parseDPoPClaims(data []byte) (dpopClaims, error) {
	var v [6][]byte
	ok, twice := pickMembers(data, 1, []string{"jti", "htm", "htu", "iat", "ath", "nonce"}, v[:])
	switch {
	case !ok:
		return dpopClaims{}, errDPoPClaims
	case twice:
		return dpopClaims{}, errDPoPClaimTwice
	}
	return dpopClaims{jti: v[0], htm: v[1], htu: v[2], iat: v[3], ath: v[4], nonce: v[5]}, nil
}

// pickMembers walks the JSON object data, at nesting depth depth, and puts
// the raw value of the member named names[i] (compared as decoded) in
// vals[i]. It reports whether data is a JSON object with only white space
// around it, and whether one of names is given twice.
func pickMembers(data []byte, depth int, names []string, vals [][]byte) (ok, twice bool) {
	start := skipSpace(data, 0)
	if start == len(data) || data[start] != '{' {
		return false, false
	}
	it := objectMembers(data, start, depth)
	for it.next() {
		name := it.name
		if it.special {
			name = []byte(it.decodedName())
		}
		for i, n := range names {
			if string(name) == n {
				twice = twice || vals[i] != nil
				vals[i] = it.value
				break
			}
		}
	}
	return !it.bad && skipSpace(data, it.i) == len(data), twice
}

// jsonText returns the text of a JSON string value, and false for any
// other value or none. Without escapes it is the bytes between the quotes.
func jsonText(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return in, true
	}
	s, err := unquote(v)
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// b64url maps the base64url alphabet to its values, 0xff elsewhere.
var b64url = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// appendBase64URL appends the decoding of src, unpadded base64url, to dst,
// and reports false for anything else: padding, another alphabet, a
// length that no encoding has, or non-zero trailing bits (so that one value
// has one encoding).
func appendBase64URL(dst, src []byte) ([]byte, bool) {
	if len(src)%4 == 1 {
		return dst, false
	}
	i := 0
	for ; len(src)-i >= 4; i += 4 {
		a, b, c, d := b64url[src[i]], b64url[src[i+1]], b64url[src[i+2]], b64url[src[i+3]]
		if a|b|c|d == 0xff {
			return dst, false
		}
		dst = append(dst, a<<2|b>>4, b<<4|c>>2, c<<6|d)
	}
	switch len(src) - i {
	case 2:
		a, b := b64url[src[i]], b64url[src[i+1]]
		if a|b == 0xff || b&0x0f != 0 {
			return dst, false
		}
		dst = append(dst, a<<2|b>>4)
	case 3:
		a, b, c := b64url[src[i]], b64url[src[i+1]], b64url[src[i+2]]
		if a|b|c == 0xff || c&0x03 != 0 {
			return dst, false
		}
		dst = append(dst, a<<2|b>>4, b<<4|c>>2)
	}
	return dst, true
}

// The htu comparison: see the doc of DPoPVerifier.

// appendHTU appends the normalised htu, without its query, to dst.
func appendHTU(dst, htu []byte) ([]byte, error) {
	if bytes.IndexByte(htu, '#') >= 0 {
		return dst, errDPoPHTUFragment
	}
	if q := bytes.IndexByte(htu, '?'); q >= 0 {
		htu = htu[:q]
	}
	colon := bytes.IndexByte(htu, ':')
	if colon < 0 || !bytes.HasPrefix(htu[colon+1:], []byte("//")) {
		return dst, errDPoPHTUInvalid
	}
	rest := htu[colon+3:]
	authority, path := rest, []byte(nil)
	if slash := bytes.IndexByte(rest, '/'); slash >= 0 {
		authority, path = rest[:slash], rest[slash:]
	}
	if bytes.IndexByte(authority, '@') >= 0 {
		return dst, errDPoPHTUUserinfo
	}
	dst, err := appendOrigin(dst, string(htu[:colon]), string(authority))
	if err != nil {
		return dst, errDPoPHTUInvalid
	}
	dst, ok := appendPath(dst, string(path))
	if !ok {
		return dst, errDPoPHTUInvalid
	}
	return dst, nil
}

var errBadOrigin = errors.New("introspect: not an http or https origin")

// appendOrigin appends scheme://host[:port] normalised: scheme and host in
// lower case, the port without leading zeros and left out when empty or
// the scheme's default. The host is a name of letters, digits, "-", ".",
// "_" and "~", or an IP literal in brackets; user information is refused.
func appendOrigin(dst []byte, scheme, authority string) ([]byte, error) {
	var def int
	switch {
	case asciiEqualFold(scheme, "https"):
		dst, def = append(dst, "https://"...), 443
	case asciiEqualFold(scheme, "http"):
		dst, def = append(dst, "http://"...), 80
	default:
		return dst, errBadOrigin
	}
	host, port := authority, ""
	hasPort := false
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return dst, errBadOrigin
		}
		host = authority[:end+1]
		switch rest := authority[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return dst, errBadOrigin
		}
		for i := 1; i < len(host)-1; i++ {
			if c := host[i]; !isHex(c) && c != ':' && c != '.' {
				return dst, errBadOrigin
			}
		}
		if len(host) < 3 {
			return dst, errBadOrigin
		}
	} else {
		if i := strings.LastIndexByte(authority, ':'); i >= 0 {
			host, port, hasPort = authority[:i], authority[i+1:], true
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isUnreserved(c) {
				return dst, errBadOrigin
			}
		}
	}
	if host == "" {
		return dst, errBadOrigin
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	if hasPort && port != "" {
		n := 0
		for i := 0; i < len(port); i++ {
			if !isDigit(port[i]) {
				return dst, errBadOrigin
			}
			if n = n*10 + int(port[i]-'0'); n > 65535 {
				return dst, errBadOrigin
			}
		}
		if n != def {
			dst = strconv.AppendInt(append(dst, ':'), int64(n), 10)
		}
	}
	return dst, nil
}

const upperHex = "0123456789ABCDEF"

// appendPath appends the path p normalised ("/" for an empty path), and
// reports false if it is not a path of an absolute URL or holds a broken
// percent-encoding.
func appendPath(dst []byte, p string) ([]byte, bool) {
	if p == "" {
		return append(dst, '/'), true
	}
	if p[0] != '/' {
		return dst, false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return dst, false
			}
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if isUnreserved(b) {
				dst = append(dst, b)
			} else {
				dst = append(dst, '%', upperHex[b>>4], upperHex[b&15])
			}
		case isPathChar(c):
			dst = append(dst, c)
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst, true
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// isUnreserved reports whether c is an unreserved character of RFC 3986.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar reports whether c stands for itself in a path: a pchar of RFC
// 3986 other than a percent-encoding, or "/".
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

// normaliseBase checks and normalises the URL of WithDPoPExternalURL; it
// is returned without a trailing "/". Errors never repeat the URL, which
// may hold user information.
func normaliseBase(base string) (string, error) {
	fail := func(why string) (string, error) {
		return "", fmt.Errorf("introspect: WithDPoPExternalURL: %s", why)
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return fail("not a URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return fail("not an absolute http or https URL")
	case u.User != nil:
		return fail("the URL has user information")
	case u.RawQuery != "" || u.ForceQuery:
		return fail("the URL has a query")
	case u.Fragment != "" || strings.Contains(base, "#"):
		return fail("the URL has a fragment")
	}
	b, err := appendOrigin(nil, u.Scheme, u.Host)
	if err != nil {
		return fail("the host is not a name or an IP literal")
	}
	if p := u.EscapedPath(); p != "" {
		if b, _ = appendPath(b, p); bytes.HasSuffix(b, []byte("/")) {
			b = b[:len(b)-1]
		}
	}
	return string(b), nil
}

// dpopKey is a parsed, checked public key of a proof and its thumbprint.
type dpopKey struct {
	kind  dpopKeyKind
	crv   string // EC and OKP
	alg   string // the jwk's own alg, or ""
	ec    *ecdsa.PublicKey
	ed    ed25519.PublicKey
	rsa   *rsa.PublicKey
	jkt   string // RFC 7638 SHA-256 thumbprint, base64url
	coord int    // length of an EC coordinate
}

// suits reports whether the key can make signatures with alg.
func (k *dpopKey) suits(alg *dpopAlg) bool {
	return k.kind == alg.kind && (alg.crv == "" || k.crv == alg.crv) && (k.alg == "" || k.alg == alg.name)
}

// pssAuto verifies PSS signatures with any salt length.
var pssAuto = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}

// verify checks sig over input with alg; the key suits alg. scratch has
// room for dpopScratch bytes.
func (k *dpopKey) verify(alg *dpopAlg, input, sig, scratch []byte) bool {
	if k.kind == kindOKP {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
	}
	var digest []byte
	switch alg.hash {
	case crypto.SHA256:
		s := sha256.Sum256(input)
		digest = append(scratch[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(input)
		digest = append(scratch[:0], s[:]...)
	default:
		s := sha512.Sum512(input)
		digest = append(scratch[:0], s[:]...)
	}
	switch {
	case k.kind == kindEC:
		if len(sig) != 2*k.coord {
			return false
		}
		der := scratch[len(digest):len(digest)]
		return ecdsa.VerifyASN1(k.ec, digest, appendECDSASignature(der, sig[:k.coord], sig[k.coord:]))
	case alg.pss:
		return rsa.VerifyPSS(k.rsa, alg.hash, digest, sig, pssAuto) == nil
	default:
		return rsa.VerifyPKCS1v15(k.rsa, alg.hash, digest, sig) == nil
	}
}

// appendECDSASignature appends the ASN.1 DER form of the signature (r, s),
// given as big-endian integers, to dst.
func appendECDSASignature(dst, r, s []byte) []byte {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	intLen := func(x []byte) int {
		if len(x) == 0 || x[0]&0x80 != 0 {
			return len(x) + 1
		}
		return len(x)
	}
	appendInt := func(dst, x []byte) []byte {
		dst = append(dst, 0x02, byte(intLen(x)))
		if len(x) == 0 || x[0]&0x80 != 0 {
			dst = append(dst, 0)
		}
		return append(dst, x...)
	}
	n := 2 + intLen(r) + 2 + intLen(s)
	dst = append(dst, 0x30)
	if n >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(n))
	return appendInt(appendInt(dst, r), s)
}

// jwkMembers are the raw values of the members of a jwk that Verify reads.
type jwkMembers struct {
	kty, crv, x, y, n, e, alg []byte
}

// jwkNames are the members of a jwk that Verify reads, then those of a
// private key (RFC 7518 §6.2.2, §6.3.2, §6.4).
var jwkNames = []string{"kty", "crv", "x", "y", "n", "e", "alg", "d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parseDPoPJWK checks a proof's jwk and returns its key and thumbprint.
func parseDPoPJWK(data []byte) (*dpopKey, error) {
	var v [15][]byte
	ok, twice := pickMembers(data, 2, jwkNames, v[:])
	if !ok || twice {
		return nil, errDPoPJWK
	}
	for _, private := range v[7:] {
		if private != nil {
			return nil, errDPoPPrivate
		}
	}
	m := jwkMembers{kty: v[0], crv: v[1], x: v[2], y: v[3], n: v[4], e: v[5], alg: v[6]}
	kty, ok := jsonText(m.kty)
	if !ok {
		return nil, errDPoPJWK
	}
	k := &dpopKey{}
	if m.alg != nil {
		alg, ok := jsonText(m.alg)
		if !ok {
			return nil, errDPoPJWK
		}
		k.alg = string(alg)
	}
	var err error
	switch string(kty) {
	case "EC":
		err = k.parseEC(&m)
	case "OKP":
		err = k.parseOKP(&m)
	case "RSA":
		err = k.parseRSA(&m)
	default:
		return nil, errDPoPKeyType
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// curveFor returns the curve named crv and the length of its coordinates.
func curveFor(crv string) (elliptic.Curve, int) {
	switch crv {
	case "P-256":
		return elliptic.P256(), 32
	case "P-384":
		return elliptic.P384(), 48
	case "P-521":
		return elliptic.P521(), 66
	}
	return nil, 0
}

func (k *dpopKey) parseEC(m *jwkMembers) error {
	crv, ok := jsonText(m.crv)
	if !ok {
		return errDPoPJWK
	}
	curve, size := curveFor(string(crv))
	if curve == nil {
		return errDPoPKeyType
	}
	x, okX := jsonText(m.x)
	y, okY := jsonText(m.y)
	if !okX || !okY {
		return errDPoPJWK
	}
	var stack [1 + 2*66]byte
	pt := append(stack[:0], 4)
	pt, okX = appendBase64URL(pt, x)
	n := len(pt)
	pt, okY = appendBase64URL(pt, y)
	if !okX || !okY || n != 1+size || len(pt) != 1+2*size {
		return errDPoPJWK
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
	if err != nil {
		return errDPoPJWK
	}
	k.kind, k.crv, k.ec, k.coord = kindEC, string(crv), pub, size
	k.jkt = thumbprint(`{"crv":"`, k.crv, `","kty":"EC","x":"`, string(x), `","y":"`, string(y), `"}`)
	return nil
}

func (k *dpopKey) parseOKP(m *jwkMembers) error {
	crv, ok := jsonText(m.crv)
	if !ok {
		return errDPoPJWK
	}
	if string(crv) != "Ed25519" {
		return errDPoPKeyType
	}
	x, ok := jsonText(m.x)
	if !ok {
		return errDPoPJWK
	}
	pub, ok := appendBase64URL(make([]byte, 0, ed25519.PublicKeySize), x)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return errDPoPJWK
	}
	k.kind, k.crv, k.ed = kindOKP, "Ed25519", pub
	k.jkt = thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"`, string(x), `"}`)
	return nil
}

func (k *dpopKey) parseRSA(m *jwkMembers) error {
	nText, okN := jsonText(m.n)
	eText, okE := jsonText(m.e)
	if !okN || !okE {
		return errDPoPJWK
	}
	n, okN := appendBase64URL(nil, nText)
	e, okE := appendBase64URL(nil, eText)
	// Canonical: no leading zero octets (RFC 7518 §6.3.1).
	if !okN || !okE || len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 || len(e) > 4 {
		return errDPoPJWK
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp&1 == 0 || exp > 1<<31-1 {
		return errDPoPJWK
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 {
		return errDPoPRSASize
	}
	k.kind, k.rsa = kindRSA, pub
	k.jkt = thumbprint(`{"e":"`, string(eText), `","kty":"RSA","n":"`, string(nText), `"}`)
	return nil
}

// thumbprint is the base64url SHA-256 of the concatenation of parts: the
// RFC 7638 JSON of a key's required members, in order, without white space.
func thumbprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = io.WriteString(h, p)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// dpopKeyCache maps the raw jwk of a proof to its parsed key, so that a
// client's proofs, which all carry the same jwk, parse it once. It holds
// public keys only, at most dpopKeyShards × dpopKeysPerShard of them; a full
// shard drops an arbitrary entry.
type dpopKeyCache struct {
	seed   maphash.Seed
	shards [dpopKeyShards]dpopKeyShard
}

const (
	dpopKeyShards    = 16
	dpopKeysPerShard = 64
)

type dpopKeyShard struct {
	mu   sync.RWMutex
	keys map[string]*dpopKey
}

func newDPoPKeyCache() *dpopKeyCache {
	c := &dpopKeyCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].keys = make(map[string]*dpopKey)
	}
	return c
}

func (c *dpopKeyCache) shard(jwk []byte) *dpopKeyShard {
	return &c.shards[maphash.Bytes(c.seed, jwk)%dpopKeyShards]
}

func (c *dpopKeyCache) get(jwk []byte) (*dpopKey, bool) {
	s := c.shard(jwk)
	s.mu.RLock()
	k, ok := s.keys[string(jwk)]
	s.mu.RUnlock()
	return k, ok
}

// put stores a key whose proof was verified.
func (c *dpopKeyCache) put(jwk []byte, k *dpopKey) {
	s := c.shard(jwk)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) >= dpopKeysPerShard {
		for old := range s.keys {
			delete(s.keys, old)
			break
		}
	}
	s.keys[string(jwk)] = k
}

// dpopNonces makes and checks stateless server nonces: base64url of the
// period's number (8 bytes, big-endian) and the first 16 bytes of
// HMAC-SHA-256 over a label and that number.
type dpopNonces struct {
	secret []byte
	period time.Duration
	slots  atomic.Pointer[nonceSlots]
}

// nonceSlots are the nonces of one period and of the one before.
type nonceSlots struct {
	slot      int64
	cur, prev string
}

func (n *dpopNonces) at(now time.Time) *nonceSlots {
	slot := now.UnixNano() / int64(n.period)
	if s := n.slots.Load(); s != nil && s.slot == slot {
		return s
	}
	s := &nonceSlots{slot: slot, cur: n.make(slot), prev: n.make(slot - 1)}
	n.slots.Store(s)
	return s
}

func (n *dpopNonces) make(slot int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(slot))
	m := hmac.New(sha256.New, n.secret)
	m.Write([]byte("introspect DPoP nonce\x00"))
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check accepts a nonce of the current or the previous period.
func (n *dpopNonces) check(raw []byte, now time.Time) error {
	s := n.at(now)
	if raw == nil {
		return &DPoPNonceError{Nonce: s.cur}
	}
	nonce, ok := jsonText(raw)
	if !ok {
		return errDPoPNonceInvalid
	}
	if subtle.ConstantTimeCompare(nonce, []byte(s.cur))|subtle.ConstantTimeCompare(nonce, []byte(s.prev)) != 1 {
		return &DPoPNonceError{Nonce: s.cur}
	}
	return nil
}

// DPoPReplayCache records proofs (their jti, per key) until they expire, so
// that a proof is accepted once. Implementations must be safe for
// concurrent use; [DPoPMemoryReplayCache] is the in-memory one. A cache
// shared by replicas must record and test in one atomic step (Redis SET NX
// with an expiry, say).
type DPoPReplayCache interface {
	// Seen records key until until and reports whether it was recorded
	// already and not expired: a replay. Keys are SHA-256 digests. An error
	// fails the proof (closed).
	Seen(ctx context.Context, key [32]byte, until time.Time) (seen bool, err error)
}

// DPoPMemoryReplayCache is the in-memory [DPoPReplayCache]: bounded by the
// number of records, sharded to keep lock contention low, each record
// dropped once its time is past. A record takes up to about 250 bytes, so
// the default size, [DefaultDPoPReplayCacheSize], takes up to 25 MB when
// full; memory grows with the records and stays at that bound however many
// proofs come. Records are spread over the shards by key, so a shard may
// fill before the cache holds size records.
//
// When a shard is full, its oldest record is dropped. If that record was
// still live, the cache can no longer tell whether a key expiring no later
// than it is new or a replay of a dropped record, and reports every such key
// as seen: the verifier then refuses older proofs that it would accept
// otherwise, never a replay. Under a flood, the accepted age of proofs
// shrinks to the span of time the cache holds; size it for the number of
// proofs a proof lifetime brings. A record ends when its proof does, and a
// proof may be dated up to the verifier's leeway ahead: a client that fills
// a shard with valid proofs dated ahead within less than the leeway gets
// the fresh proofs of others refused until then too (a denial of service
// that needs a bound token and as many proofs a second as the shard holds
// records per leeway, never a replay).
type DPoPMemoryReplayCache struct {
	shards []*replayShard
	mask   uint8
	size   int
	now    func() time.Time
}

var _ DPoPReplayCache = (*DPoPMemoryReplayCache)(nil)

// replayShard is a FIFO of records with a map from key to end time.
type replayShard struct {
	mu    sync.Mutex
	until map[[32]byte]int64 // UnixNano
	ring  []replayRecord
	head  int
	n     int
	limit int
	// floor is the latest end of the records dropped while live: keys
	// ending no later are reported as seen.
	floor int64
}

type replayRecord struct {
	key   [32]byte
	until int64
}

// NewDPoPMemoryReplayCache returns an in-memory replay cache holding at
// most size records, over up to 16 shards. It uses time.Now; the default
// cache of [NewDPoPVerifier] uses the verifier's clock.
func NewDPoPMemoryReplayCache(size int) (*DPoPMemoryReplayCache, error) {
	if size <= 0 {
		return nil, fmt.Errorf("introspect: NewDPoPMemoryReplayCache: size %d is not positive", size)
	}
	shards := 16
	for shards > 1 && size/shards < 64 {
		shards /= 2
	}
	c := &DPoPMemoryReplayCache{shards: make([]*replayShard, shards), mask: uint8(shards - 1), size: size, now: time.Now}
	for i := range c.shards {
		limit := size / shards
		if i < size%shards {
			limit++
		}
		c.shards[i] = &replayShard{until: make(map[[32]byte]int64), limit: limit}
	}
	return c, nil
}

var errReplayCacheNotMade = errors.New("introspect: DPoPMemoryReplayCache not made by NewDPoPMemoryReplayCache")

// Seen implements [DPoPReplayCache].
func (c *DPoPMemoryReplayCache) Seen(_ context.Context, key [32]byte, until time.Time) (bool, error) {
	if c == nil || len(c.shards) == 0 {
		return false, errReplayCacheNotMade
	}
	now, end := c.now().UnixNano(), until.UnixNano()
	s := c.shards[key[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if t, ok := s.until[key]; ok && t > now {
		return true, nil
	}
	if end <= s.floor {
		return true, nil
	}
	if end > now {
		s.add(key, end, now)
	}
	return false, nil
}

// expire drops the records at the front whose time is past.
func (s *replayShard) expire(now int64) {
	for s.n > 0 && s.ring[s.head].until <= now {
		s.pop()
	}
}

// pop drops the oldest record.
func (s *replayShard) pop() replayRecord {
	r := s.ring[s.head]
	if s.until[r.key] == r.until {
		delete(s.until, r.key)
	}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	return r
}

func (s *replayShard) add(key [32]byte, until, now int64) {
	if s.n == s.limit {
		if r := s.pop(); r.until > now {
			s.floor = max(s.floor, r.until)
		}
	}
	if s.n == len(s.ring) { // grow, up to the limit
		ring := make([]replayRecord, min(s.limit, max(64, 2*len(s.ring))))
		for i := 0; i < s.n; i++ {
			ring[i] = s.ring[(s.head+i)%len(s.ring)]
		}
		s.ring, s.head = ring, 0
	}
	s.ring[(s.head+s.n)%len(s.ring)] = replayRecord{key: key, until: until}
	s.n++
	s.until[key] = until
}

// Len reports the number of records held.
func (c *DPoPMemoryReplayCache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += len(s.until)
		s.mu.Unlock()
	}
	return n
}

// summary shows the algorithms, the proof lifetime and leeway, the size
// limit, whether nonces are on and their period, the external URL and the
// type of the replay cache.
func (v DPoPVerifier) summary() summary {
	s := summary{name: "introspect.DPoPVerifier"}
	if v.keys == nil {
		return s
	}
	s.attrs = append(s.attrs, slog.String("algorithms", strings.Join(dpopAlgNames(v.algs), " ")))
	s.dur("proof_lifetime", v.lifetime)
	s.dur("leeway", v.leeway)
	s.attrs = append(s.attrs, slog.Int("max_proof_size", v.maxSize))
	if v.nonces != nil {
		s.dur("nonce_period", v.nonces.period)
	}
	s.str("external_url", strings.Join(v.bases, " "))
	s.typ("replay_cache", v.replay)
	return s
}

// Format prints the verifier's settings, the same for every verb; never
// the nonce secret.
func (v DPoPVerifier) Format(f fmt.State, _ rune) { v.summary().format(f) }

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (v *DPoPVerifier) LogValue() slog.Value {
	if v == nil {
		return slog.StringValue("<nil>")
	}
	return v.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (v DPoPVerifier) MarshalJSON() ([]byte, error) { return v.summary().marshalJSON() }

// summary shows the number of shards, the size and the records held.
func (c DPoPMemoryReplayCache) summary() summary {
	return summary{name: "introspect.DPoPMemoryReplayCache", attrs: []slog.Attr{
		slog.Int("shards", len(c.shards)),
		slog.Int("size", c.size),
		slog.Int("records", c.Len()),
	}}
}

// Format prints the number of shards, the size and the number of records
// held, the same for every verb; never a key.
func (c DPoPMemoryReplayCache) Format(f fmt.State, _ rune) { c.summary().format(f) }

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (c *DPoPMemoryReplayCache) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return c.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (c DPoPMemoryReplayCache) MarshalJSON() ([]byte, error) { return c.summary().marshalJSON() }
