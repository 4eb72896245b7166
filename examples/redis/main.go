// Command redis runs a protected API whose verdicts are cached in Redis, so
// that several replicas share them: a token costs one call to the
// authorization server for all of them, and an eviction on one reaches the
// others. With no flags it embeds a test authorization server
// (introspecttest) and uses the Redis at 127.0.0.1:6379:
//
//	go run .
//
// It prints a curl command with a live token and the command that starts a
// second replica beside it. -demo runs two replicas in one process, makes a
// set of requests against both and exits 0 only if every answer was as
// expected. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
	"github.com/introspect-go/introspect/introspecttest"
	"github.com/redis/go-redis/v9"
)

// Secrets come from the environment, not from flags, so that they do not
// show in the process list.
const (
	envClientSecret  = "INTROSPECT_CLIENT_SECRET"
	envCacheSecret   = "INTROSPECT_CACHE_SECRET"
	envEncryptionKey = "INTROSPECT_CACHE_ENCRYPTION_KEY"
)

const clientID = "redis-example-api"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "redis example:", err)
		os.Exit(1)
	}
}

type options struct {
	addr          string
	redisAddr     string
	prefix        string
	endpoint      string
	clientID      string
	clientSecret  string
	cacheSecret   []byte
	encryptionKey []byte
	// throwawayCacheSecret: cacheSecret was made for this run, and may be
	// printed; one from the environment never is.
	throwawayCacheSecret bool
	twoTier              bool
	localTTL             time.Duration
	redisTimeout         time.Duration
	demo                 bool
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("redis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the protected API")
	fs.StringVar(&o.redisAddr, "redis-addr", "127.0.0.1:6379", "address of the Redis server")
	fs.StringVar(&o.prefix, "prefix", "introspect-example:", "prefix of the cache's keys in Redis")
	fs.StringVar(&o.endpoint, "endpoint", "", "introspection endpoint of an authorization server, e.g. the one a first replica embeds (default: an embedded test server); the client secret comes from $"+envClientSecret)
	fs.StringVar(&o.clientID, "client-id", "", "client ID at the authorization server (with -endpoint)")
	fs.BoolVar(&o.twoTier, "two-tier", true, "keep hot entries in memory too, in front of Redis")
	fs.DurationVar(&o.localTTL, "local-ttl", 5*time.Second, "longest time an entry stays in the in-memory tier")
	fs.DurationVar(&o.redisTimeout, "redis-timeout", introspectredis.DefaultTimeout, "bound on each call to Redis")
	fs.BoolVar(&o.demo, "demo", false, "run two replicas, make a set of requests against them, print the outcomes and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.endpoint != "" {
		o.clientSecret = getenv(envClientSecret)
		if o.clientID == "" || o.clientSecret == "" {
			return o, errors.New("-endpoint needs -client-id and $" + envClientSecret)
		}
		if o.demo {
			return o, errors.New("-demo needs the embedded authorization server: leave out -endpoint")
		}
	} else if o.clientID != "" {
		return o, errors.New("-client-id needs -endpoint")
	}
	if s := getenv(envCacheSecret); s != "" {
		o.cacheSecret = []byte(s)
	} else if o.endpoint != "" {
		return o, errors.New("-endpoint needs $" + envCacheSecret + ", the cache secret the other replicas use")
	}
	if s := getenv(envEncryptionKey); s != "" {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return o, errors.New("$" + envEncryptionKey + " is not base64")
		}
		o.encryptionKey = k
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var as *introspecttest.Server
	if o.endpoint == "" {
		o.clientID, o.clientSecret = clientID, randomString(24)
		as = introspecttest.NewServer(introspecttest.WithClient(o.clientID, o.clientSecret))
		defer as.Close()
		o.endpoint = as.IntrospectionURL()
		logger.Info("embedded authorization server started", "introspection_endpoint", o.endpoint)
	}
	if o.cacheSecret == nil {
		o.cacheSecret, o.throwawayCacheSecret = []byte(randomString(32)), true
	}
	if o.demo {
		// A prefix of its own, so the demo never meets entries of other runs.
		o.prefix += "demo-" + randomString(6) + ":"
	}

	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	pingCtx, cancel := context.WithTimeout(ctx, time.Second)
	err = rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		if o.demo {
			return fmt.Errorf("the demo needs Redis at %s (-redis-addr): %w", o.redisAddr, err)
		}
		logger.Warn("Redis does not answer: requests go to the authorization server until it does", "redis_addr", o.redisAddr, "error", err)
	}

	logA := logger
	if o.demo {
		logA = logger.With("replica", "A")
	}
	a, err := newReplica(ctx, o, o.addr, rdb, logA)
	if err != nil {
		return err
	}
	defer a.close()

	if o.demo {
		b, err := newReplica(ctx, o, "127.0.0.1:0", rdb, logger.With("replica", "B"))
		if err != nil {
			return err
		}
		defer b.close()
		return demo(ctx, as, a, b, stdout)
	}
	if as != nil {
		sample := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "example-app", Username: "alice", Scope: "read"})
		fmt.Fprintf(stdout, "\nA token with scope \"read\" (valid for one hour):\n\n"+
			"  curl -H 'Authorization: Bearer %s' %s/api/me\n\n"+
			"A second replica sharing the cache and this authorization server (in another terminal,\n"+
			"from examples/redis; the secrets shown are this run's throwaway ones, those of your\n"+
			"environment are named, never shown):\n\n"+
			"  %s go run . -addr 127.0.0.1:8081 -redis-addr %s -prefix %s -endpoint %s -client-id %s\n\n"+
			"Ask it with the same token (port 8081): it answers from the cache, without a call to\n"+
			"the authorization server. Ctrl-C stops.\n",
			sample, a.url, replicaEnv(o), o.redisAddr, o.prefix, o.endpoint, o.clientID)
	}
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.srv.Shutdown(shutdown)
	case err := <-a.served:
		return err
	}
}

