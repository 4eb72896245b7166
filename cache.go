package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache stores verdicts of the authorization server under opaque keys. Keys
// are SHA-256 digests (see [CacheKey]); a raw token is never a key or a value.
//
// Implementations must be safe for concurrent use. Errors are reported
// through the hooks and treated as misses: a failing cache never fails a
// request. The in-memory implementation is [LRUCache]; the module
// github.com/introspect-go/introspect/cache/redis shares one across replicas.
type Cache interface {
	// Get returns the entry stored under key. It should not return an entry
	// after its StaleUntil; the middleware checks the times again with its own
	// clock in any case.
	Get(ctx context.Context, key CacheKey) (CacheEntry, bool, error)
	// Set stores e under key until e.StaleUntil at the latest.
	Set(ctx context.Context, key CacheKey, e CacheEntry) error
	// Delete removes the entry stored under key, if any.
	Delete(ctx context.Context, key CacheKey) error
}

// FencedCache is a [Cache] shared between processes (replicas on one Redis,
// say) that can refuse a write made on the strength of a call to the
// authorization server that started before an eviction of its key, made by
// any process. The middleware uses it when its cache implements it: it reads
// the key's fence before asking the authorization server and stores the
// answer only under that fence, so an [Middleware.Evict] in one replica is
// not undone by a call in flight in another.
type FencedCache interface {
	Cache
	// GetFenced is Get that also returns the fence of key: an opaque value
	// that every Delete of key, by any process, replaces. With an error it
	// returns the empty fence unless the fence itself was read (a stored
	// value that does not open, say): the middleware then stores its answer
	// under that fence, and under no fence at all when it is empty.
	GetFenced(ctx context.Context, key CacheKey) (e CacheEntry, found bool, fence string, err error)
	// SetFenced stores e under key only if key's fence is still fence, that
	// is, no Delete of key happened since GetFenced returned it. It reports
	// whether it stored e.
	SetFenced(ctx context.Context, key CacheKey, e CacheEntry, fence string) (stored bool, err error)
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
	// longer, and may shorten StaleUntil below Expiry (a local tier in front
	// of a shared cache does): an entry is fresh only before both.
	StaleUntil time.Time
}

// fresh reports whether e holds a verdict that may be used at now without
// asking the authorization server.
func (e CacheEntry) fresh(now time.Time) bool {
	return e.Introspection != nil && now.Before(e.Expiry) && now.Before(e.StaleUntil)
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

// Defaults of the cache policy and of [NewLRUCache].
const (
	DefaultMaxTTL      = 5 * time.Minute
	DefaultTTL         = 30 * time.Second
	DefaultNegativeTTL = 10 * time.Second
)

// LRUCache is the in-memory [Cache]: bounded by entry count, sharded to keep
// lock contention low, with a separate, smaller space for negative entries so
// a flood of unknown tokens cannot evict the entries of good ones.
type LRUCache struct {
	mask     uint8
	positive []*lru.Cache[CacheKey, *lruItem]
	negative []*lru.Cache[CacheKey, *lruItem]
	now      func() time.Time
}

// lruItem is a cached entry with the time it was last moved to the front of
// its LRU list. A lookup takes the shard's read lock and moves the entry to
// the front (under the write lock) at most once per promoteEvery: a token in
// heavy use does not serialise its requests on one lock, and eviction order
// stays least-recently-used to within that interval.
type lruItem struct {
	entry    CacheEntry
	promoted atomic.Int64 // UnixNano
}

const promoteEvery = time.Second

var _ Cache = (*LRUCache)(nil)

// LRUOption configures [NewLRUCache].
type LRUOption func(*lruConfig)

type lruConfig struct {
	negative int
	now      func() time.Time
	errs     []error
}

// WithNegativeSize bounds the number of negative (inactive-token) entries.
// Zero turns negative entries off in this cache. Default a tenth of the
// cache's size, at least 16.
func WithNegativeSize(n int) LRUOption {
	return func(c *lruConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("introspect: WithNegativeSize: %d is negative", n))
			return
		}
		c.negative = n
	}
}

