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
// An entry is two keys: its value and its generation record. Names are the
// prefix and an HMAC-SHA-256, under a key derived from the secret, of the
// core's cache key (neither the token nor an unsalted hash of it), between
// braces so that both keys of an entry share a Redis Cluster slot; the
// record's name ends in "g". Values are the verdict in a compact binary
// form, authenticated under the secret together with the generation they
// were written under, so that a value altered, moved or put back in Redis is
// refused (reported as [ErrInvalidValue], a miss), and encrypted with
// AES-GCM when [WithEncryptionKey] is set. Values expire with the entry,
// never after the token's exp; records live at least as long as their value.
//
// # Evictions
//
// A record holds a random generation, and every Delete (the middleware's
// Evict) replaces it, in the same script that deletes the value. A value is
// accepted only while the record holds the generation it was sealed with;
// no record, no value. [Cache] and [TwoTier] implement
// [introspect.FencedCache]: the middleware reads the generation before it
// asks the authorization server and stores the answer only if it has not
// changed. Hence the guarantee: once Evict has returned, no replica serves
// the token from Redis on the strength of an answer to a call that began
// before the eviction; a [TwoTier] replica drops its local copy when the
// eviction's announcement reaches it over Pub/Sub, after Evict has returned
// (milliseconds on a local network). One that missed the announcement (a
// broken Pub/Sub connection) keeps its local copy at most the local TTL.
//
// The record written by Delete is kept at least [WithTombstoneTTL] (1 h by
// default), which must exceed the longest call to the authorization server:
// a call that began when the key had no record is refused only while it is
// there. The guarantee also assumes that Redis does not drop records on its
// own: with a maxmemory-policy other than noeviction, or a failover that
// loses the latest writes, it may.
//
// # What a Redis writer can do
//
// Anyone who can write to Redis cannot forge or alter a value, move one to
// another key (of the same prefix: caches of two prefixes and one secret
// name a token alike, so change the secret with the prefix for a clean
// start), or bring back a value written before an Evict: it is bound
// to the generation the Evict replaced and is refused; deleting the record
// only causes misses. They can drop values and records (more calls to the
// authorization server) and, unless [WithEncryptionKey] is set, read the
// claims. The one thing sealing cannot stop is a full rollback of both a
// value and its generation record to a saved copy, which serves the saved
// verdict again until the expiry sealed into it: at most the middleware's
// MaxTTL, plus stale-if-error, after it was written. Restrict who can write
// to Redis (ACLs).
//
// # When Redis fails
//
// Every call is bounded by [WithTimeout] (50 ms by default). A failed call
// returns an error; the middleware counts it as a miss, reports it through
// its hooks and asks the authorization server: Redis trouble slows requests
// down by at most the timeout and never fails them. An answer whose fence
// could not be read is not cached, not even in a [TwoTier]'s local tier.
package introspectredis
