package introspectredis

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/redis/go-redis/v9"
)

// DefaultReplayPrefix is the default prefix of the keys of a [ReplayCache].
const DefaultReplayPrefix = "introspect:dpop:"

// ReplayCache is an [introspect.DPoPReplayCache] in Redis, for replicas
// that verify DPoP proofs (RFC 9449): a proof accepted by one replica is a
// replay to every other replica that shares the Redis, the secret and the
// prefix, where an in-memory cache per replica would accept it once on each.
// Give it to the middleware with [introspect.WithDPoPReplayCache]:
//
//	replay, err := introspectredis.NewReplayCache(rdb, secret)
//	...
//	mw, err := introspect.New(..., introspect.WithDPoP(introspect.DPoPAllowed,
//		introspect.WithDPoPReplayCache(replay)))
//
// Each proof costs one command, SET key 1 NX PX ms, which records the
// proof and tests whether it was recorded already in one atomic step. The key
// is the prefix ([WithReplayPrefix]) and the hex HMAC-SHA-256 of the
// verifier's 32-byte replay key (itself a SHA-256 of the proof key's
// thumbprint and the proof's jti) under a key derived from the secret: Redis
// learns neither the jti nor which client key made a proof, and records of
// different secrets never meet. A record expires when the verifier says,
// at the end of the proof's lifetime and the verifier's leeway: it is set
// to last the time left until then by the replica's clock (PX), so an
// offset between Redis's clock and the replicas' does not matter. Keep the
// replicas' clocks synchronised within the leeway, as their checks of a
// proof's iat need anyway: a record made by a replica whose clock is ahead
// ends early for one behind it, which then still accepts the proof. Redis
// keeps the end by its own clock, so a step of that clock moves it, and
// Redis 7 passes it on to its replicas as a time: keep the clocks of
// Redis's primary and replicas synchronised too. Redis's own expiry bounds
// what a flood of proofs can cost it: one key of about 150 bytes per
// accepted proof, for the proof lifetime. Use a maxmemory-policy of noeviction: a record evicted early
// lets its proof be replayed.
//
// Every call is bounded by the command timeout ([WithReplayTimeout]). A call
// that fails or times out is an error, and the verifier refuses the proof
// (401 invalid_dpop_proof): while Redis is down, requests with DPoP proofs
// fail closed, since without the record a replay could not be told from a
// first use; Bearer tokens are not affected. There is no backoff: each proof
// tries Redis.
//
// It is safe for concurrent use. Its printed forms show the prefix and the
// timeout, never the secret or a key derived from it.
type ReplayCache struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	mac     []byte           // the HMAC key of the names
	now     func() time.Time // the replica's clock; time.Now
}

var _ introspect.DPoPReplayCache = (*ReplayCache)(nil)

// ReplayOption configures [NewReplayCache].
type ReplayOption func(*replayConfig)

type replayConfig struct {
	prefix  string
	timeout time.Duration
	errs    []error
}

// WithReplayPrefix sets the prefix of the replay cache's keys. Replicas that
// must catch each other's replays use the same prefix (and secret); APIs that
// accept each other's proofs never do, since a proof names the URL it is for,
// so they may share one. Default [DefaultReplayPrefix], "introspect:dpop:".
func WithReplayPrefix(p string) ReplayOption {
	return func(c *replayConfig) { c.prefix = p }
}

// WithReplayTimeout bounds each call to Redis: past it the proof is refused.
// Keep it short: it is what a dead or slow Redis adds to a request with a
// DPoP proof. Default [DefaultTimeout], 50 ms.
func WithReplayTimeout(d time.Duration) ReplayOption {
	return func(c *replayConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("introspectredis: WithReplayTimeout: %v is not positive", d))
			return
		}
		c.timeout = d
	}
}

// NewReplayCache returns a DPoP replay cache in Redis through client, which
// may be a single node, Sentinel or Cluster client. secret, at least
// [MinSecretSize] random bytes shared by all replicas, keys the names of the
// records; it may be the secret given to [New], from which the replay cache
// derives a key of its own. The cache does not own client: closing it is the
// caller's business.
func NewReplayCache(client redis.UniversalClient, secret []byte, opts ...ReplayOption) (*ReplayCache, error) {
	cfg := replayConfig{prefix: DefaultReplayPrefix, timeout: DefaultTimeout}
	if client == nil {
		cfg.errs = append(cfg.errs, errors.New("introspectredis: NewReplayCache: nil client"))
	}
	if len(secret) < MinSecretSize {
		cfg.errs = append(cfg.errs, fmt.Errorf("introspectredis: NewReplayCache: the secret must be at least %d bytes, not %d", MinSecretSize, len(secret)))
	}
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("introspectredis: NewReplayCache: nil option"))
			continue
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, secret, nil, "introspectredis v1 dpop replay", 32)
	if err != nil {
		return nil, fmt.Errorf("introspectredis: NewReplayCache: deriving the key: %w", err)
	}
	return &ReplayCache{client: client, prefix: cfg.prefix, timeout: cfg.timeout, mac: mac, now: time.Now}, nil
}

var errReplayNotMade = errors.New("introspectredis: replay: ReplayCache not made by NewReplayCache")

// Seen implements [introspect.DPoPReplayCache]: it records key until until
// and reports whether a record of key was there already, in one SET NX PX
// with the milliseconds left until until by the replica's clock (at least
// one: an until already past still asks whether a record is there). It
// returns an error, and the verifier refuses the proof, when Redis fails or
// does not answer within the timeout, when ctx ends first, and for an
// until before 1970.
func (c *ReplayCache) Seen(ctx context.Context, key [32]byte, until time.Time) (bool, error) {
	if c == nil || c.client == nil || c.mac == nil || c.now == nil {
		return false, errReplayNotMade
	}
	if until.UnixMilli() < 1 {
		return false, errors.New("introspectredis: replay: the record would end before 1970")
	}
	left := until.Sub(c.now()) // at most the largest Duration, some 292 years
	ms := int64(left / time.Millisecond)
	if left%time.Millisecond > 0 {
		ms++ // rounded up, without overflowing
	}
	ms = max(ms, 1)
	name := c.name(key)
	_, err := call(ctx, c.timeout, func(ctx context.Context) (any, error) {
		return c.client.Do(ctx, "SET", name, "1", "NX", "PX", ms).Result()
	})
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, redis.Nil): // NX: the key was there
		return true, nil
	}
	return false, fmt.Errorf("introspectredis: replay: %w", err)
}

// name returns the Redis key of a record: the prefix and the hex HMAC of key.
func (c *ReplayCache) name(key [32]byte) string {
	h := hmac.New(sha256.New, c.mac)
	h.Write(key[:])
	var sum [sha256.Size]byte
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], h.Sum(sum[:0]))
	return c.prefix + string(buf[:])
}

// Format prints the prefix and the timeout, whatever the verb; never the
// secret or a key derived from it.
func (c ReplayCache) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "introspectredis.ReplayCache{prefix: %q, timeout: %v}", c.prefix, c.timeout)
}

// LogValue implements [slog.LogValuer] with the prefix and the timeout, as
// Format prints them.
func (c *ReplayCache) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("prefix", c.prefix), slog.Duration("timeout", c.timeout))
}

// MarshalJSON writes the prefix and the timeout, as Format prints them, as a
// JSON object.
func (c ReplayCache) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Prefix  string `json:"prefix"`
		Timeout string `json:"timeout"`
	}{c.prefix, c.timeout.String()})
}
