package introspectredis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/redis/go-redis/v9"
)

// Defaults of [New].
const (
	DefaultPrefix       = "introspect:"
	DefaultTimeout      = 50 * time.Millisecond
	DefaultMaxValueSize = 64 << 10
	DefaultBackoff      = time.Second
	DefaultTombstoneTTL = time.Hour

	// MinSecretSize is the least number of bytes of the secret given to [New].
	MinSecretSize = 32
)

// ErrInvalidValue is wrapped by the error of [Cache.Get] when a value in
// Redis does not open: altered, copied under another name, written under
// other keys, written under an earlier generation of its key (before an
// eviction) and put back, too large or malformed. Such a value is a miss,
// never a verdict.
var ErrInvalidValue = errors.New("introspectredis: invalid cached value")

// ErrUnavailable is wrapped by the errors of [Cache.Get], [Cache.Set] and
// their fenced forms while the cache backs off after a failed call to Redis
// (see [WithBackoff]): they fail at once, without a call.
var ErrUnavailable = errors.New("introspectredis: Redis unavailable")

// Cache is an [introspect.Cache] in Redis, shared by every replica that uses
// the same Redis, secret and prefix. It is safe for concurrent use.
//
// An entry is two Redis keys: its value, named by the prefix and, between
// braces, the hex HMAC-SHA-256 of the core's key (itself a hash of the
// token) under a key derived from the secret, and its generation record, the
// same name followed by "g". The token, or an unsalted hash of it, never
// reaches Redis; the braces make both keys one Redis Cluster slot. The value
// is the verdict in a compact binary form, authenticated under the secret
// (see [WithEncryptionKey] to encrypt it as well) together with the
// generation it was written under, with a Redis TTL that ends at the entry's
// StaleUntil, never after the token's exp. The record holds a random
// generation, which every Delete replaces: a value is accepted only while
// the record holds its generation, so a value written before an eviction is
// never accepted after it, and a store made on the strength of a call that
// began before it ([Cache.SetFenced]) is refused. It lives at least as long
// as the value, and at least [WithTombstoneTTL] after a Delete.
//
// Every call is bounded by the command timeout ([WithTimeout]), and after a
// failed call the cache leaves Redis alone for a while ([WithBackoff]): a
// slow or dead Redis costs a request at most the timeout, most requests
// nothing, and the middleware then asks the authorization server, as on a
// miss.
type Cache struct {
	client    redis.UniversalClient
	prefix    string
	channel   string
	timeout   time.Duration
	backoff   time.Duration
	tombstone time.Duration
	maxValue  int
	keys      *keys
	now       func() time.Time
	// downUntil is when the backoff after a failure ends, in Unix
	// nanoseconds; 0 while Redis answers.
	downUntil atomic.Int64
}

var _ introspect.FencedCache = (*Cache)(nil)

// Option configures [New].
type Option func(*config)

type config struct {
	prefix    string
	timeout   time.Duration
	backoff   time.Duration
	tombstone time.Duration
	maxValue  int
	enc       []byte
	errs      []error
}

// WithPrefix sets the prefix of every key the cache writes, and of the
// channel on which evictions are announced ("<prefix>evict"). Replicas that
// share entries must use the same prefix; a new prefix is a clean start
// (after a change of encryption key, say; against someone who can write to
// Redis, only with a new secret too, since values of one secret open under
// any prefix). The cache's own braces put a value and its record in one
// Redis Cluster slot: a hash tag in the prefix ("{app}:") puts every entry
// in that tag's one slot instead, and an empty one ("app{}:", which Redis
// ignores) would split a value from its record, so it is refused. Default
// [DefaultPrefix], "introspect:".
func WithPrefix(p string) Option {
	return func(c *config) {
		if i := strings.IndexByte(p, '{'); i >= 0 && strings.HasPrefix(p[i+1:], "}") {
			c.errs = append(c.errs, errors.New("introspectredis: WithPrefix: the prefix holds an empty hash tag, {}, which would put a value and its record in different Redis Cluster slots"))
			return
		}
		c.prefix = p
	}
}

