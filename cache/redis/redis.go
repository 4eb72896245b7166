package introspectredis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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

	// MinSecretSize is the least number of bytes of the secret given to [New].
	MinSecretSize = 32
)

// ErrInvalidValue is wrapped by the error of [Cache.Get] when a value in
// Redis does not open: altered, copied under another name, written under
// other keys, too large or malformed. Such a value is a miss, never a
// verdict.
var ErrInvalidValue = errors.New("introspectredis: invalid cached value")

// ErrUnavailable is wrapped by the errors of [Cache.Get] and [Cache.Set]
// while the cache backs off after a failed call to Redis (see
// [WithBackoff]): they fail at once, without a call.
var ErrUnavailable = errors.New("introspectredis: Redis unavailable")

// Cache is an [introspect.Cache] in Redis, shared by every replica that uses
// the same Redis, secret and prefix. It is safe for concurrent use.
//
// An entry is stored under the prefix and the hex HMAC-SHA-256 of the core's
// key (itself a hash of the token) under a key derived from the secret: the
// token, or an unsalted hash of it, never reaches Redis. Its value is the
// verdict in a compact binary form, authenticated under the secret (see
// [WithEncryptionKey] to encrypt it as well), with a Redis TTL that ends at
// the entry's StaleUntil, never after the token's exp.
//
// Every call is bounded by the command timeout ([WithTimeout]), and after a
// failed call the cache leaves Redis alone for a while ([WithBackoff]): a
// slow or dead Redis costs a request at most the timeout, most requests
// nothing, and the middleware then asks the authorization server, as on a
// miss.
type Cache struct {
	client   redis.UniversalClient
	prefix   string
	channel  string
	timeout  time.Duration
	backoff  time.Duration
	maxValue int
	keys     *keys
	now      func() time.Time
	// downUntil is when the backoff after a failure ends, in Unix
	// nanoseconds; 0 while Redis answers.
	downUntil atomic.Int64
}

var _ introspect.Cache = (*Cache)(nil)

// Option configures [New].
type Option func(*config)

type config struct {
	prefix   string
	timeout  time.Duration
	backoff  time.Duration
	maxValue int
	enc      []byte
	errs     []error
}

// WithPrefix sets the prefix of every key the cache writes, and of the
// channel on which evictions are announced ("<prefix>evict"). Replicas that
// share entries must use the same prefix; a new prefix is a clean start
// (after a change of secret or encryption key, say). Default
// [DefaultPrefix], "introspect:".
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithTimeout bounds each call to Redis (Get, Set, and Delete with its
// announcement): past it the call fails and the request goes on without the
// cache. Keep it short: it is what a dead or slow Redis adds to a request.
// Default [DefaultTimeout], 50 ms.
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
	cfg := config{prefix: DefaultPrefix, timeout: DefaultTimeout, backoff: DefaultBackoff, maxValue: DefaultMaxValueSize}
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
		client:   client,
		prefix:   cfg.prefix,
		channel:  cfg.prefix + "evict",
		timeout:  cfg.timeout,
		backoff:  cfg.backoff,
		maxValue: cfg.maxValue,
		keys:     k,
		now:      time.Now,
	}, nil
}

// Format prints the cache's prefix and nothing of its secrets, whatever the
// verb.
func (c *Cache) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "introspectredis.Cache{prefix: %q}", c.prefix)
}

// name returns the Redis key of an entry.
func (c *Cache) name(d digest) string {
	var buf [2 * len(digest{})]byte
	hex.Encode(buf[:], d[:])
	return c.prefix + string(buf[:])
}

// Get implements [introspect.Cache]. An error means a miss: Redis failed or
// timed out, or the value did not open ([ErrInvalidValue]).
func (c *Cache) Get(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	if !c.available() {
		return introspect.CacheEntry{}, false, fmt.Errorf("%w: get skipped during the backoff", ErrUnavailable)
	}
	d := c.keys.digest(key)
	name := c.name(d)
	max := int64(c.maxValue)
	v, err := call(ctx, c.timeout, func(ctx context.Context) (string, error) {
		// GETRANGE rather than GET bounds the read: a huge value is cut at
		// max+1 bytes by Redis, never read whole. A missing key is "".
		return c.client.GetRange(ctx, name, 0, max).Result()
	})
	c.report(ctx, err)
	if err != nil {
		return introspect.CacheEntry{}, false, fmt.Errorf("introspectredis: get: %w", err)
	}
	if v == "" {
		return introspect.CacheEntry{}, false, nil
	}
	if len(v) > c.maxValue {
		return introspect.CacheEntry{}, false, fmt.Errorf("%w: larger than %d bytes", ErrInvalidValue, c.maxValue)
	}
	p, err := c.keys.open(d, []byte(v))
	if err != nil {
		return introspect.CacheEntry{}, false, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	e, err := decodeEntry(p)
	if err != nil {
		return introspect.CacheEntry{}, false, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	if !c.now().Before(e.StaleUntil) {
		return introspect.CacheEntry{}, false, nil
	}
	return e, true, nil
}

// Set implements [introspect.Cache]. The Redis TTL ends at e.StaleUntil, or
// at the token's exp if that is earlier, to the millisecond below; an entry
// with less than a millisecond left is deleted instead.
func (c *Cache) Set(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry) error {
	ti := e.Introspection
	if ti == nil {
		return errors.New("introspectredis: set: cache entry without a verdict")
	}
	until := e.StaleUntil
	if ti.Active && !ti.Expiry.IsZero() && ti.Expiry.Before(until) {
		until = ti.Expiry
	}
	if !c.available() {
		return fmt.Errorf("%w: set skipped during the backoff", ErrUnavailable)
	}
	ttl := until.Sub(c.now()).Truncate(time.Millisecond)
	d := c.keys.digest(key)
	name := c.name(d)
	if ttl < time.Millisecond {
		_, err := call(ctx, c.timeout, func(ctx context.Context) (int64, error) {
			return c.client.Del(ctx, name).Result()
		})
		c.report(ctx, err)
		if err != nil {
			return fmt.Errorf("introspectredis: set: %w", err)
		}
		return nil
	}
	v, err := c.keys.seal(d, appendEntry(nil, e))
	if err != nil {
		return fmt.Errorf("introspectredis: set: sealing: %w", err)
	}
	if len(v) > c.maxValue {
		return fmt.Errorf("introspectredis: set: value of %d bytes exceeds the limit of %d", len(v), c.maxValue)
	}
	_, err = call(ctx, c.timeout, func(ctx context.Context) (string, error) {
		return c.client.Set(ctx, name, v, ttl).Result()
	})
	c.report(ctx, err)
	if err != nil {
		return fmt.Errorf("introspectredis: set: %w", err)
	}
	return nil
}

// Delete implements [introspect.Cache]: it removes the entry from Redis and
// announces the eviction to the [TwoTier] caches of every replica, which drop
// their local copy.
func (c *Cache) Delete(ctx context.Context, key introspect.CacheKey) error {
	msg, err := c.keys.sealEvict(key)
	if err != nil {
		return fmt.Errorf("introspectredis: delete: %w", err)
	}
	name := c.name(c.keys.digest(key))
	_, err = call(ctx, c.timeout, func(ctx context.Context) (struct{}, error) {
		errDel := c.client.Del(ctx, name).Err()
		errPub := c.client.Publish(ctx, c.channel, msg).Err()
		return struct{}{}, errors.Join(errDel, errPub)
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
