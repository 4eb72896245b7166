package introspectredis_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
	"github.com/redis/go-redis/v9"
)

// A replica of an API sharing its cache with the others through Redis, with
// the hot entries in memory as well. (Not run: it needs a Redis server.)
func ExampleNewTwoTier() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer rdb.Close()
	// The same secret, at least 32 random bytes, on every replica.
	remote, err := introspectredis.New(rdb, []byte(os.Getenv("CACHE_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	local, err := introspect.NewLRUCache(10_000)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := introspectredis.NewTwoTier(remote, local, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", os.Getenv("CLIENT_SECRET")),
		introspect.WithCache(cache),
	)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/api/", mw.Handler(http.NotFoundHandler()))
}
