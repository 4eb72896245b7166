package introspectredis

import (
	"encoding/json"
	"log/slog"
)

// The printed forms of the caches for log/slog and encoding/json; their
// Format methods sit with the types. Each shows what Format shows, never
// the secret, the encryption key, the keys derived from them, a token or a
// cache key.

// LogValue implements [slog.LogValuer] with the prefix, as Format prints it.
func (c *Cache) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("prefix", c.prefix))
}

// MarshalJSON writes the prefix, as Format prints it, as a JSON object.
func (c *Cache) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Prefix string `json:"prefix"`
	}{c.prefix})
}

// LogValue implements [slog.LogValuer] with the prefix and the local TTL, as
// Format prints them.
func (t *TwoTier) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("<nil>")
	}
	var attrs []slog.Attr
	if t.remote != nil {
		attrs = append(attrs, slog.String("prefix", t.remote.prefix))
	}
	return slog.GroupValue(append(attrs, slog.Duration("local_ttl", t.localTTL))...)
}

// MarshalJSON writes the prefix and the local TTL, as Format prints them, as
// a JSON object.
func (t *TwoTier) MarshalJSON() ([]byte, error) {
	s := struct {
		Prefix   string `json:"prefix"`
		LocalTTL string `json:"local_ttl"`
	}{LocalTTL: t.localTTL.String()}
	if t.remote != nil {
		s.Prefix = t.remote.prefix
	}
	return json.Marshal(s)
}
