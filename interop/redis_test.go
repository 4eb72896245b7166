package interop

import (
	"testing"

	"github.com/introspect-go/introspect/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// startRedis starts a redis-server of the test's own on a free loopback
// port, without persistence, killed when the test ends, and returns a client
// to it. Without the binary the test fails under CI=true and is skipped
// loudly elsewhere, as without node.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	srv := testredis.Start(t, testredis.Missing{
		Reason: "INTEROP NOT RUN: redis-server is not installed (Debian: apt-get install redis-server; `make deps` does it)",
	})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestHarnessWithoutRedisServer runs startRedis in a child test process with
// no redis-server on PATH: under CI=true it must fail, elsewhere skip.
func TestHarnessWithoutRedisServer(t *testing.T) {
	testredis.CheckMissing(t, "INTEROP_HARNESS_CHILD", func(t *testing.T) { startRedis(t) })
}
