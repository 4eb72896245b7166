package introspect

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
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
//
// The hashed message is
//
//	len(endpoint) ‖ endpoint ‖ len(clientID) ‖ clientID ‖ zeros ‖ len(token) ‖ token
//
// with each length a 32-bit big-endian integer and as many zero bytes (0 to
// 63) as bring the token's part to a multiple of 64 bytes, SHA-256's block.
// The number of zeros follows from the two lengths before them, so the
// message still decodes to one triple only. The alignment lets a key cost
// the token's blocks only: SHA-256's state after the first part is computed
// once per endpoint and client, and restored for each token. Releases before
// this layout derived other keys from the same triple (the same message
// without the zeros): entries a shared cache holds from them are misses, and
// evictions by replicas of one release do not reach entries that replicas
// of the other read.
func NewCacheKey(endpoint, clientID, token string) CacheKey {
	h := sha256.New()
	p := keyPrefixFor(endpoint, clientID)
	u, ok := h.(encoding.BinaryUnmarshaler)
	if p == nil || !ok || u.UnmarshalBinary(p.state[:]) != nil {
		// No state to restore (a hash that cannot restore one): the whole
		// message, which yields the same key.
		var buf [256]byte
		h.Reset()
		h.Write(appendKeyPrefix(buf[:0], endpoint, clientID))
	}
	var buf [sha256.BlockSize]byte
	b := binary.BigEndian.AppendUint32(buf[:0], uint32(len(token)))
	for {
		n := copy(buf[len(b):], token)
		h.Write(buf[:len(b)+n])
		if token = token[n:]; token == "" {
			break
		}
		b = buf[:0]
	}
	var k CacheKey
	h.Sum(k[:0])
	return k
}

// keyPrefix is SHA-256's state after the first part of the key's message
// for one endpoint and client (see [NewCacheKey]).
type keyPrefix struct {
	endpoint, clientID string
	state              [keyStateSize]byte
}

// keyStateSize is the size of a SHA-256 state marshalled by crypto/sha256:
// a 4-byte tag, the 8 words, the 64-byte buffer and the 8-byte length.
const keyStateSize = 4 + 8*4 + sha256.BlockSize + 8

// keyPrefixes memoises the prefix states of NewCacheKey, a plain function
// that every middleware and cache of the process shares. It is bounded: each
// (endpoint, client) pair has one slot, chosen by a seeded hash of the pair,
// and a pair that finds its slot taken by another replaces it. It holds
// endpoint URLs and client IDs, no token and no secret, and nothing in it
// changes a key: only what a key costs. lastKeyPrefix is the state computed
// last: with one endpoint and client, the only one, found without hashing
// the pair.
var (
	keyPrefixes   [64]atomic.Pointer[keyPrefix]
	lastKeyPrefix atomic.Pointer[keyPrefix]
	keyPrefixSeed = maphash.MakeSeed()
)

// keyPrefixFor returns the prefix state of endpoint and clientID, or nil
// when crypto/sha256 cannot marshal its state.
func keyPrefixFor(endpoint, clientID string) *keyPrefix {
	if p := lastKeyPrefix.Load(); p != nil && p.endpoint == endpoint && p.clientID == clientID {
		return p
	}
	slot := &keyPrefixes[(maphash.String(keyPrefixSeed, endpoint)^
		maphash.String(keyPrefixSeed, clientID)*0x9e3779b97f4a7c15)%uint64(len(keyPrefixes))]
	if p := slot.Load(); p != nil && p.endpoint == endpoint && p.clientID == clientID {
		return p
	}
	// The strings are kept as given, not copied: a caller that passes the
	// same strings each time (a static configuration) has them compared by
	// their pointers.
	p := &keyPrefix{endpoint: endpoint, clientID: clientID}
	if !p.compute() {
		return nil
	}
	slot.Store(p)
	lastKeyPrefix.Store(p)
	return p
}

// compute sets p.state from p.endpoint and p.clientID. It reports false if
// the hash cannot marshal its state into p.state.
func (p *keyPrefix) compute() bool {
	var buf [256]byte
	h := sha256.New()
	h.Write(appendKeyPrefix(buf[:0], p.endpoint, p.clientID))
	m, ok := h.(encoding.BinaryAppender)
	if !ok {
		return false
	}
	b, err := m.AppendBinary(p.state[:0])
	return err == nil && len(b) == len(p.state) && &b[0] == &p.state[0]
}

// appendKeyPrefix appends the first part of the key's message to b: the
// length-prefixed endpoint and client ID, then zeros to the next multiple of
// the block size.
func appendKeyPrefix(b []byte, endpoint, clientID string) []byte {
	start := len(b)
	for _, s := range [2]string{endpoint, clientID} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	var zeros [sha256.BlockSize]byte
	return append(b, zeros[:-(len(b)-start)&(sha256.BlockSize-1)]...)
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
	positive []*lruShard
	negative []*lruShard
	// writes serializes Set and Delete of the keys of one shard index, so
	// that a key is in one space at most: without it, an active and an
	// inactive Set of one key at once could leave it in both.
	writes []sync.Mutex
	now    func() time.Time
}