// WithTimeout bounds each call to Redis (Get, GetFenced, SetFenced, and
// Delete with its announcement make one; Set makes a second when the key
// already has a generation record): past it the call fails and the request
// goes on without the cache. Keep it short: it is what a dead or slow Redis
// adds to a request. Default [DefaultTimeout], 50 ms.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithTimeout: %v is not positive", d))
			return
		}
		c.timeout = d
	}
}

// WithBackoff sets how long the cache leaves Redis alone after a call failed
// for want of an answer (a timeout, a refused or broken connection): Get and
// Set then fail at once with [ErrUnavailable], so a dead or frozen Redis
// costs requests no time; when d has passed, one call tries Redis again.
// Delete always tries. Zero turns backoff off. Default [DefaultBackoff], 1 s.
func WithBackoff(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithBackoff: %v is negative", d))
			return
		}
		c.backoff = d
	}
}

// WithTombstoneTTL sets how long the generation record written by Delete is
// kept at least. While it is there, an answer of the authorization server to
// a call that began before the eviction is refused by [Cache.SetFenced]
// whatever fence the call read; once it has expired, a call that read the
// key without a record could store its answer. It must therefore exceed the
// longest call to the authorization server (the middleware's call timeout)
// by a wide margin; a record costs Redis a couple of hundred bytes per
// evicted token. Default [DefaultTombstoneTTL], 1 h.
func WithTombstoneTTL(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithTombstoneTTL: %v is below a millisecond", d))
			return
		}
		c.tombstone = d
	}
}

// WithMaxValueSize bounds the size of a value: Set refuses a larger one and
// Get reads at most n+1 bytes of one, reporting a larger one as
// [ErrInvalidValue]. Default [DefaultMaxValueSize], 64 KiB.
func WithMaxValueSize(n int) Option {
	return func(c *config) {
		if n < 1<<10 {
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithMaxValueSize: %d is below 1 KiB", n))
			return
		}
		c.maxValue = n
	}
}

// WithEncryptionKey encrypts values with AES-GCM, for deployments where
// claims are personal data. key must be 16, 24 or 32 random bytes; each
// value is encrypted under a key derived from it and the entry's name. A
// cache with a key refuses values without encryption, and one without a key
// refuses encrypted values; change the prefix when turning encryption on or
// changing the key. Default: values are authenticated (HMAC-SHA-256 under
// the secret) but not encrypted.
func WithEncryptionKey(key []byte) Option {
	return func(c *config) {
		switch len(key) {
		case 16, 24, 32:
			c.enc = append([]byte(nil), key...)
		default:
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithEncryptionKey: the key must be 16, 24 or 32 bytes, not %d", len(key)))
		}
	}
}

// New returns a cache in Redis through client, which may be a single node,
// Sentinel or Cluster client. secret, at least [MinSecretSize] random bytes
// shared by all replicas, keys the names and authenticates the values; keep
// it like a password. The cache does not own client: closing it is the
// caller's business.
func New(client redis.UniversalClient, secret []byte, opts ...Option) (*Cache, error) {
	cfg := config{
		prefix: DefaultPrefix, timeout: DefaultTimeout, backoff: DefaultBackoff,
		tombstone: DefaultTombstoneTTL, maxValue: DefaultMaxValueSize,
	}
	if client == nil {
		cfg.errs = append(cfg.errs, errors.New("introspectredis: nil client"))
	}
	if len(secret) < MinSecretSize {
		cfg.errs = append(cfg.errs, fmt.Errorf("introspectredis: the secret must be at least %d bytes, not %d", MinSecretSize, len(secret)))
	}
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("introspectredis: nil option"))
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	k, err := newKeys(secret, cfg.enc)
	if err != nil {
		return nil, fmt.Errorf("introspectredis: deriving keys: %w", err)
	}
	return &Cache{
		client:    client,
		prefix:    cfg.prefix,
		channel:   cfg.prefix + "evict",
		timeout:   cfg.timeout,
		backoff:   cfg.backoff,
		tombstone: cfg.tombstone,
		maxValue:  cfg.maxValue,
		keys:      k,
		now:       time.Now,
	}, nil
}

