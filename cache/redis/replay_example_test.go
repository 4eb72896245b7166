package introspectredis_test

import (
	"log"
	"net/http"
	"os"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
	"github.com/redis/go-redis/v9"
)

// A replica of an API that accepts DPoP-bound tokens and shares its record of
// the proofs it has seen with the other replicas, so that a proof accepted by
// one is refused by all. (Not run: it needs a Redis server.)
func ExampleNewReplayCache() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer rdb.Close()
	// The same secret, at least 32 random bytes, on every replica.
	replay, err := introspectredis.NewReplayCache(rdb, []byte(os.Getenv("CACHE_SECRET")))
	if err != nil {
		log.Fatal(err)
	}
	mw, err := introspect.New(
		introspect.WithEndpoint("https://as.example.com/introspect"),
		introspect.WithClientCredentials("api", os.Getenv("CLIENT_SECRET")),
		introspect.WithDPoP(introspect.DPoPAllowed,
			introspect.WithDPoPReplayCache(replay),
			// The URL clients call, the same on every replica behind the
			// load balancer: the proofs' htu is compared with it.
			introspect.WithDPoPExternalURL("https://api.example.com"),
		),
	)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/api/", mw.Handler(http.NotFoundHandler()))
}
