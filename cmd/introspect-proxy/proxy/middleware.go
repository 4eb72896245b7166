package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/introspect-go/introspect"
	introspectredis "github.com/introspect-go/introspect/cache/redis"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// newMiddleware builds the introspection middleware of the configuration,
// with its cache (in memory, in Redis, or both), its DPoP replay cache
// (in Redis when there is one) and the hooks of the access log and the
// metrics.
func (s *Server) newMiddleware() (*introspect.Middleware, error) {
	cfg := s.cfg
	opts := []introspect.Option{
		introspect.WithLogger(s.log),
		introspect.WithHooks(introspect.Chain(s.recordHooks(), s.tel.hooks)),
		introspect.WithTimeout(cfg.IntrospectionTimeout),
		introspect.WithMaxConcurrentIntrospections(cfg.MaxConcurrentIntrospections),
		introspect.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, introspect.WithIssuer(cfg.Issuer))
	}
	if cfg.Endpoint != "" {
		opts = append(opts, introspect.WithEndpoint(cfg.Endpoint))
	}
	if cfg.InsecureAllowHTTP {
		opts = append(opts, introspect.InsecureAllowHTTP())
	}
	if cfg.EagerDiscovery {
		opts = append(opts, introspect.WithEagerDiscovery())
	}

	// The credentials: a secret, a key, a certificate, a token of the
	// proxy's own, or the client ID alone; none under -validate jwt, which
	// never introspects.
	switch {
	case cfg.Validation == introspect.ValidateJWT:
	case cfg.ClientSecret.IsSet():
		opts = append(opts, introspect.WithClientCredentials(cfg.ClientID, cfg.ClientSecret.Value()))
	case cfg.PrivateKey == nil && cfg.ClientCertificate == nil && cfg.BearerTokenFile == "":
		opts = append(opts, introspect.WithClientCredentials(cfg.ClientID, "")) // -auth-method none
	}
	if cfg.PrivateKey != nil {
		opts = append(opts, introspect.WithPrivateKey(cfg.ClientID, cfg.PrivateKey, cfg.PrivateKeyID))
	}
	if cfg.ClientCertificate != nil {
		opts = append(opts, introspect.WithClientCertificate(cfg.ClientID, *cfg.ClientCertificate))
	}
	if f := cfg.BearerTokenFile; f != "" {
		opts = append(opts, introspect.WithBearerCredentials(cfg.ClientID, func(context.Context) (string, error) {
			data, err := config.ReadFile(f, config.MaxSecretFileSize)
			if err != nil {
				// The middleware's errors leave the callback's text out:
				// said here, a path and the system's words, never the file.
				s.log.Warn("reading -bearer-token-file failed", "error", err.Error())
				return "", err
			}
			return strings.TrimSpace(string(data)), nil
		}))
	}
	if cfg.AuthMethod != "" {
		opts = append(opts, introspect.WithAuthMethod(cfg.AuthMethod))
	}
	if cfg.AssertionAlg != "" {
		opts = append(opts, introspect.WithAssertionSigningAlg(cfg.AssertionAlg))
	}
	if cfg.AssertionAudience != "" {
		opts = append(opts, introspect.WithAssertionAudience(cfg.AssertionAudience))
	}
	if cfg.RawBasicAuth {
		opts = append(opts, introspect.WithRawBasicAuth())
	}
	if cfg.JWTResponse {
		opts = append(opts, introspect.WithJWTResponse())
	}
	if len(cfg.JWTResponseAlgs) > 0 {
		opts = append(opts, introspect.WithJWTResponseAlgorithms(cfg.JWTResponseAlgs...))
	}

	// Local validation of JWT access tokens.
	if cfg.Validation != introspect.ValidateIntrospect {
		opts = append(opts,
			introspect.WithValidation(cfg.Validation),
			introspect.WithJWTAudience(cfg.JWTAudience),
			introspect.WithMaxJWTSize(cfg.MaxJWTSize))
		if len(cfg.JWTIssuers) > 0 {
			opts = append(opts, introspect.WithJWTIssuers(cfg.JWTIssuers...))
		}
		if len(cfg.JWTAlgs) > 0 {
			opts = append(opts, introspect.WithJWTAlgorithms(cfg.JWTAlgs...))
		}
		if cfg.PlainJWT {
			opts = append(opts, introspect.WithPlainJWT())
		}
	}

	// The userinfo claims.
	if cfg.Userinfo {
		var uopts []introspect.UserinfoOption
		if cfg.UserinfoBestEffort {
			uopts = append(uopts, introspect.UserinfoBestEffort())
		}
		opts = append(opts, introspect.WithUserinfo(uopts...))
		if cfg.UserinfoEndpoint != "" {
			opts = append(opts, introspect.WithUserinfoEndpoint(cfg.UserinfoEndpoint))
		}
	}

	// The checks of the answer.
	if cfg.ExpectedIssuer != "" {
		opts = append(opts, introspect.WithExpectedIssuer(cfg.ExpectedIssuer))
	}
	if len(cfg.ExpectedAudience) > 0 {
		opts = append(opts, introspect.WithExpectedAudience(cfg.ExpectedAudience...))
	}
	if len(cfg.AllowedClientIDs) > 0 {
		opts = append(opts, introspect.WithAllowedClientIDs(cfg.AllowedClientIDs...))
	}
	if cfg.InsecureSkipTokenBinding {
		opts = append(opts, introspect.InsecureSkipTokenBinding())
	}
	if h := cfg.ClientCertHeader; h != "" {
		proxies := make([]string, 0, len(cfg.TrustedProxies)+1)
		for _, p := range cfg.TrustedProxies {
			proxies = append(proxies, p.String())
		}
		if cfg.TrustUnixSocket {
			proxies = append(proxies, config.TrustUnixSocket)
		}
		opts = append(opts, introspect.WithClientCertificateHeader(h, cfg.ClientCertHeaderFormat, proxies...))
	}

	// The answers.
	if cfg.Realm != "" {
		opts = append(opts, introspect.WithRealm(cfg.Realm))
	}
	if cfg.ResourceMetadata != "" {
		opts = append(opts, introspect.WithResourceMetadata(cfg.ResourceMetadata))
	}
	if cfg.OptionalToken {
		opts = append(opts, introspect.WithOptionalToken())
	}

	cacheOpts, replay, err := s.newCache()
	if err != nil {
		return nil, err
	}
	opts = append(opts, cacheOpts...)

	var dpopOpts []introspect.DPoPOption
	if cfg.DPoP != introspect.DPoPOff {
		if urls := config.DPoPExternalURLs(cfg.DPoPExternalURL); len(urls) > 0 {
			dpopOpts = append(dpopOpts, introspect.WithDPoPExternalURL(urls[0], urls[1:]...))
		}
		if len(cfg.DPoPAlgs) > 0 {
			dpopOpts = append(dpopOpts, introspect.WithDPoPAlgorithms(cfg.DPoPAlgs...))
		}
		if cfg.DPoPNoncePeriod > 0 {
			dpopOpts = append(dpopOpts, introspect.WithDPoPNonces([]byte(cfg.DPoPNonceSecret.Value()), cfg.DPoPNoncePeriod))
		}
		if replay != nil {
			dpopOpts = append(dpopOpts, introspect.WithDPoPReplayCache(replay))
		}
	}
	opts = append(opts, introspect.WithDPoP(cfg.DPoP, dpopOpts...))

	mw, err := introspect.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return mw, nil
}