// replica is one instance of the API: its own middleware and cache, over the
// shared Redis.
type replica struct {
	url     string
	mw      *introspect.Middleware
	srv     *http.Server
	served  chan error
	closers []func() error

	local              *introspect.LRUCache // the in-memory tier; nil without -two-tier
	endpoint, clientID string
}

// cachedLocally reports whether the in-memory tier holds token.
func (r *replica) cachedLocally(ctx context.Context, token string) bool {
	if r.local == nil {
		return false
	}
	_, ok, _ := r.local.Get(ctx, introspect.NewCacheKey(r.endpoint, r.clientID, token))
	return ok
}

func newReplica(ctx context.Context, o options, addr string, rdb redis.UniversalClient, logger *slog.Logger) (*replica, error) {
	r := &replica{served: make(chan error, 1), endpoint: o.endpoint, clientID: o.clientID}
	copts := []introspectredis.Option{introspectredis.WithPrefix(o.prefix), introspectredis.WithTimeout(o.redisTimeout)}
	if o.encryptionKey != nil {
		copts = append(copts, introspectredis.WithEncryptionKey(o.encryptionKey))
	}
	remote, err := introspectredis.New(rdb, o.cacheSecret, copts...)
	if err != nil {
		return nil, err
	}
	var cache introspect.Cache = remote
	if o.twoTier {
		local, err := introspect.NewLRUCache(10_000)
		if err != nil {
			return nil, err
		}
		tt, err := introspectredis.NewTwoTier(remote, local, o.localTTL)
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, tt.Close)
		r.local, cache = local, tt
	}
	mw, err := introspect.New(
		introspect.WithEndpoint(o.endpoint),
		introspect.WithClientCredentials(o.clientID, o.clientSecret),
		introspect.WithRealm("redis-example"),
		introspect.WithCache(cache),
		introspect.WithLogger(logger),
		introspect.WithHooks(&introspect.Hooks{
			CacheHit: func(ctx context.Context, negative bool) {
				logger.InfoContext(ctx, "verdict from the cache", "negative", negative)
			},
			IntrospectDone: func(ctx context.Context, info introspect.IntrospectDoneInfo) {
				logger.InfoContext(ctx, "verdict from the authorization server", "active", info.Active, "duration", info.Duration)
			},
		}),
	)
	if err != nil {
		r.close()
		return nil, err
	}
	r.mw = mw
	r.closers = append([]func() error{mw.Close}, r.closers...)

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		r.close()
		return nil, err
	}
	r.url = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: routes(mw, r.url), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { r.served <- r.srv.Serve(ln) }()
	r.closers = append([]func() error{r.srv.Close}, r.closers...)
	logger.Info("protected API listening", "url", r.url, "redis_addr", o.redisAddr, "two_tier", o.twoTier)
	return r, nil
}

