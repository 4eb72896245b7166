// Package introspectredis is a distributed [introspect.Cache] on Redis (or a
// Redis-protocol server such as Valkey), through go-redis, for APIs that run
// as many replicas: a token costs one call to the authorization server for
// the whole fleet, and an eviction ([introspect.Middleware.Evict]) takes
// effect on every replica.
//
// # Use
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"10.0.0.5:6379"}})
//	remote, err := introspectredis.New(rdb, secret) // secret: ≥ 32 random bytes, the same on every replica
//	...
//	local, err := introspect.NewLRUCache(10_000)
//	...
//	cache, err := introspectredis.NewTwoTier(remote, local, 5*time.Second)
//	...
//	defer cache.Close()
//	mw, err := introspect.New(..., introspect.WithCache(cache))
//
// [Cache] alone is Redis only; [TwoTier] keeps the hot entries in memory as
// well, so that most requests make no network call at all.
//
// # What sits in Redis
//
// Names are the prefix and an HMAC-SHA-256, under a key derived from the
// secret, of the core's cache key: neither the token nor an unsalted hash of
// it. Values are the verdict in a compact binary form, authenticated under
// the secret so that a value altered or moved in Redis is refused (reported
// as [ErrInvalidValue], a miss), and encrypted with AES-GCM when
// [WithEncryptionKey] is set. Keys expire with the entry, never after the
// token's exp.
//
// # When Redis fails
//
// Every call is bounded by [WithTimeout] (50 ms by default). A failed call
// returns an error; the middleware counts it as a miss, reports it through
// its hooks and asks the authorization server: Redis trouble slows requests
// down by at most the timeout and never fails them.
package introspectredis