// newCache returns the cache options: an in-memory cache of -cache-size
// entries, Redis, or Redis behind an in-memory tier; and, with Redis and
// DPoP, the replay cache the replicas share.
func (s *Server) newCache() ([]introspect.Option, introspect.DPoPReplayCache, error) {
	cfg := s.cfg
	var local introspect.Cache
	if cfg.CacheSize > 0 {
		lru, err := introspect.NewLRUCache(cfg.CacheSize)
		if err != nil {
			return nil, nil, fmt.Errorf("-cache-size: %w", err)
		}
		local = lru
	}
	cache := local
	var replay introspect.DPoPReplayCache
	if r := cfg.Redis; r != nil {
		ropts := &redis.UniversalOptions{
			Addrs:    r.Addrs,
			Username: r.Username,
			Password: r.Password.Value(),
			DB:       r.DB,
		}
		if r.TLS {
			ropts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		s.rdb = redis.NewUniversalClient(ropts)
		s.closers = append(s.closers, s.rdb.Close)
		copts := []introspectredis.Option{introspectredis.WithPrefix(r.Prefix), introspectredis.WithTimeout(r.Timeout)}
		if r.EncryptionKey.IsSet() {
			copts = append(copts, introspectredis.WithEncryptionKey([]byte(r.EncryptionKey.Value())))
		}
		remote, err := introspectredis.New(s.rdb, []byte(r.Secret.Value()), copts...)
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		cache = remote
		if local != nil && r.LocalTTL > 0 {
			tt, err := introspectredis.NewTwoTier(remote, local, r.LocalTTL)
			if err != nil {
				return nil, nil, fmt.Errorf("redis: %w", err)
			}
			s.closers = append(s.closers, tt.Close)
			cache = tt
		}
		if cfg.DPoP != introspect.DPoPOff {
			rc, err := introspectredis.NewReplayCache(s.rdb, []byte(r.Secret.Value()),
				introspectredis.WithReplayPrefix(r.Prefix+"dpop:"), introspectredis.WithReplayTimeout(r.Timeout))
			if err != nil {
				return nil, nil, fmt.Errorf("redis: %w", err)
			}
			replay = rc
		}
	}
	if cache == nil {
		return nil, nil, nil
	}
	opts := []introspect.Option{
		introspect.WithCache(cache),
		introspect.WithMaxTTL(cfg.MaxTTL),
		introspect.WithNegativeTTL(cfg.NegativeTTL),
		introspect.WithStaleIfError(cfg.StaleIfError),
		introspect.WithRefreshAhead(cfg.RefreshAhead),
	}
	return opts, replay, nil
}
