package introspect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ValidationMode says how the middleware validates a token: by introspection
// (the default), locally as an RFC 9068 JWT access token, or both.
type ValidationMode uint8

const (
	// ValidateIntrospect asks the authorization server about every token
	// (through the cache): the behaviour without [WithValidation].
	ValidateIntrospect ValidationMode = iota
	// ValidateJWT validates every token locally as a JWT access token of an
	// accepted issuer (RFC 9068; see [WithValidation]) and never introspects:
	// a token that is not one is refused (401).
	ValidateJWT
	// ValidateHybrid validates locally a token that looks like a JWT whose
	// (unverified) "iss" is an accepted issuer, and introspects every other
	// token (opaque ones, JWTs of other issuers, encrypted ones). Once the
	// issuer matches, the local verdict is final.
	ValidateHybrid
	// ValidateJWTAndIntrospect validates every token locally and then
	// introspects it too (sharing the cache), for routes that must see a
	// revocation at once: a token must pass both.
	ValidateJWTAndIntrospect
)

var validationModeNames = [...]string{
	ValidateIntrospect:       "introspect",
	ValidateJWT:              "jwt",
	ValidateHybrid:           "hybrid",
	ValidateJWTAndIntrospect: "jwt+introspect",
}

// String returns the mode's name as [ParseValidationMode] reads it.
func (m ValidationMode) String() string {
	if int(m) < len(validationModeNames) {
		return validationModeNames[m]
	}
	return fmt.Sprintf("ValidationMode(%d)", uint8(m))
}

// ParseValidationMode reads "introspect", "jwt", "hybrid" or
// "jwt+introspect".
func ParseValidationMode(s string) (ValidationMode, error) {
	if i := slices.Index(validationModeNames[:], s); i >= 0 {
		return ValidationMode(i), nil
	}
	return 0, fmt.Errorf("introspect: unknown validation mode %q (want introspect, jwt, hybrid or jwt+introspect)", sanitize(s, 32))
}

// usesJWT reports whether the mode validates JWTs locally.
func (m ValidationMode) usesJWT() bool { return m != ValidateIntrospect }

// introspects reports whether the mode may ask the authorization server.
func (m ValidationMode) introspects() bool { return m != ValidateJWT }

// VerdictSource says which validator produced an [Introspection].
type VerdictSource uint8

const (
	// VerdictIntrospection: the authorization server's answer (RFC 7662),
	// fresh or cached. It is the zero value.
	VerdictIntrospection VerdictSource = iota
	// VerdictJWT: the claims of a JWT access token validated locally (RFC
	// 9068), without asking the authorization server.
	VerdictJWT
	// VerdictJWTIntrospected: the claims of a JWT access token validated
	// locally, which the authorization server also said is active
	// ([ValidateJWTAndIntrospect]).
	VerdictJWTIntrospected
)

var verdictSourceNames = [...]string{
	VerdictIntrospection:   "introspection",
	VerdictJWT:             "jwt",
	VerdictJWTIntrospected: "jwt+introspection",
}

// String names the source: "introspection", "jwt" or "jwt+introspection".
func (s VerdictSource) String() string {
	if int(s) < len(verdictSourceNames) {
		return verdictSourceNames[s]
	}
	return fmt.Sprintf("VerdictSource(%d)", uint8(s))
}

// Defaults of the JWT validation options.
const (
	// DefaultMaxJWTSize bounds the size of a JWT access token validated
	// locally.
	DefaultMaxJWTSize = 8 << 10
	// MaxJWTSize is the largest size WithMaxJWTSize takes: far above what
	// servers pass in a header (nginx's default buffer for one is 8 KiB),
	// and a bound on what a token can make the middleware hash, decode and
	// send to the authorization server.
	MaxJWTSize = 64 << 10
)

// WithValidation sets how the middleware validates tokens; see
// [ValidationMode]. Every mode but [ValidateIntrospect] validates JWT access
// tokens locally (RFC 9068) and needs [WithJWTAudience] and the issuers
// whose tokens are accepted: [WithIssuer], [WithJWTIssuers], or the issuers
// the contexts of a [ClientStore] name (a request accepts its context's
// issuer's tokens). Each issuer's keys come from its jwks_uri, refreshed in
// the background, and once more, rate-limited, for an unknown key ID.
// [ValidateJWT] never introspects: it needs no endpoint or client
// credentials, and refuses them; a ClientStore then only names issuers.
// The local checks are those of [NewJWTValidator]. Default
// [ValidateIntrospect].
func WithValidation(mode ValidationMode) Option {
	return func(c *config) {
		c.middlewareOnly("WithValidation")
		if int(mode) >= len(validationModeNames) {
			c.fail("WithValidation: unknown mode %d", uint8(mode))
			return
		}
		c.validation = mode
	}
}

