package introspectredis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/redis/go-redis/v9"
)

// TwoTier is an [introspect.Cache] with a small in-process cache in front of
// a [Cache] in Redis: a hit in the local tier costs no network call; a miss
// there is looked up in Redis and copied into the local tier.
//
// The local tier keeps an entry for at most the local TTL, never past the
// entry's StaleUntil. Deletes (the middleware's Evict) remove the entry from
// both tiers here and, through a Redis Pub/Sub announcement, from the local
// tier of every other replica. A copy into the local tier that races with
// an announcement is undone: each announcement counts, and a copy made
// while the count moved is deleted again. An announcement lost to a broken
// connection can leave a local copy alive: the local TTL is the bound on
// that, so keep it short (seconds).
//
// TwoTier is an [introspect.FencedCache]: the fence is the one of Redis, and
// [TwoTier.SetFenced] fills the local tier only when Redis stored the entry.
//
// A TwoTier runs one goroutine listening for evictions: call
// [TwoTier.Close] when done.
type TwoTier struct {
	local    introspect.Cache
	remote   *Cache
	localTTL time.Duration
	now      func() time.Time
	sub      *redis.PubSub
	done     chan struct{} // closed when the listener has returned
	// evictions counts the evictions seen by this process, announced or
	// local; it moves before the local entry is deleted.
	evictions atomic.Uint64

	mu     sync.Mutex // guards closed
	closed bool
}

var _ introspect.FencedCache = (*TwoTier)(nil)

