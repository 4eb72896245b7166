package introspect

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Introspection is the authorization server's verdict on a token (RFC 7662
// §2.2), with the registered members typed and every other member kept in
// Extra.
//
// Values returned by this package may be shared between requests (they are
// cached): treat them as read-only.
type Introspection struct {
	Active    bool      // "active": true only for the JSON boolean true
	Scopes    []string  // "scope", split on spaces (a JSON array is tolerated)
	ClientID  string    // "client_id"
	Username  string    // "username"
	TokenType string    // "token_type"
	Expiry    time.Time // "exp", zero if absent
	IssuedAt  time.Time // "iat", zero if absent
	NotBefore time.Time // "nbf", zero if absent
	Subject   string    // "sub"
	Audience  []string  // "aud", a string or an array
	Issuer    string    // "iss"
	JWTID     string    // "jti"
	// Confirmation is the "cnf" member (RFC 7800, RFC 8705 §3.1, RFC 9449 §6),
	// nil if absent.
	Confirmation *Confirmation
	// Extra holds every other member as raw JSON; decode one with [Introspection.Claim].
	Extra map[string]json.RawMessage
	// Source says which validator produced the verdict: the authorization
	// server's answer ([VerdictIntrospection], the zero value) or a JWT
	// access token validated locally ([VerdictJWT], [VerdictJWTIntrospected];
	// see [WithValidation]). It is no member of the RFC 7662 form:
	// MarshalJSON leaves it out and UnmarshalJSON leaves it zero.
	Source VerdictSource
	// Userinfo holds the OpenID Connect userinfo claims of the token as raw
	// JSON, when [WithUserinfo] loaded them; nil otherwise. Decode them with
	// [Introspection.UserinfoClaim] or [DecodeUserinfo]. Like Source, it is
	// no member of the RFC 7662 form: MarshalJSON leaves it out and
	// UnmarshalJSON leaves it nil. A verdict that carries it is a copy made
	// for the request: the cached verdict never does, and the map may be
	// shared between requests (read-only).
	Userinfo map[string]json.RawMessage
}

// Confirmation is the proof-of-possession binding of a token.
type Confirmation struct {
	X5TS256 string                     // "x5t#S256": SHA-256 thumbprint of the client certificate (RFC 8705)
	JKT     string                     // "jkt": JWK SHA-256 thumbprint of the DPoP key (RFC 9449)
	Extra   map[string]json.RawMessage // other confirmation methods
}

// HasScope reports whether the token was granted scope s.
func (ti *Introspection) HasScope(s string) bool {
	return ti != nil && slices.Contains(ti.Scopes, s)
}

// HasAudience reports whether aud is one of the token's audiences.
func (ti *Introspection) HasAudience(aud string) bool {
	return ti != nil && slices.Contains(ti.Audience, aud)
}

// Claim decodes the extra member name into v. It reports false if the member is
// absent.
func (ti *Introspection) Claim(name string, v any) (bool, error) {
	if ti == nil {
		return false, nil
	}
	raw, ok := ti.Extra[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// MarshalJSON writes the RFC 7662 form: the registered members under their
// names (scope as one space-separated string, dates as integer seconds, a
// single audience as a string) and the Extra members as they came. It has a
// value receiver so that an Introspection held by value in another struct
// marshals the same way.
//
// What it writes reads back as a value that grants no more: registered
// members come from the typed fields only (an Extra member named "scope"
// or "sub", in a value built by hand, is left out), a confirmation method
// in Confirmation.Extra is written as null, which the binding check
// refuses, dates are rounded toward the stricter check, empty scopes are
// left out, and a scope holding a space is an error, since it would read
// back as several scopes ("files:x admin" as "files:x" and "admin"). The
// parser refuses such a scope.
func (ti Introspection) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 13+len(ti.Extra))
	for k, v := range ti.Extra {
		if !registeredMember(k) {
			m[k] = v
		}
	}
	m["active"] = ti.Active
	if !ti.Active {
		return json.Marshal(m)
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("client_id", ti.ClientID)
	put("username", ti.Username)
	put("token_type", ti.TokenType)
	put("sub", ti.Subject)
	put("iss", ti.Issuer)
	put("jti", ti.JWTID)
	scope, err := scopeString(ti.Scopes)
	if err != nil {
		return nil, err
	}
	put("scope", scope)
	// Integer seconds, as RFC 7662 writes them, a fraction rounded toward
	// the stricter check: exp down, nbf and iat up.
	for k, t := range map[string]time.Time{"exp": ti.Expiry, "iat": ti.IssuedAt, "nbf": ti.NotBefore} {
		if !t.IsZero() {
			sec := t.Unix()
			if k != "exp" && t.Nanosecond() != 0 {
				sec++
			}
			m[k] = sec
		}
	}
	switch len(ti.Audience) {
	case 0:
	case 1:
		m["aud"] = ti.Audience[0]
	default:
		m["aud"] = ti.Audience
	}
	if c := ti.Confirmation; c != nil {
		cm := make(map[string]any, 2+len(c.Extra))
		for k, v := range c.Extra {
			cm[k] = v
			if k == "x5t#S256" || k == "jkt" {
				// A method the parser could not read (null, empty, not a
				// string) stays one, so that the token stays refused; one
				// put in Extra by hand never becomes a binding.
				cm[k] = nil
			}
		}
		// A method with a marker in Extra too keeps the marker: refused.
		if _, marker := c.Extra["x5t#S256"]; c.X5TS256 != "" && !marker {
			cm["x5t#S256"] = c.X5TS256
		}
		if _, marker := c.Extra["jkt"]; c.JKT != "" && !marker {
			cm["jkt"] = c.JKT
		}
		m["cnf"] = cm
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the RFC 7662 form with the rules of the client: see
// [Introspection].
func (ti *Introspection) UnmarshalJSON(b []byte) error {
	v, err := parseIntrospection(b)
	if err != nil {
		return err
	}
	*ti = *v
	return nil
}

type introspectionKey struct{}

// NewContext returns a copy of ctx carrying ti.
func NewContext(ctx context.Context, ti *Introspection) context.Context {
	return verdictContext{ctx, ti}
}

// verdictContext is context.WithValue(ctx, introspectionKey{}, ti) in half
// the memory: it is made for every request that passes.
type verdictContext struct {
	context.Context
	ti *Introspection
}

func (c verdictContext) Value(key any) any {
	if key == (introspectionKey{}) {
		return c.ti
	}
	return c.Context.Value(key)
}

// String names the context as context.WithValue's do, without the verdict.
func (c verdictContext) String() string {
	return fmt.Sprint(c.Context) + ".WithValue(introspect verdict)"
}

// FromContext returns the verdict the middleware put on the request context. It
// reports false when there is none: the middleware did not run, or the request
// carried no token and [WithOptionalToken] let it through.
func FromContext(ctx context.Context) (*Introspection, bool) {
	ti, ok := ctx.Value(introspectionKey{}).(*Introspection)
	return ti, ok && ti != nil
}

// registeredMember reports whether name is a member of an answer that
// Introspection keeps in a typed field.
func registeredMember(name string) bool {
	for _, n := range memberNames {
		if n == name {
			return true
		}
	}
	return false
}

// scopeString is scopes as the "scope" string of RFC 7662, empty ones left
// out; a scope holding a space is an error: it would read back as several.
func scopeString(scopes []string) (string, error) {
	var b strings.Builder
	for _, s := range scopes {
		if strings.IndexByte(s, ' ') >= 0 {
			return "", fmt.Errorf("introspect: the scope %q holds a space: it would read back as several scopes", s)
		}
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String(), nil
}