// Format prints the cache's prefix and nothing of its secrets, whatever the
// verb.
func (c *Cache) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "introspectredis.Cache{prefix: %q}", c.prefix)
}

// names returns the Redis keys of an entry: its value and its generation
// record. The hex digest between braces is a Redis Cluster hash tag (unless
// the prefix holds one of its own, which then decides for every entry; an
// empty one is refused), so both keys live in one slot and one script can
// use both.
func (c *Cache) names(d digest) (value, record string) {
	var buf [2 * len(digest{})]byte
	hex.Encode(buf[:], d[:])
	value = c.prefix + "{" + string(buf[:]) + "}"
	return value, value + "g"
}

// The scripts that read and write entries. KEYS[1] is the value, KEYS[2] the
// generation record; GETRANGE bounds every read (a missing key reads as "").
var (
	// getScript returns the value, at most ARGV[1]+1 bytes, and the record,
	// at most ARGV[2]+1 bytes.
	getScript = redis.NewScript(`
return {redis.call('GETRANGE', KEYS[1], 0, ARGV[1]), redis.call('GETRANGE', KEYS[2], 0, ARGV[2])}
`)
	// setScript stores the value ARGV[3], sealed under the generation
	// ARGV[2], for ARGV[4] ms if the record (at most ARGV[5]+1 bytes) is
	// ARGV[1] ("": none, and then creates it holding ARGV[2]), and keeps the
	// record at least as long as the value. It returns 1 if it stored the
	// value, otherwise the record it found.
	setScript = redis.NewScript(`
local cur = redis.call('GETRANGE', KEYS[2], 0, ARGV[5])
if cur ~= ARGV[1] then
	return cur
end
local ttl = tonumber(ARGV[4])
if cur == '' then
	redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
else
	local pttl = redis.call('PTTL', KEYS[2])
	if pttl >= 0 and pttl < ttl then
		redis.call('PEXPIRE', KEYS[2], ttl)
	end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
return 1
`)
	// deleteScript replaces the record by the new generation ARGV[1], kept
	// for ARGV[2] ms or as long as the old record had left if that is
	// longer, deletes the value and publishes ARGV[4] on the channel
	// ARGV[3].
	deleteScript = redis.NewScript(`
local ttl = tonumber(ARGV[2])
local pttl = redis.call('PTTL', KEYS[2])
if pttl > ttl then
	ttl = pttl
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)
)

// Get implements [introspect.Cache]. An error means a miss: Redis failed or
// timed out, or the value did not open ([ErrInvalidValue]), which is also
// the case of a value written under an earlier generation of the key (before
// an eviction) and put back. A value without a generation record is a miss
// without an error: Redis may drop a record under memory pressure.
func (c *Cache) Get(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	e, found, _, err := c.GetFenced(ctx, key)
	return e, found, err
}

// GetFenced implements [introspect.FencedCache]: it is Get, in the same
// single round trip, that also returns the key's current generation as its
// fence ("" when the key has no generation record). When the value does not
// open, the error wraps [ErrInvalidValue] and the fence is still the key's:
// [Cache.SetFenced] under it replaces the value.
func (c *Cache) GetFenced(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, string, error) {
	if !c.available() {
		return introspect.CacheEntry{}, false, "", fmt.Errorf("%w: get skipped during the backoff", ErrUnavailable)
	}
	d := c.keys.digest(key)
	value, record := c.names(d)
	max := int64(c.maxValue)
	reply, err := call(ctx, c.timeout, func(ctx context.Context) ([]any, error) {
		// GETRANGE rather than GET bounds the read: a huge value is cut at
		// max+1 bytes by Redis, never read whole.
		return getScript.Run(ctx, c.client, []string{value, record}, max, maxGeneration-1).Slice()
	})
	c.report(ctx, err)
	if err != nil {
		return introspect.CacheEntry{}, false, "", fmt.Errorf("introspectredis: get: %w", err)
	}
	var v, gen string
	var ok1, ok2 bool
	if len(reply) == 2 {
		v, ok1 = reply[0].(string)
		gen, ok2 = reply[1].(string)
	}
	if !ok1 || !ok2 {
		return introspect.CacheEntry{}, false, "", fmt.Errorf("introspectredis: get: unexpected reply %T", reply)
	}
	if v == "" || gen == "" {
		return introspect.CacheEntry{}, false, gen, nil
	}
	if len(v) > c.maxValue {
		return introspect.CacheEntry{}, false, gen, fmt.Errorf("%w: larger than %d bytes", ErrInvalidValue, c.maxValue)
	}
	p, err := c.keys.open(d, gen, []byte(v))
	if err != nil {
		return introspect.CacheEntry{}, false, gen, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	e, err := decodeEntry(p)
	if err != nil {
		return introspect.CacheEntry{}, false, gen, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	if !c.now().Before(e.StaleUntil) {
		return introspect.CacheEntry{}, false, gen, nil
	}
	return e, true, gen, nil
}

// Set implements [introspect.Cache]: it stores e under the key's current
// generation, creating the generation record if there is none. The Redis
// TTL ends at e.StaleUntil, or at the token's exp if that is earlier, to the
// millisecond below; an entry with less than a millisecond left is deleted
// instead. Set does not know when the answer in e was obtained: a caller
// that must not undo an eviction made meanwhile uses [Cache.SetFenced]. If
// an eviction replaces the generation between the two steps of Set (the
// second is needed only when the key has a record), e is not stored, as if
// the eviction had come after it.
func (c *Cache) Set(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry) error {
	_, err := c.set(ctx, key, e, "", true)
	return err
}

// SetFenced implements [introspect.FencedCache]: it stores e as Set does,
// but only if the key's generation is still fence, as returned by
// [Cache.GetFenced] ("": the key had no generation record), in one round
// trip. It reports whether it stored e: false when an eviction ([Cache.Delete],
// by any process) replaced the generation since fence was read, or when e
// has less than a millisecond left.
func (c *Cache) SetFenced(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry, fence string) (bool, error) {
	return c.set(ctx, key, e, fence, false)
}

// set stores e under key if key's generation record is fence. With anyGen,
// fence is "" and a refusal is followed by one more try under the record
// found.
func (c *Cache) set(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry, fence string, anyGen bool) (bool, error) {
	ti := e.Introspection
	if ti == nil {
		return false, errors.New("introspectredis: set: cache entry without a verdict")
	}
	if len(fence) > maxGeneration {
		return false, fmt.Errorf("introspectredis: set: a fence of %d bytes; fences are at most %d", len(fence), maxGeneration)
	}
	until := e.StaleUntil
	if ti.Active && !ti.Expiry.IsZero() && ti.Expiry.Before(until) {
		until = ti.Expiry
	}
	if !c.available() {
		return false, fmt.Errorf("%w: set skipped during the backoff", ErrUnavailable)
	}
	ttl := until.Sub(c.now()).Truncate(time.Millisecond)
	d := c.keys.digest(key)
	value, record := c.names(d)
	if ttl < time.Millisecond {
		// Deleting a value is always safe: it can only cause a miss.
		_, err := call(ctx, c.timeout, func(ctx context.Context) (int64, error) {
			return c.client.Del(ctx, value).Result()
		})
		c.report(ctx, err)
		if err != nil {
			return false, fmt.Errorf("introspectredis: set: %w", err)
		}
		return false, nil
	}
	payload := appendEntry(nil, e)
	for try := 0; ; try++ {
		gen := fence
		if gen == "" {
			var err error
			if gen, err = newGeneration(); err != nil {
				return false, fmt.Errorf("introspectredis: set: %w", err)
			}
		}
		v, err := c.keys.seal(d, gen, payload)
		if err != nil {
			return false, fmt.Errorf("introspectredis: set: sealing: %w", err)
		}
		if len(v) > c.maxValue {
			return false, fmt.Errorf("introspectredis: set: value of %d bytes exceeds the limit of %d", len(v), c.maxValue)
		}
		reply, err := call(ctx, c.timeout, func(ctx context.Context) (any, error) {
			return setScript.Run(ctx, c.client, []string{value, record}, fence, gen, v, ttl.Milliseconds(), maxGeneration-1).Result()
		})
		c.report(ctx, err)
		if err != nil {
			return false, fmt.Errorf("introspectredis: set: %w", err)
		}
		switch r := reply.(type) {
		case int64:
			return true, nil
		case string:
			if !anyGen || try > 0 || r == "" {
				return false, nil
			}
			fence = r
		default:
			return false, fmt.Errorf("introspectredis: set: unexpected reply %T", reply)
		}
	}
}

// Delete implements [introspect.Cache]: in one round trip it replaces the
// key's generation by a new one, so that no value written before, nor a
// [Cache.SetFenced] under a fence read before, is accepted any more; deletes
// the value; and announces the eviction to the [TwoTier] caches of every
// replica, which drop their local copy. The new generation record is kept
// for the tombstone TTL ([WithTombstoneTTL]), or longer if the old one had
// longer to live.
func (c *Cache) Delete(ctx context.Context, key introspect.CacheKey) error {
	msg, err := c.keys.sealEvict(key)
	if err != nil {
		return fmt.Errorf("introspectredis: delete: %w", err)
	}
	gen, err := newGeneration()
	if err != nil {
		return fmt.Errorf("introspectredis: delete: %w", err)
	}
	value, record := c.names(c.keys.digest(key))
	_, err = call(ctx, c.timeout, func(ctx context.Context) (any, error) {
		return deleteScript.Run(ctx, c.client, []string{value, record}, gen, c.tombstone.Milliseconds(), c.channel, msg).Result()
	})
	c.report(ctx, err)
	if err != nil {
		return fmt.Errorf("introspectredis: delete: %w", err)
	}
	return nil
}

// available reports whether to call Redis: yes unless a backoff runs. When
// one has ended, only the caller that claims the probe is told yes; the
// others keep skipping Redis until the probe's outcome is reported.
func (c *Cache) available() bool {
	until := c.downUntil.Load()
	if until == 0 {
		return true
	}
	now := c.now().UnixNano()
	if now < until {
		return false
	}
	return c.downUntil.CompareAndSwap(until, now+int64(c.timeout)+int64(c.backoff))
}

// report records the outcome of a call made under the caller's ctx. A
// reply from Redis, even an error reply, means it is up; no reply means it
// is down, unless the caller gave up first.
func (c *Cache) report(ctx context.Context, err error) {
	var reply redis.Error
	switch {
	case err == nil || errors.As(err, &reply):
		if c.downUntil.Load() != 0 {
			c.downUntil.Store(0)
		}
	case ctx.Err() != nil:
	case c.backoff > 0:
		c.downUntil.Store(c.now().Add(c.backoff).UnixNano())
	}
}

// errClientPanicked is the error of a call during which the Redis client
// panicked.
var errClientPanicked = errors.New("introspectredis: the Redis client panicked")

// call runs f under the timeout and returns when f does or when the time is
// up, whichever comes first. go-redis honours context deadlines only when
// the client was built with ContextTimeoutEnabled; running f aside makes the
// bound hold for any client. An abandoned f ends at the latest when the
// client's own read timeout strikes; its result is dropped.
func call[T any](ctx context.Context, timeout time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A panic in the Redis client (a hook of the user's, say) fails the
		// call instead of the process.
		defer func() {
			if p := recover(); p != nil {
				var zero T
				done <- result{zero, errClientPanicked}
			}
		}()
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