// NewTwoTier returns a two-tier cache: local in front of remote, local
// entries kept for at most localTTL. local is typically a small
// [introspect.LRUCache] used by nothing else. It subscribes to the eviction
// announcements of remote's prefix, and returns once Redis has confirmed
// the subscription (or at once when Redis is down: the subscription follows
// on reconnecting); a refusal, such as an ACL without the channel, is an
// error. remote's client must be a Client or a ClusterClient: a Ring runs
// the announcing script and the subscription on different shards.
func NewTwoTier(remote *Cache, local introspect.Cache, localTTL time.Duration) (*TwoTier, error) {
	var errs []error
	if remote == nil {
		errs = append(errs, errors.New("introspectredis: NewTwoTier: nil remote cache"))
	}
	if local == nil {
		errs = append(errs, errors.New("introspectredis: NewTwoTier: nil local cache"))
	}
	if localTTL <= 0 {
		errs = append(errs, fmt.Errorf("introspectredis: NewTwoTier: local TTL %v is not positive", localTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, ring := remote.client.(*redis.Ring); ring {
		// A Ring runs the eviction's script, which announces it, on the
		// key's shard, and subscribes on the channel's.
		return nil, errors.New("introspectredis: NewTwoTier: a Ring client cannot carry the eviction announcements: use a Client or a ClusterClient")
	}
	// Confirmed before NewTwoTier returns: a SUBSCRIBE only sent could
	// still be on its way while another replica announces an eviction.
	t := &TwoTier{local: local, remote: remote, localTTL: localTTL, now: time.Now, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), max(remote.timeout, time.Second))
	defer cancel()
	t.sub = remote.client.Subscribe(ctx) // no channel: no connection yet
	if err := subscribe(ctx, t.sub, remote.channel); err != nil {
		_ = t.sub.Close()
		return nil, fmt.Errorf("introspectredis: NewTwoTier: subscribing to the evictions: %w", err)
	}
	go t.listen(t.sub.Channel())
	return t, nil
}

// subscribe subscribes sub to channel and waits for Redis to confirm it,
// within ctx. With Redis down (SUBSCRIBE not sent, or no answer) there is
// nothing to wait for: go-redis subscribes on reconnecting. A passing
// refusal (BUSY, LOADING, too many clients, ...) is tried again until ctx
// ends, since go-redis would not send SUBSCRIBE again after it; any other
// refusal (NOPERM, say) is an error.
func subscribe(ctx context.Context, sub *redis.PubSub, channel string) error {
	for {
		if err := sub.Subscribe(ctx, channel); err != nil {
			return nil
		}
		_, err := sub.Receive(ctx)
		var redisErr redis.Error
		switch {
		case err == nil || !errors.As(err, &redisErr):
			return nil
		case !passingRefusal(err):
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// passingRefusal reports whether Redis refused a command for a while only.
func passingRefusal(err error) bool {
	return redis.HasErrorPrefix(err, "BUSY") || redis.IsLoadingError(err) || redis.IsTryAgainError(err) ||
		redis.IsMasterDownError(err) || redis.IsClusterDownError(err) || redis.IsMaxClientsError(err)
}

func (t *TwoTier) listen(ch <-chan *redis.Message) {
	defer close(t.done)
	for msg := range ch {
		key, ok := t.remote.keys.openEvict([]byte(msg.Payload))
		if !ok {
			continue // not from a replica holding the secret
		}
		t.evictions.Add(1)
		t.dropLocal(key)
	}
}

// dropLocal deletes key from the local tier for an eviction announcement. A
// panic in the local cache is recovered, so the listener goes on; the entry
// then lives at most the local TTL.
func (t *TwoTier) dropLocal(key introspect.CacheKey) {
	defer func() { _ = recover() }()
	ctx, cancel := context.WithTimeout(context.Background(), t.remote.timeout)
	defer cancel()
	_ = t.local.Delete(ctx, key)
}

// Close stops listening for evictions. The cache still works after Close,
// without learning of other replicas' evictions. It does not close the
// local cache nor the Redis client. It is safe to call twice.
func (t *TwoTier) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	err := t.sub.Close()
	<-t.done
	if err != nil {
		return fmt.Errorf("introspectredis: close: %w", err)
	}
	return nil
}

// Format prints the cache's prefix and local TTL and nothing of its secrets,
// whatever the verb.
func (t *TwoTier) Format(f fmt.State, _ rune) {
	prefix := ""
	if t.remote != nil {
		prefix = t.remote.prefix
	}
	fmt.Fprintf(f, "introspectredis.TwoTier{prefix: %q, local TTL: %v}", prefix, t.localTTL)
}

// Get implements [introspect.Cache]: the local tier, then Redis. An entry
// found in Redis is copied into the local tier, unless an eviction is seen
// meanwhile.
func (t *TwoTier) Get(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, error) {
	e, ok, errLocal := t.local.Get(ctx, key)
	if errLocal == nil && ok {
		return e, true, nil
	}
	seen := t.evictions.Load()
	e, ok, err := t.remote.Get(ctx, key)
	if err != nil {
		return introspect.CacheEntry{}, false, errors.Join(errLocal, err)
	}
	if !ok {
		return introspect.CacheEntry{}, false, errLocal
	}
	_ = t.setLocal(ctx, key, e, seen)
	return e, true, nil
}

// GetFenced implements [introspect.FencedCache]: it asks Redis, which holds
// the fence, and copies an entry found there into the local tier as Get
// does.
func (t *TwoTier) GetFenced(ctx context.Context, key introspect.CacheKey) (introspect.CacheEntry, bool, string, error) {
	seen := t.evictions.Load()
	e, ok, fence, err := t.remote.GetFenced(ctx, key)
	if err != nil || !ok {
		return introspect.CacheEntry{}, false, fence, err
	}
	_ = t.setLocal(ctx, key, e, seen)
	return e, true, fence, nil
}

// Set implements [introspect.Cache]: both tiers. The local tier is kept
// when Redis fails, so the replica keeps its own entries through an outage,
// but not when an eviction is seen meanwhile.
func (t *TwoTier) Set(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry) error {
	seen := t.evictions.Load()
	stored, errRemote := t.remote.set(ctx, key, e, "", true)
	var errLocal error
	if errRemote != nil || stored {
		errLocal = t.setLocal(ctx, key, e, seen)
	}
	return errors.Join(errLocal, errRemote)
}

// SetFenced implements [introspect.FencedCache]: Redis under fence, then,
// only if Redis stored e, the local tier, unless an eviction is seen
// meanwhile.
func (t *TwoTier) SetFenced(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry, fence string) (bool, error) {
	seen := t.evictions.Load()
	stored, err := t.remote.SetFenced(ctx, key, e, fence)
	if err != nil || !stored {
		return false, err
	}
	_ = t.setLocal(ctx, key, e, seen)
	return true, nil
}

// setLocal copies e into the local tier, then deletes it again if the
// eviction count is no longer seen, read before e was obtained: an
// eviction may have come between. (The listener counts before it deletes:
// either its delete follows the copy, or the count has moved here.)
func (t *TwoTier) setLocal(ctx context.Context, key introspect.CacheKey, e introspect.CacheEntry, seen uint64) error {
	err := t.local.Set(ctx, key, t.localEntry(e))
	if t.evictions.Load() != seen {
		_ = t.local.Delete(ctx, key)
	}
	return err
}

// Delete implements [introspect.Cache]: both tiers, and the local tier of
// every replica listening on the same Redis and prefix.
func (t *TwoTier) Delete(ctx context.Context, key introspect.CacheKey) error {
	t.evictions.Add(1)
	errLocal := t.local.Delete(ctx, key)
	return errors.Join(errLocal, t.remote.Delete(ctx, key))
}

// localEntry is e as the local tier keeps it: StaleUntil cut to the local
// TTL. Expiry stays as it is, so the middleware's freshness decisions
// (refresh-ahead among them) do not depend on the tier the entry came from.
func (t *TwoTier) localEntry(e introspect.CacheEntry) introspect.CacheEntry {
	if until := t.now().Add(t.localTTL); until.Before(e.StaleUntil) {
		e.StaleUntil = until
	}
	return e
}