// lruItem is a cached entry with its key and the time it was last moved to
// the front of its LRU list. A lookup moves the entry to the front (under
// the shard's write lock) at most once per promoteEvery: a token in heavy
// use does not serialise its requests on one lock, and eviction order stays
// least-recently-used to within that interval.
type lruItem struct {
	entry    CacheEntry
	promoted atomic.Int64 // UnixNano
	key      CacheKey     // after the pointers, which the garbage collector reads up to
}

const promoteEvery = time.Second

// lruShard is one shard of a space of an [LRUCache]: an LRU of golang-lru,
// and a few slots through which lookups find the entries most recently
// stored or moved to the front without taking a lock. A read lock would do
// for them, but every read lock and unlock writes the lock's reader count,
// and a token used on every core at once would make that one cache line
// travel between the cores on every request.
type lruShard struct {
	// hot holds entries of lru, at most one per slot, the slot chosen by the
	// key. It is written only under mu's write lock, and every write there
	// that drops an entry from lru clears its slot: a lookup that finds its
	// key in a slot finds an entry that lru held at that moment.
	hot [hotSlots]hotSlot

	mu  sync.RWMutex
	lru *simplelru.LRU[CacheKey, *lruItem] // guarded by mu
}

// hotSlot is an entry and the first bytes of its key, which a lookup
// compares before it reads the entry (another token's, most of the time,
// and not in the processor's cache).
type hotSlot struct {
	tag atomic.Uint64
	it  atomic.Pointer[lruItem]
}

// hotSlots is the number of slots per shard: two cache lines.
const hotSlots = 8

func newLRUShard(size int) *lruShard {
	s := &lruShard{}
	s.lru, _ = simplelru.NewLRU(max(size, 1), s.dropped) // only fails for size <= 0
	return s
}

func keyTag(key CacheKey) uint64 { return binary.LittleEndian.Uint64(key[:8]) }

func (s *lruShard) slot(key CacheKey) *hotSlot { return &s.hot[key[1]%hotSlots] }

// setHot puts it in its slot; under mu's write lock.
func (s *lruShard) setHot(it *lruItem) {
	h := s.slot(it.key)
	h.it.Store(it)
	h.tag.Store(keyTag(it.key))
}

// dropped is called by lru, under mu's write lock, for an entry it removes
// or evicts.
func (s *lruShard) dropped(key CacheKey, it *lruItem) {
	s.slot(key).it.CompareAndSwap(it, nil)
}

func (s *lruShard) peek(key CacheKey) (*lruItem, bool) {
	// The tag and the entry are read one after the other, not together: the
	// whole key, compared last, decides.
	if h := s.slot(key); h.tag.Load() == keyTag(key) {
		if it := h.it.Load(); it != nil && it.key == key {
			return it, true
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lru.Peek(key)
}

func (s *lruShard) promote(it *lruItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.lru.Get(it.key); ok && cur == it {
		s.setHot(it)
	}
}

func (s *lruShard) add(it *lruItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Add(it.key, it) // replacing an entry does not call dropped
	s.setHot(it)
}

func (s *lruShard) remove(key CacheKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lru.Remove(key)
}

// removeItem removes it, unless it has left the shard already (a newer
// entry of its key stays).
func (s *lruShard) removeItem(it *lruItem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.lru.Peek(it.key); ok && cur == it {
		s.lru.Remove(it.key)
	}
}

func (s *lruShard) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lru.Len()
}

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
	c := &LRUCache{mask: uint8(shards - 1), writes: make([]sync.Mutex, shards), now: cfg.now}
	c.positive = makeShards(size, shards)
	if cfg.negative > 0 {
		c.negative = makeShards(cfg.negative, shards)
	}
	return c, nil
}

func makeShards(size, n int) []*lruShard {
	s := make([]*lruShard, n)
	for i := range s {
		per := size / n
		if i < size%n {
			per++
		}
		s[i] = newLRUShard(per)
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
	s := c.positive[i]
	it, ok := s.peek(key)
	if !ok && c.negative != nil {
		s = c.negative[i]
		it, ok = s.peek(key)
	}
	if !ok {
		return CacheEntry{}, false
	}
	if !now.Before(it.entry.StaleUntil) {
		s.removeItem(it)
		return CacheEntry{}, false
	}
	t := now.UnixNano()
	if since := t - it.promoted.Load(); since >= int64(promoteEvery) || since < 0 { // < 0: the clock went back
		it.promoted.Store(t)
		s.promote(it)
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
	it := &lruItem{key: key, entry: e}
	it.promoted.Store(c.now().UnixNano())
	c.writes[i].Lock()
	defer c.writes[i].Unlock()
	if e.Introspection.Active {
		if c.negative != nil {
			c.negative[i].remove(key)
		}
		c.positive[i].add(it)
		return nil
	}
	c.positive[i].remove(key)
	if c.negative != nil {
		c.negative[i].add(it)
	}
	return nil
}

// Delete implements [Cache].
func (c *LRUCache) Delete(_ context.Context, key CacheKey) error {
	i := c.shard(key)
	c.writes[i].Lock()
	defer c.writes[i].Unlock()
	c.positive[i].remove(key)
	if c.negative != nil {
		c.negative[i].remove(key)
	}
	return nil
}

// Len reports the number of active and negative entries held.
func (c *LRUCache) Len() (active, negative int) {
	for _, s := range c.positive {
		active += s.len()
	}
	for _, s := range c.negative {
		negative += s.len()
	}
	return active, negative
}