// WithJWTAudience sets the identifier of this resource server: a JWT access
// token validated locally must name it in its "aud" (RFC 9068 §4). It is
// required for local validation. No default.
func WithJWTAudience(resource string) Option {
	return func(c *config) {
		c.jwtOption("WithJWTAudience")
		if resource == "" || !printable(resource) {
			c.fail("WithJWTAudience: the audience must be non-empty printable ASCII")
			return
		}
		c.jwtAudience = resource
	}
}

// WithJWTAlgorithms sets the signature algorithms accepted for JWT access
// tokens validated locally. Each must be one of RS256, RS384, RS512, PS256,
// PS384, PS512, ES256, ES384, ES512, EdDSA and Ed25519 (EdDSA with an
// Ed25519 key by its fully-specified name, RFC 9864); none and the HMAC
// algorithms are refused (an HMAC keyed with the issuer's public key proves
// nothing). A key whose JWK names an algorithm is used for that algorithm
// only (a key of alg EdDSA does not verify a token of alg Ed25519). Default:
// all of those eleven.
func WithJWTAlgorithms(algs ...string) Option {
	return func(c *config) {
		c.jwtOption("WithJWTAlgorithms")
		if len(algs) == 0 {
			c.fail("WithJWTAlgorithms: no algorithm")
			return
		}
		var list []string
		for _, a := range algs {
			switch {
			case slices.ContainsFunc(refusedAlgs, func(r string) bool { return strings.EqualFold(r, a) }):
				c.fail("WithJWTAlgorithms: %s is never accepted (none and HMAC prove nothing about the issuer)", sanitize(a, 16))
				return
			case !slices.Contains(asymmetricAlgs, a):
				c.fail("WithJWTAlgorithms: unknown algorithm %q (want one of %s)", sanitize(a, 32), strings.Join(asymmetricAlgs, ", "))
				return
			case !slices.Contains(list, a):
				list = append(list, a)
			}
		}
		c.jwtAlgs = list
	}
}

// WithPlainJWT accepts, besides the RFC 9068 header types at+jwt and
// application/at+jwt, JWT access tokens whose header "typ" is "JWT" or
// absent, as servers older than RFC 9068 issue them. Such a header does not
// tell an access token from an ID token or another JWT of the issuer signed
// with the same keys: the audience check is then what keeps them apart.
// Default off.
func WithPlainJWT() Option {
	return func(c *config) {
		c.jwtOption("WithPlainJWT")
		c.jwtPlain = true
	}
}

// WithMaxJWTSize bounds the size in bytes of a JWT access token validated
// locally: a larger one is refused before it is decoded, 401, or 400 by the
// default extractor, which takes no token larger than this off a request
// (where its 4 KiB would refuse a larger JWT first). Default
// [DefaultMaxJWTSize] (8 KiB), at most [MaxJWTSize].
func WithMaxJWTSize(n int) Option {
	return func(c *config) {
		c.jwtOption("WithMaxJWTSize")
		if n <= 0 || n > MaxJWTSize {
			c.fail("WithMaxJWTSize: %d is not between 1 and MaxJWTSize (%d)", n, MaxJWTSize)
			return
		}
		c.jwtMaxSize = n
	}
}

// jwtOption records that a JWT validation option was given.
func (c *config) jwtOption(name string) {
	if !slices.Contains(c.jwtOpts, name) {
		c.jwtOpts = append(c.jwtOpts, name)
	}
}

// checkValidation applies the rules of local validation to the
// configuration: jwt is whether JWTs are validated locally (a mode other
// than ValidateIntrospect, or a JWTValidator), and fills in the defaults.
func (c *config) checkValidation(jwt bool) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("introspect: "+format, args...))
	}
	if !jwt {
		for _, name := range c.jwtOpts {
			fail("%s needs WithValidation with a mode that validates JWTs (jwt, hybrid or jwt+introspect)", name)
		}
		return errors.Join(errs...)
	}
	if c.jwtMaxSize == 0 {
		c.jwtMaxSize = DefaultMaxJWTSize
	}
	if c.jwtAlgs == nil {
		c.jwtAlgs = asymmetricAlgs
	}
	if c.discoveryIssuer == "" && len(c.jwtIssuers) == 0 && c.store == nil {
		fail("JWT validation needs WithIssuer, WithJWTIssuers or a ClientStore whose contexts name issuers (the issuer and its keys come from discovery)")
	}
	if c.jwtAudience == "" {
		fail("JWT validation needs WithJWTAudience (the identifier a token must name in its aud)")
	}
	if c.validation == ValidateJWTAndIntrospect && len(c.jwtIssuers) > 0 {
		fail("WithJWTIssuers does not apply to WithValidation(jwt+introspect): a token is introspected at its own issuer, the one the request's client context names (ClientContext.Issuer)")
	}
	if !c.validation.introspects() {
		if c.endpoint != "" || c.credsSet {
			fail("WithValidation(%s) never introspects: WithEndpoint and client credentials do not apply", c.validation)
		}
		if c.jwtResponse {
			fail("WithValidation(%s) never introspects: WithJWTResponse does not apply", c.validation)
		}
	}
	return errors.Join(errs...)
}
