package introspect

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// DPoPMode says which sender-constraining the middleware accepts from the
// DPoP scheme (RFC 9449) next to Bearer.
type DPoPMode uint8

const (
	// DPoPAllowed accepts Bearer and DPoP tokens, each by its own rules: a
	// token presented with the DPoP scheme needs a valid proof from the key
	// its answer binds it to (cnf "jkt"), and a DPoP-bound token presented
	// as Bearer is refused. The default.
	DPoPAllowed DPoPMode = iota
	// DPoPOff accepts Bearer tokens only: the DPoP scheme counts as no
	// bearer token, and a DPoP-bound token is refused.
	DPoPOff
	// DPoPRequired accepts DPoP-bound tokens with a valid proof only: a
	// Bearer token is refused without asking the authorization server.
	DPoPRequired
)

// String names the mode as the quickstart's -dpop flag does.
func (m DPoPMode) String() string {
	switch m {
	case DPoPAllowed:
		return "allowed"
	case DPoPOff:
		return "off"
	case DPoPRequired:
		return "required"
	}
	return fmt.Sprintf("DPoPMode(%d)", uint8(m))
}

// ParseDPoPMode reads "off", "allowed" or "required".
func ParseDPoPMode(s string) (DPoPMode, error) {
	for _, m := range []DPoPMode{DPoPOff, DPoPAllowed, DPoPRequired} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, errors.New("introspect: DPoP mode must be off, allowed or required")
}

// ErrDPoPRequired: the middleware requires DPoP ([DPoPRequired]) and the
// request presented a Bearer token (401 invalid_token, with a DPoP
// challenge).
var ErrDPoPRequired = fmt.Errorf("%w: a DPoP-bound token is required", ErrInactiveToken)

// WithDPoP sets how the middleware treats DPoP (RFC 9449): mode, and the
// options of the [DPoPVerifier] that checks proofs (algorithms, proof
// lifetime, replay cache, nonces, the external URL behind a proxy). A
// request with `Authorization: DPoP <token>` and a `DPoP` proof header is
// accepted when the token's answer binds it to a key (cnf "jkt"), the proof
// is valid for this request and token, was made with that key (RFC 7638
// thumbprint, compared in constant time) and was not seen before. The
// verdict is cached as any other; the proof is checked on every request.
// Refusals are 401 with a DPoP challenge naming the error
// (invalid_dpop_proof, use_dpop_nonce with a DPoP-Nonce header) and the
// accepted algorithms, next to the Bearer challenge unless DPoP is
// required. A [BearerExtractor] given with [WithExtractor] gets its
// AllowDPoP set to match mode; a custom extractor reports the scheme itself.
// Default: [DPoPAllowed] with the verifier's defaults.
func WithDPoP(mode DPoPMode, opts ...DPoPOption) Option {
	return func(c *config) {
		c.middlewareOnly("WithDPoP")
		if mode > DPoPRequired {
			c.fail("WithDPoP: unknown mode %d", uint8(mode))
			return
		}
		for _, o := range opts {
			if o == nil {
				c.fail("WithDPoP: nil option")
				return
			}
		}
		if mode == DPoPOff && len(opts) > 0 {
			c.fail("WithDPoP: verifier options with DPoP off")
			return
		}
		c.dpopMode, c.dpopOpts = mode, append([]DPoPOption(nil), opts...)
	}
}

// DPoPVerifier returns the verifier of the middleware's DPoP proofs, nil when
// DPoP is off.
func (m *Middleware) DPoPVerifier() *DPoPVerifier { return m.dpop }

// setUpDPoP builds the verifier and sets the extractor's scheme, in New.
func (m *Middleware) setUpDPoP() error {
	if m.cfg.dpopMode == DPoPRequired && m.cfg.skipBinding {
		return errors.New("introspect: WithDPoP(DPoPRequired) cannot be combined with InsecureSkipTokenBinding: no binding would be checked")
	}
	if be, ok := m.cfg.extractor.(BearerExtractor); ok {
		be.AllowDPoP = m.cfg.dpopMode != DPoPOff
		m.cfg.extractor = be
	}
	if m.cfg.dpopMode == DPoPOff {
		return nil
	}
	v, err := NewDPoPVerifier(m.cfg.dpopOpts...)
	if err != nil {
		return err
	}
	m.dpop = v
	return nil
}

// isDPoP reports whether tok came with the DPoP scheme.
func isDPoP(tok Token) bool { return strings.EqualFold(tok.Scheme, "DPoP") }

// checkDPoP enforces the binding of a token presented with the DPoP scheme:
// its answer binds it to one key (cnf "jkt", nothing else), and the request
// carries a valid proof made with that key.
func (m *Middleware) checkDPoP(r *http.Request, tok Token, ti *Introspection) error {
	cnf := ti.Confirmation
	if m.dpop == nil || r == nil || cnf == nil || cnf.JKT == "" || cnf.X5TS256 != "" || len(cnf.Extra) > 0 {
		return ErrTokenBinding
	}
	jkt, err := m.dpop.Verify(r.Context(), r, tok.Value, cnf.JKT)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(jkt), []byte(cnf.JKT)) != 1 {
		return ErrDPoPKeyMismatch
	}
	return nil
}

// requestScheme says which scheme the request's Authorization header uses,
// for the challenges: "DPoP" or "" (Bearer, another, or none).
func requestScheme(r *http.Request) string {
	if r == nil {
		return ""
	}
	v := r.Header.Get("Authorization")
	if len(v) > len("DPoP") && asciiEqualFold(v[:len("DPoP")], "DPoP") && v[len("DPoP")] == ' ' {
		return "DPoP"
	}
	return ""
}

// DPoPChallenge builds a WWW-Authenticate value for the DPoP scheme (RFC 9449
// §7.1), with the attributes and escaping rules of [Challenge]; algs lists
// the accepted proof algorithms.
func DPoPChallenge(realm, errorCode, description string, scopes, algs []string) string {
	return dpopChallenge(realm, errorCode, description, scopes, algs, "")
}

// dpopChallenge is [DPoPChallenge] with the resource_metadata attribute of
// RFC 9728 §5.1, which also goes with schemes other than Bearer.
func dpopChallenge(realm, errorCode, description string, scopes, algs []string, resourceMetadata string) string {
	c := Challenge(realm, errorCode, description, scopes, resourceMetadata)
	c = "DPoP" + strings.TrimPrefix(c, "Bearer")
	if a := scopeList(algs); a != "" {
		if c == "DPoP" {
			c += " "
		} else {
			c += ", "
		}
		c += `algs="` + a + `"`
	}
	return c
}

// ResourceMetadata returns md with what the middleware knows of itself
// filled in, for [ResourceMetadataHandler] (RFC 9728): the algorithms of DPoP
// proofs (unless DPoP is off) and whether DPoP-bound tokens are required.
func (m *Middleware) ResourceMetadata(md ResourceMetadata) ResourceMetadata {
	md.DPoPSigningAlgValuesSupported, md.DPoPBoundAccessTokensRequired = nil, false
	if m.dpop != nil {
		md.DPoPSigningAlgValuesSupported = m.dpop.Algorithms()
		md.DPoPBoundAccessTokensRequired = m.cfg.dpopMode == DPoPRequired
	}
	return md
}
