package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Cache stores verdicts of the authorization server under opaque keys. Keys
// are SHA-256 digests (see [CacheKey]); a raw token is never a key or a value.
//
// Implementations must be safe for concurrent use. Errors are reported
// through the hooks and treated as misses: a failing cache never fails a
// request. The in-memory implementation is [LRUCache]; the module
// github.com/introspect-go/introspect/cache/redis shares one across replicas.
type Cache interface {
	// Get returns the entry stored under key. It must not return an entry
	// after its StaleUntil.
	Get(ctx context.Context, key CacheKey) (CacheEntry, bool, error)
	// Set stores e under key until e.StaleUntil at the latest.
	Set(ctx context.Context, key CacheKey, e CacheEntry) error
	// Delete removes the entry stored under key, if any.
	Delete(ctx context.Context, key CacheKey) error
}

// CacheKey identifies one token at one client of one authorization server.
type CacheKey [sha256.Size]byte

// CacheEntry is a cached verdict.
type CacheEntry struct {
	// Introspection is the authorization server's answer; an inactive one is
	// a negative entry. Shared between requests: read-only.
	Introspection *Introspection
	// Expiry is the end of the entry's freshness: never after the token's exp.
	Expiry time.Time
	// StaleUntil is how long the entry is kept: Expiry, or later when
	// stale-if-error is on. A cache may drop an entry earlier, never keep it
	// longer.
	StaleUntil time.Time
}

// NewCacheKey derives the key of token at the client clientID of the
// introspection endpoint: SHA-256 over the three, each length-prefixed so no
// two triples collide. Tenants and clients therefore never share entries.
func NewCacheKey(endpoint, clientID, token string) CacheKey {
	n := 12 + len(endpoint) + len(clientID) + len(token)
	var stack [1024]byte
	var b []byte
	if n <= len(stack) {
		b = stack[:0]
	} else {
		b = make([]byte, 0, n)
	}
	for _, s := range [3]string{endpoint, clientID, token} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return sha256.Sum256(b)
}
