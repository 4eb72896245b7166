package introspectredis

import (
	"testing"

	"github.com/introspect-go/introspect/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server of our own on a free loopback port, without
// persistence, stopped when the test ends.
type redisServer struct {
	*testredis.Server
}

// startRedis starts a redis-server for tb. Without the binary the test fails
// under CI=true and is skipped elsewhere.
func startRedis(tb testing.TB) *redisServer {
	tb.Helper()
	return &redisServer{testredis.Start(tb, testredis.Missing{
		Reason: "redis-server is not installed (Debian: apt-get install redis-server); the Redis tests cannot run",
		Skip:   "SKIPPED: ",
	})}
}

// Client returns a client of the server, closed when the test ends.
func (s *redisServer) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestHarnessWithoutRedisServer runs startRedis in a child test process with
// no redis-server on PATH: under CI=true it must fail, elsewhere skip.
func TestHarnessWithoutRedisServer(t *testing.T) {
	testredis.CheckMissing(t, "INTROSPECTREDIS_HARNESS_CHILD", func(t *testing.T) { startRedis(t) })
}