func (r *replica) close() {
	for _, c := range r.closers {
		_ = c()
	}
}

// routes is the protected API: /api/me for any valid token, saying which
// replica answered.
func routes(mw *introspect.Middleware, self string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "introspect Redis example: try GET /api/me with a bearer token")
	})
	mux.Handle("GET /api/me", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"sub":       ti.Subject,
			"client_id": ti.ClientID,
			"scope":     strings.Join(ti.Scopes, " "),
			"exp":       ti.Expiry.Unix(),
			"served_by": self,
		})
	})))
	return mux
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// demo makes requests against replicas a and b and prints each outcome with
// the number of calls made to the authorization server so far; never a
// token.
func demo(ctx context.Context, as *introspecttest.Server, a, b *replica, out io.Writer) error {
	alice := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "example-app", Scope: "read"})
	mallory := as.Issue(introspecttest.Claims{Subject: "mallory", ClientID: "example-app", Scope: "read"})
	type step struct {
		name   string
		on     *replica
		token  string
		before func() error
		want   int
		calls  int64 // calls to the authorization server after the step
	}
	steps := []step{
		{name: "alice on A: asks the AS", on: a, token: alice, want: 200, calls: 1},
		{name: "alice on B: shared cache", on: b, token: alice, want: 200, calls: 1},
		{name: "alice on A again: cache", on: a, token: alice, want: 200, calls: 1},
		{name: "mallory on B: asks the AS", on: b, token: mallory, want: 200, calls: 2},
		{name: "mallory on A: shared cache", on: a, token: mallory, want: 200, calls: 2},
		{name: "mallory revoked, evicted on B; on A", on: a, token: mallory, want: 401, calls: 3, before: func() error {
			as.Revoke(mallory)
			if err := b.mw.Evict(ctx, mallory); err != nil {
				return err
			}
			return waitEvicted(ctx, a, mallory)
		}},
		{name: "mallory on B: negative entry", on: b, token: mallory, want: 401, calls: 3},
		{name: "unknown token on A", on: a, token: "never-issued", want: 401, calls: 4},
		{name: "unknown token on B", on: b, token: "never-issued", want: 401, calls: 4},
	}
	failed := 0
	for _, s := range steps {
		if s.before != nil {
			if err := s.before(); err != nil {
				return err
			}
		}
		got, err := get(ctx, s.on.url+"/api/me", s.token)
		calls := as.Calls()
		verdict := "ok  "
		if err != nil || got != s.want || calls != s.calls {
			verdict = "FAIL"
			failed++
		}
		line := fmt.Sprintf("%s %-38s -> %d  (calls to the AS so far: %d)", verdict, s.name, got, calls)
		if err != nil {
			line += "  error: " + err.Error()
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(steps)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d demo requests were not answered as expected", failed, len(steps))
	}
	return nil
}

// waitEvicted waits until replica r no longer holds a fresh verdict on
// token in its in-memory tier: the eviction travels over Redis Pub/Sub. It
// asks nothing of the authorization server: the middleware's Authenticate
// would, once the entry is gone, so it probes the cache key directly.
func waitEvicted(ctx context.Context, r *replica, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if !r.cachedLocally(ctx, token) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the eviction did not reach the other replica")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// replicaEnv is the environment of a second replica's command: the
// embedded server's client secret, and the cache secret when it was made
// for this run; a secret or key from the environment by its name only.
func replicaEnv(o options) string {
	env := envClientSecret + "=" + o.clientSecret
	if o.throwawayCacheSecret {
		env += " " + envCacheSecret + "=" + string(o.cacheSecret)
	} else {
		env += " " + envCacheSecret + `="$` + envCacheSecret + `"`
	}
	if o.encryptionKey != nil {
		env += " " + envEncryptionKey + `="$` + envEncryptionKey + `"`
	}
	return env
}
