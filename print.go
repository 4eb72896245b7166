package introspect

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file holds the printed forms of the types that carry configuration,
// credentials or cache keys: fmt (every verb: Format handles %#v too, since
// fmt asks a Formatter before a GoStringer), log/slog (LogValue) and
// encoding/json (MarshalJSON). fmt reads the unexported fields of a struct
// without calling their methods, so a type whose fields hold a
// [Credentials] must print itself rather than rely on the Format of
// Credentials. The forms show names, flags and URLs without user info, query
// or fragment; never a secret, a private key, a token or a cache key.

// summary is the printed form of a value: its type name and the attributes
// that are safe to show.
type summary struct {
	name  string
	attrs []slog.Attr
}

func (s *summary) str(key, v string) {
	if v != "" {
		s.attrs = append(s.attrs, slog.String(key, v))
	}
}

func (s *summary) flag(key string, v bool) {
	if v {
		s.attrs = append(s.attrs, slog.Bool(key, true))
	}
}

func (s *summary) dur(key string, d time.Duration) {
	s.attrs = append(s.attrs, slog.Duration(key, d))
}

// typ adds the dynamic type of v, when v is not nil: a value the user
// supplied (a cache, a store, an extractor) is named, never printed, since
// it may hold secrets of its own.
func (s *summary) typ(key string, v any) {
	if v != nil {
		s.attrs = append(s.attrs, slog.String(key, fmt.Sprintf("%T", v)))
	}
}

// format writes name{key: value, ...}, with strings quoted so that no
// configured value can break a log line.
func (s summary) format(w io.Writer) {
	var b strings.Builder
	b.WriteString(s.name)
	formatGroup(&b, s.attrs)
	_, _ = io.WriteString(w, b.String())
}

func formatGroup(b *strings.Builder, attrs []slog.Attr) {
	b.WriteByte('{')
	for i, a := range attrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Key)
		b.WriteString(": ")
		switch v := a.Value.Resolve(); v.Kind() {
		case slog.KindGroup:
			formatGroup(b, v.Group())
		case slog.KindString:
			b.WriteString(strconv.Quote(v.String()))
		default:
			b.WriteString(v.String())
		}
	}
	b.WriteByte('}')
}

func (s summary) logValue() slog.Value { return slog.GroupValue(s.attrs...) }

// marshalJSON writes the attributes as a JSON object, in order; durations
// as strings ("5s").
func (s summary) marshalJSON() ([]byte, error) { return appendJSONGroup(nil, s.attrs) }

