package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// maxIdentityValue bounds the value of an identity header: a longer value
// is left out rather than cut, since a cut value would name someone else.
const maxIdentityValue = 4096

// identity writes the identity headers of an accepted token and removes
// the ones a client sent.
type identity struct {
	prefix   string
	subject  string // the header names, canonical
	clientID string
	scope    string
	username string
	claims   []config.IdentityClaim
	log      *slog.Logger
}

func newIdentity(cfg *config.Config, log *slog.Logger) *identity {
	p := cfg.IdentityHeaderPrefix
	return &identity{
		prefix:   p,
		subject:  http.CanonicalHeaderKey(p + "Subject"),
		clientID: http.CanonicalHeaderKey(p + "Client-Id"),
		scope:    http.CanonicalHeaderKey(p + "Scope"),
		username: http.CanonicalHeaderKey(p + "Username"),
		claims:   cfg.IdentityClaims,
		log:      log,
	}
}

// strip removes every header whose name starts with the prefix as the
// services behind the proxy may read it: regardless of case, and with '_'
// taken for '-' (CGI, WSGI, Rack and PHP read "X-Auth_Subject" as
// "X-Auth-Subject").
func (id *identity) strip(h http.Header) {
	for k := range h {
		if config.HasPrefixFold(k, id.prefix) {
			delete(h, k)
		}
	}
}

// dropSpellings removes from h every header that services may read as
// name but that is not name's canonical key: another spelling with '_'
// for '-' (CGI, WSGI, Rack and PHP read "X-Forwarded_For" as
// "X-Forwarded-For"); with all, the canonical key too.
func dropSpellings(h http.Header, name string, all bool) {
	canonical := http.CanonicalHeaderKey(name)
	for k := range h {
		if len(k) == len(name) && config.HasPrefixFold(k, name) && (all || k != canonical) {
			delete(h, k)
		}
	}
}

// set writes the identity headers of ti into h. A value that is empty, or
// that cannot travel in a header (a control character, longer than
// maxIdentityValue bytes), is left out; with all, such a header is still
// written, empty, so that an ingress copying it replaces whatever the
// client sent under that name. ti nil (a request without a token under
// -optional-token) writes nothing, or every header empty with all.
func (id *identity) set(h http.Header, ti *introspect.Introspection, all bool) {
	// One array holds every value, each header a slice of it with no room
	// to grow into its neighbour: one allocation rather than one a header.
	vals := make([]string, 0, 4+len(id.claims))
	put := func(name, v string) {
		if v != "" && !headerSafe(v) {
			id.log.Warn("identity header left out: its value holds a control character, starts or ends in a space or is too long", "header", name)
			v = ""
		}
		if v != "" || all {
			n := len(vals)
			vals = append(vals, v)
			h[name] = vals[n : n+1 : n+1]
		}
	}
	var sub, cid, scope, user string
	if ti != nil {
		sub, cid, user = ti.Subject, ti.ClientID, ti.Username
		var ok bool
		if scope, ok = scopeText(ti.Scopes); !ok {
			id.log.Warn("identity header left out: a scope of the token is not a scope token (RFC 6749), so a service splitting the header could read another", "header", id.scope)
		}
	}
	put(id.subject, sub)
	put(id.clientID, cid)
	put(id.scope, scope)
	put(id.username, user)
	var registered map[string]json.RawMessage // the answer's registered members, read once
	for _, c := range id.claims {
		v := ""
		switch {
		case ti == nil:
		case c.Userinfo:
			v = claimText(ti.Userinfo[c.Name]) // nil without userinfo claims: a bound token, best effort
		case c.Name == "scope":
			v = scope // checked above, as the scope header
		default:
			raw, ok := ti.Extra[c.Name]
			if !ok && typedMembers[c.Name] {
				if registered == nil {
					registered = registeredMembers(ti)
				}
				raw = registered[c.Name]
			}
			v = claimText(raw)
		}
		put(c.Header, v)
	}
}

// typedMembers are the members of an answer that Introspection keeps in
// typed fields rather than in Extra, and writes back in MarshalJSON. Any
// other claim is in Extra or absent: the answer is not marshalled for it.
var typedMembers = map[string]bool{
	"active": true, "scope": true, "client_id": true, "username": true, "token_type": true, "exp": true,
	"iat": true, "nbf": true, "sub": true, "aud": true, "iss": true, "jti": true, "cnf": true,
}

// registeredMembers returns the members of the answer in their RFC 7662
// form, for the claims that Introspection keeps in typed fields (sub, aud,
// exp, ...).
func registeredMembers(ti *introspect.Introspection) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if b, err := ti.MarshalJSON(); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// claimText is a claim as a header value: a JSON string as the string, any
// other value (number, boolean, array, object) as compact JSON; "" for an
// absent or null claim.
func claimText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return ""
	}
	return b.String()
}

// scopeText is the scopes as the scope header holds them, separated by a
// space, and whether each is a scope token of RFC 6749 (printable ASCII
// but space, '"' and '\') without a comma. A scope that is not
// ("files:x\u00a0admin", "files:x\u3000admin", "files:a,admin") is one
// scope to the proxy's rules but two to a service that splits the header
// on Unicode white space or reads it as an HTTP list (RFC 9110 §5.6.1), one
// of them a scope the rules refused: then "" and false. No -require-scope
// rule can name a scope with a comma, its separator.
func scopeText(scopes []string) (string, bool) {
	if len(scopes) > 0 && introspect.CheckScopes(scopes) != nil {
		return "", false
	}
	for _, s := range scopes {
		if strings.IndexByte(s, ',') >= 0 {
			return "", false
		}
	}
	return strings.Join(scopes, " "), true
}

// headerSafe reports whether v can be a header value as it is: no control
// character (CR and LF among them), no white space at either end (which
// HTTP parsers trim, so " admin " would arrive as "admin", and which
// services trim too, Unicode's among it: "admin\u00a0" is "admin" to Go's
// strings.TrimSpace) and at most maxIdentityValue bytes.
func headerSafe(v string) bool {
	if len(v) > maxIdentityValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	if v == "" {
		return true
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	return !trimmed(first) && !trimmed(last)
}

// trimmed reports whether services may trim r off the end of a value:
// Unicode's white space, and the zero-width characters that JavaScript's
// trim or editors drop.
func trimmed(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}
