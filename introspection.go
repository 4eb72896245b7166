package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// registered are the members decoded into typed fields.
var registered = map[string]bool{
	"active": true, "scope": true, "client_id": true, "username": true,
	"token_type": true, "exp": true, "iat": true, "nbf": true, "sub": true,
	"aud": true, "iss": true, "jti": true, "cnf": true,
}

// parseIntrospection decodes an RFC 7662 response body. Member names are matched
// exactly (encoding/json's case-insensitive struct matching would let "ACTIVE"
// count). A response is active only if "active" is the JSON boolean true; a
// missing or non-boolean "active" is malformed. For an inactive token the other
// members are ignored.
func parseIntrospection(body []byte) (*Introspection, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	return fromMembers(m)
}

// decodeObject decodes a JSON object into its members. A member given twice is
// malformed: which of two "active" members counts would depend on the parser,
// and encoding/json keeps the last one. One pass of encoding/json decodes; a
// byte scan counts the top-level members, and a count above the number of
// distinct names means a repeated one (also when the two spellings differ
// only by escapes, since the map holds decoded names).
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	if topLevelMembers(body) != len(m) {
		return nil, fmt.Errorf("%w: a member is given twice", ErrMalformedResponse)
	}
	return m, nil
}

// topLevelMembers counts the members of the JSON object in body, which must
// be valid JSON: the commas at depth one, plus one unless the object is empty.
func topLevelMembers(body []byte) int {
	depth, commas := 0, 0
	inString, escaped, empty := false, false, true
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 {
				empty = false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			if depth == 1 {
				commas++
			}
		}
	}
	if empty {
		return 0
	}
	return commas + 1
}

func fromMembers(m map[string]json.RawMessage) (*Introspection, error) {
	raw, ok := m["active"]
	if !ok {
		return nil, fmt.Errorf("%w: no \"active\" member", ErrMalformedResponse)
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
	case "false":
		return &Introspection{Active: false}, nil
	default:
		return nil, fmt.Errorf("%w: \"active\" is not a boolean", ErrMalformedResponse)
	}
	ti := &Introspection{Active: true}
	var err error
	str := func(name string, dst *string) {
		if err == nil {
			err = decodeString(m, name, dst)
		}
	}
	str("client_id", &ti.ClientID)
	str("username", &ti.Username)
	str("token_type", &ti.TokenType)
	str("sub", &ti.Subject)
	str("iss", &ti.Issuer)
	str("jti", &ti.JWTID)
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &ti.Expiry}, {"iat", &ti.IssuedAt}, {"nbf", &ti.NotBefore}} {
		if err == nil {
			*d.dst, err = decodeTime(m, d.name)
		}
	}
	if err == nil {
		ti.Scopes, err = decodeStrings(m, "scope", true)
	}
	if err == nil {
		ti.Audience, err = decodeStrings(m, "aud", false)
	}
	if err == nil {
		ti.Confirmation, err = decodeConfirmation(m)
	}
	if err != nil {
		return nil, err
	}
	for k, v := range m {
		if registered[k] {
			continue
		}
		if ti.Extra == nil {
			ti.Extra = make(map[string]json.RawMessage, len(m))
		}
		ti.Extra[k] = v
	}
	return ti, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func decodeString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	v, err := unquote(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
	}
	*dst = v
	return nil
}

// unquote decodes a JSON string. The common case, a string without escapes
// in valid UTF-8, is its bytes between the quotes; anything else goes through
// encoding/json, which also rejects what is not a string.
func unquote(raw json.RawMessage) (string, error) {
	raw = bytes.Trim(raw, " \t\r\n") // JSON's whitespace only
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		in := raw[1 : n-1]
		plain := utf8.Valid(in)
		for _, c := range in {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(in), nil
		}
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// maxDate bounds numeric dates to year 9999 so conversions cannot overflow.
const maxDate = 253402300799

func decodeTime(m map[string]json.RawMessage, name string) (time.Time, error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxDate {
		return time.Time{}, fmt.Errorf("%w: %q is not a NumericDate", ErrMalformedResponse, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// decodeStrings accepts a string (split on spaces when split is set, else one
// value) or an array of strings.
func decodeStrings(m map[string]json.RawMessage, name string, split bool) ([]string, error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, err := unquote(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, name)
		}
		if split {
			return strings.Fields(s), nil
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%w: %q is neither a string nor an array of strings", ErrMalformedResponse, name)
	}
	return list, nil
}

func decodeConfirmation(m map[string]json.RawMessage) (*Confirmation, error) {
	raw, ok := m["cnf"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var cm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cm); err != nil || cm == nil {
		return nil, fmt.Errorf("%w: \"cnf\" is not an object", ErrMalformedResponse)
	}
	c := &Confirmation{}
	if err := decodeString(cm, "x5t#S256", &c.X5TS256); err != nil {
		return nil, err
	}
	if err := decodeString(cm, "jkt", &c.JKT); err != nil {
		return nil, err
	}
	for k, v := range cm {
		if k == "x5t#S256" || k == "jkt" {
			continue
		}
		if c.Extra == nil {
			c.Extra = make(map[string]json.RawMessage)
		}
		c.Extra[k] = v
	}
	return c, nil
}

// MarshalJSON writes the RFC 7662 form: the registered members under their
// names (scope as one space-separated string, dates as integer seconds, a
// single audience as a string) and the Extra members as they came. It has a
// value receiver so that an Introspection held by value in another struct
// marshals the same way.
func (ti Introspection) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 13+len(ti.Extra))
	for k, v := range ti.Extra {
		m[k] = v
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
	put("scope", strings.Join(ti.Scopes, " "))
	for k, t := range map[string]time.Time{"exp": ti.Expiry, "iat": ti.IssuedAt, "nbf": ti.NotBefore} {
		if !t.IsZero() {
			m[k] = t.Unix()
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
		}
		if c.X5TS256 != "" {
			cm["x5t#S256"] = c.X5TS256
		}
		if c.JKT != "" {
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
	return context.WithValue(ctx, introspectionKey{}, ti)
}

// FromContext returns the verdict the middleware put on the request context. It
// reports false when there is none: the middleware did not run, or the request
// carried no token and [WithOptionalToken] let it through.
func FromContext(ctx context.Context) (*Introspection, bool) {
	ti, ok := ctx.Value(introspectionKey{}).(*Introspection)
	return ti, ok && ti != nil
}