func appendJSONGroup(b []byte, attrs []slog.Attr) ([]byte, error) {
	b = append(b, '{')
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(a.Key)
		if err != nil {
			return nil, err
		}
		b = append(append(b, k...), ':')
		var v []byte
		switch val := a.Value.Resolve(); val.Kind() {
		case slog.KindGroup:
			if b, err = appendJSONGroup(b, val.Group()); err != nil {
				return nil, err
			}
			continue
		case slog.KindDuration:
			v, err = json.Marshal(val.Duration().String())
		default:
			v, err = json.Marshal(val.Any())
		}
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// summary shows the endpoint (or the discovered one, once known) and the
// issuer without user info, query or fragment, the client ID, the
// authentication method, the type of the client store, whether a client
// certificate is configured and signed answers are required, and the call
// timeout.
func (c Client) summary() summary {
	s := summary{name: "introspect.Client"}
	cfg := c.cfg
	if cfg == nil {
		return s
	}
	var cc ClientContext
	if cfg.store == nil {
		cc = c.staticContext()
	}
	s.str("endpoint", redactURL(cc.Endpoint))
	s.str("issuer", redactURL(cfg.discoveryIssuer))
	if len(cfg.jwtIssuers) > 0 {
		s.str("jwt_issuers", redactURLs(cfg.jwtIssuers))
	}
	s.str("client_id", cc.Credentials.ClientID)
	s.str("auth_method", string(cc.Credentials.AuthMethod))
	s.typ("client_store", cfg.store)
	s.flag("client_certificate", cfg.clientCert != nil)
	s.flag("jwt_response", cfg.jwtResponse)
	s.dur("timeout", cfg.timeout)
	return s
}

// Format prints the client's endpoint, issuer, client ID, authentication
// method and switches, the same for every verb; never its secret, private
// key or client certificate. It has a value receiver, like MarshalJSON, so
// that a copy of a Client prints the same way.
func (c Client) Format(f fmt.State, _ rune) { c.summary().format(f) }

// LogValue implements [slog.LogValuer] with the attributes Format prints. It
// has a pointer receiver so that a nil *Client logs as "<nil>"; a Client
// value is logged through Format or MarshalJSON.
func (c *Client) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return c.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (c Client) MarshalJSON() ([]byte, error) { return c.summary().marshalJSON() }

// summary shows the client's summary, the types of the extractor and the
// cache, the cache policy, the bulkhead, the switches (a skipper set among
// them) and the realm.
func (m *Middleware) summary() summary {
	s := summary{name: "introspect.Middleware"}
	if m == nil || m.cfg == nil {
		return s
	}
	cfg := m.cfg
	if m.client != nil {
		s.attrs = append(s.attrs, slog.Attr{Key: "client", Value: m.client.summary().logValue()})
	}
	s.typ("extractor", cfg.extractor)
	if cfg.cache != nil {
		s.typ("cache", cfg.cache)
		s.dur("max_ttl", cfg.maxTTL)
		s.dur("default_ttl", cfg.defaultTTL)
		s.dur("negative_ttl", cfg.negativeTTL)
		if cfg.staleTTL > 0 {
			s.dur("stale_if_error", cfg.staleTTL)
		}
		if cfg.refreshAhead > 0 {
			s.dur("refresh_ahead", cfg.refreshAhead)
		}
	}
	s.attrs = append(s.attrs, slog.Int("max_concurrent_introspections", cfg.maxConcurrent))
	s.str("realm", cfg.realm)
	s.str("resource_metadata", redactURL(cfg.resourceMetadata))
	s.flag("optional_token", cfg.optional)
	s.flag("skipper", cfg.skip != nil)
	s.flag("skip_token_binding", cfg.skipBinding)
	s.str("validation", cfg.validation.String())
	s.str("dpop", cfg.dpopMode.String())
	s.flag("client_certificate_header", cfg.certHeader != nil)
	s.flag("userinfo", cfg.userinfo != nil)
	s.flag("hooks", cfg.hooks != nil)
	s.flag("logger", cfg.logger != nil)
	return s
}

// Format prints the middleware's client (as [Client.Format] does), the types
// of its extractor and cache, its cache policy and switches, the same for
// every verb; never a secret, a token or a cache key.
func (m *Middleware) Format(f fmt.State, _ rune) {
	if m == nil {
		_, _ = io.WriteString(f, "<nil>")
		return
	}
	m.summary().format(f)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (m *Middleware) LogValue() slog.Value {
	if m == nil {
		return slog.StringValue("<nil>")
	}
	return m.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (m *Middleware) MarshalJSON() ([]byte, error) { return m.summary().marshalJSON() }

// summary shows the endpoint without user info, query or fragment, and the
// credentials as [Credentials.LogValue] does.
func (cc ClientContext) summary(name string) summary {
	s := summary{name: name}
	s.str("endpoint", redactURL(cc.Endpoint))
	s.str("issuer", redactURL(cc.Issuer))
	s.attrs = append(s.attrs, slog.Attr{Key: "credentials", Value: cc.Credentials.LogValue()})
	return s
}

// Format prints the endpoint and the issuer without user info, query or
// fragment, the client ID and the authentication method, the same for every
// verb.
func (cc ClientContext) Format(f fmt.State, _ rune) {
	cc.summary("introspect.ClientContext").format(f)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (cc ClientContext) LogValue() slog.Value {
	return cc.summary("introspect.ClientContext").logValue()
}

// MarshalJSON writes the default JSON form of the struct, Endpoint, Issuer
// and Credentials (whose secrets are left out), with the URLs' user info,
// query and fragment removed.
func (cc ClientContext) MarshalJSON() ([]byte, error) {
	type plain ClientContext // the struct without its methods
	return json.Marshal(plain{Endpoint: redactURL(cc.Endpoint), Issuer: redactURL(cc.Issuer), Credentials: cc.Credentials})
}

// Format prints what [ClientContext.Format] prints.
func (s StaticClientStore) Format(f fmt.State, _ rune) {
	ClientContext(s).summary("introspect.StaticClientStore").format(f)
}

// LogValue implements [slog.LogValuer] as [ClientContext.LogValue] does.
func (s StaticClientStore) LogValue() slog.Value { return ClientContext(s).LogValue() }

// MarshalJSON writes what [ClientContext.MarshalJSON] writes.
func (s StaticClientStore) MarshalJSON() ([]byte, error) { return ClientContext(s).MarshalJSON() }

// Format prints "introspect.CacheKey(" and a pseudonym of the key, whatever
// the verb: the hex HMAC-SHA-256 of the key under a random key drawn once per
// process. A key printed as it is would identify its token in logs; a
// constant would give every key the same name to code that names entries
// after fmt's form of the key (fmt.Sprintf("%x", key)), so that one token's
// verdict would answer for another. The pseudonym is as distinct as the key
// within the process, means nothing outside it, and changes with every
// start: name shared entries after k[:] (hex.EncodeToString), never fmt.
func (k CacheKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "introspect.CacheKey("+k.pseudonym()+")")
}

// LogValue implements [slog.LogValuer]: the pseudonym that Format prints.
func (k CacheKey) LogValue() slog.Value { return slog.StringValue(k.pseudonym()) }

// pseudonymKey is the random HMAC key of CacheKey pseudonyms, drawn once.
var pseudonymKey = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return b
})

func (k CacheKey) pseudonym() string {
	m := hmac.New(sha256.New, pseudonymKey())
	m.Write(k[:])
	return hex.EncodeToString(m.Sum(nil))
}

// errCacheKeyJSON is the error of [CacheKey.MarshalJSON].
var errCacheKeyJSON = errors.New("introspect: a CacheKey is not marshalled to JSON: it identifies a token; encode k[:] explicitly")

// MarshalJSON refuses: a key written in the clear would identify its
// token, and one written as a constant would make every key the same to
// code that stores entries under their JSON form. Encode k[:] explicitly
// where a key must be stored.
func (k CacheKey) MarshalJSON() ([]byte, error) { return nil, errCacheKeyJSON }

// summary shows the number of shards and of entries held in each space.
func (c LRUCache) summary() summary {
	active, negative := c.Len()
	return summary{name: "introspect.LRUCache", attrs: []slog.Attr{
		slog.Int("shards", len(c.positive)),
		slog.Int("active", active),
		slog.Int("negative", negative),
		slog.Bool("negative_space", c.negative != nil),
	}}
}

// Format prints the number of shards and of entries held, the same for
// every verb; never a key or an entry.
func (c LRUCache) Format(f fmt.State, _ rune) { c.summary().format(f) }

// LogValue implements [slog.LogValuer] with the attributes Format prints,
// "<nil>" for a nil *LRUCache.
func (c *LRUCache) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return c.summary().logValue()
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (c LRUCache) MarshalJSON() ([]byte, error) { return c.summary().marshalJSON() }