// WithLRUClock sets the clock the cache uses to drop expired entries. Default
// time.Now. A middleware using the cache looks entries up by its own clock
// ([WithClock]).
func WithLRUClock(now func() time.Time) LRUOption {
	return func(c *lruConfig) {
		if now == nil {
			c.errs = append(c.errs, errors.New("introspect: WithLRUClock: nil clock"))
			return
		}
		c.now = now
	}
}

// NewLRUCache returns an in-memory cache holding at most size active entries
// (plus the negative space, see [WithNegativeSize]). Entries are spread over
// up to 16 shards, each an LRU of golang-lru.
func NewLRUCache(size int, opts ...LRUOption) (*LRUCache, error) {
	if size <= 0 {
		return nil, fmt.Errorf("introspect: NewLRUCache: size %d is not positive", size)
	}
	cfg := lruConfig{negative: max(size/10, 16), now: time.Now}
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("introspect: NewLRUCache: nil option"))
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	shards := 16
	for shards > 1 && size/shards < 64 {
		shards /= 2
	}
	c := &LRUCache{mask: uint8(shards - 1), now: cfg.now}
	c.positive = makeShards(size, shards)
	if cfg.negative > 0 {
		c.negative = makeShards(cfg.negative, shards)
	}
	return c, nil
}

func makeShards(size, n int) []*lru.Cache[CacheKey, *lruItem] {
	s := make([]*lru.Cache[CacheKey, *lruItem], n)
	for i := range s {
		per := size / n
		if i < size%n {
			per++
		}
		s[i], _ = lru.New[CacheKey, *lruItem](max(per, 1)) // only fails for size <= 0
	}
	return s
}

func (c *LRUCache) shard(key CacheKey) int { return int(key[0] & c.mask) }

// Get implements [Cache].
func (c *LRUCache) Get(_ context.Context, key CacheKey) (CacheEntry, bool, error) {
	e, ok := c.get(key, c.now())
	return e, ok, nil
}

// get is Get at the time now, which a middleware passes from its own clock
// so that a request reads the clock once.
func (c *LRUCache) get(key CacheKey, now time.Time) (CacheEntry, bool) {
	i := c.shard(key)
	it, ok := c.positive[i].Peek(key)
	space := c.positive
	if !ok && c.negative != nil {
		it, ok = c.negative[i].Peek(key)
		space = c.negative
	}
	if !ok {
		return CacheEntry{}, false
	}
	if !now.Before(it.entry.StaleUntil) {
		space[i].Remove(key)
		return CacheEntry{}, false
	}
	t := now.UnixNano()
	if since := t - it.promoted.Load(); since >= int64(promoteEvery) || since < 0 { // < 0: the clock went back
		it.promoted.Store(t)
		space[i].Get(key) // to the front
	}
	return it.entry, true
}

// Set implements [Cache]. An entry with an inactive Introspection goes to
// the negative space.
func (c *LRUCache) Set(_ context.Context, key CacheKey, e CacheEntry) error {
	if e.Introspection == nil {
		return errors.New("introspect: cache entry without a verdict")
	}
	i := c.shard(key)
	it := &lruItem{entry: e}
	it.promoted.Store(c.now().UnixNano())
	if e.Introspection.Active {
		if c.negative != nil {
			c.negative[i].Remove(key)
		}
		c.positive[i].Add(key, it)
		return nil
	}
	c.positive[i].Remove(key)
	if c.negative != nil {
		c.negative[i].Add(key, it)
	}
	return nil
}

// Delete implements [Cache].
func (c *LRUCache) Delete(_ context.Context, key CacheKey) error {
	i := c.shard(key)
	c.positive[i].Remove(key)
	if c.negative != nil {
		c.negative[i].Remove(key)
	}
	return nil
}

// Len reports the number of active and negative entries held.
func (c *LRUCache) Len() (active, negative int) {
	for _, s := range c.positive {
		active += s.Len()
	}
	for _, s := range c.negative {
		negative += s.Len()
	}
	return active, negative
}
