package introspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultMaxIssuers bounds the issuers named by client contexts whose
// discovered state a client keeps ([WithMaxIssuers]).
const DefaultMaxIssuers = 64

// WithJWTIssuers names more authorization servers whose JWT access tokens
// (RFC 9068) are validated locally, besides the issuer of [WithIssuer]: one
// middleware then accepts the tokens of several issuers. A token is routed
// by its unverified "iss" to that issuer's keys, found by discovery and
// refreshed for each issuer on its own, and its iss is then verified with
// the signature; a token naming an issuer not configured is not one of
// them (refused in [ValidateJWT] mode, introspected in [ValidateHybrid]).
// Every issuer's metadata must name itself (RFC 8414 §3.3) and a jwks_uri.
// The audience, algorithms and other rules of local validation apply to
// each.
//
// Opaque tokens are not routed by issuer: [WithClientStore] chooses where
// they are introspected, by a rule of the application (a token prefix, the
// host, a tenant in the path, a header). In [ValidateJWTAndIntrospect] mode
// a token is introspected with the request's client context, whose issuer
// must be the token's. Needs a [WithValidation] mode that validates JWTs.
func WithJWTIssuers(issuers ...string) Option {
	return func(c *config) {
		c.jwtOption("WithJWTIssuers")
		if len(issuers) == 0 {
			c.fail("WithJWTIssuers: no issuer")
			return
		}
		c.jwtIssuers = nil
		for _, iss := range issuers {
			if iss == "" {
				c.fail("WithJWTIssuers: empty issuer")
				return
			}
			if !slices.Contains(c.jwtIssuers, iss) { // checked in checkClientConfig
				c.jwtIssuers = append(c.jwtIssuers, iss)
			}
		}
	}
}

// WithMaxIssuers bounds the number of issuers named by client contexts
// ([ClientContext].Issuer) whose metadata and keys the client keeps, each
// refreshed in the background. Past the bound the least recently used one
// is dropped, and discovered again when a request names it. The issuers of
// [WithIssuer] and [WithJWTIssuers] are not counted. Default
// [DefaultMaxIssuers].
func WithMaxIssuers(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithMaxIssuers: %d is not positive", n)
			return
		}
		c.maxIssuers = n
	}
}

// contextIssuers keeps the providers of the issuers client contexts name,
// discovered on first use, at most a bound of them, the least recently used
// dropped (and its refresh loop stopped).
type contextIssuers struct {
	c   *Client
	lru *lru.Cache[string, *provider]

	mu     sync.Mutex // serializes the creation of providers and Close
	closed bool
}

func newContextIssuers(c *Client, size int) *contextIssuers {
	l, _ := lru.NewWithEvict(size, func(_ string, p *provider) {
		go p.close() // not under the cache's lock: close waits for the loop
	})
	return &contextIssuers{c: c, lru: l}
}

// errClientClosed: a client context named an issuer after Close.
var errClientClosed = fmt.Errorf("%w: the client is closed", ErrClientConfig)

// get returns the provider of iss, creating it (and starting its refresh
// loop) if there is none. iss must pass the RFC 8414 rules for issuers; one
// that does not is a configuration error of the ClientStore (503), never
// kept.
func (s *contextIssuers) get(iss string) (*provider, error) {
	if p, ok := s.lru.Get(iss); ok {
		return p, nil
	}
	if err := checkIssuer(iss, s.c.cfg.insecureHTTP); err != nil {
		return nil, fmt.Errorf("%w: client context: %w", ErrClientConfig, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClientClosed
	}
	if p, ok := s.lru.Get(iss); ok {
		return p, nil
	}
	p := newProvider(s.c, iss, roleContext)
	_ = p.start(false) // never fails without eager discovery
	s.lru.Add(iss, p)
	return p, nil
}

func (s *contextIssuers) close() {
	s.mu.Lock()
	s.closed = true
	ps := s.lru.Values()
	s.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	s.lru.Purge()
}

// providerOf returns the provider of iss: that of WithIssuer, of
// WithJWTIssuers, or of a client context.
func (c *Client) providerOf(iss string) (*provider, error) {
	if c.prov != nil && iss == c.prov.issuer {
		return c.prov, nil
	}
	if p := c.jwtIssuers[iss]; p != nil {
		return p, nil
	}
	return c.contexts.get(iss)
}

// knownProvider is providerOf without creating one: nil if a client
// context's issuer is not kept.
func (c *Client) knownProvider(iss string) *provider {
	if c.prov != nil && iss == c.prov.issuer {
		return c.prov
	}
	if p := c.jwtIssuers[iss]; p != nil {
		return p
	}
	p, _ := c.contexts.lru.Peek(iss)
	return p
}

// jwtProvider returns the provider whose keys verify a JWT naming iss, nil
// if iss is none of the issuers whose tokens are accepted: those of
// WithIssuer and WithJWTIssuers, and ctxIssuer, the issuer of the request's
// client context.
func (c *Client) jwtProvider(iss, ctxIssuer string) (*provider, error) {
	switch {
	case iss == "":
		return nil, nil
	case c.prov != nil && iss == c.prov.issuer:
		return c.prov, nil
	case c.jwtIssuers[iss] != nil:
		return c.jwtIssuers[iss], nil
	case iss == ctxIssuer:
		return c.contexts.get(iss)
	}
	return nil, nil
}

// resolve completes cc with what discovery supplies, when discovery applies
// to it: a context naming an issuer, or any context of a client of
// [WithIssuer] that names no endpoint of its own (with a ClientStore) or is
// the static one. The endpoint (the issuer's, or its mTLS alias for a TLS
// method) and the authentication method (chosen from the issuer's list) are
// filled in when cc leaves them empty; st is the issuer's state, nil when
// discovery does not apply. It waits for the issuer's first discovery.
func (c *Client) resolve(ctx context.Context, cc ClientContext) (ClientContext, *provider, *providerState, error) {
	iss := cc.Issuer
	if iss == "" {
		if c.prov == nil || c.cfg.store != nil && cc.Endpoint != "" {
			return cc, nil, nil, nil
		}
		iss = c.prov.issuer
	}
	p, err := c.providerOf(iss)
	if err != nil {
		return cc, nil, nil, err
	}
	st, err := p.state(ctx)
	if err != nil {
		return cc, p, nil, discoveryError(err)
	}
	if p == c.prov && cc.Endpoint == "" && c.cfg.store == nil {
		return st.cc, p, st, nil // the static context, taken before discovery succeeded
	}
	cc.Issuer = iss
	if cc.Credentials.AuthMethod == "" {
		cc.Credentials.AuthMethod = chooseAuthMethod(cc.Credentials, c.hasCert(), st.meta.authMethodsSupported())
	}
	if cc.Endpoint == "" {
		cc.Endpoint = st.meta.IntrospectionEndpoint
		if cc.Credentials.AuthMethod.isTLS() && st.meta.MTLSIntrospectionEndpoint != "" {
			cc.Endpoint = st.meta.MTLSIntrospectionEndpoint
		}
		if cc.Endpoint == "" && c.cfg.validation.introspects() {
			return cc, p, st, fmt.Errorf("%w: the metadata of the client context's issuer has no introspection_endpoint", ErrDiscovery)
		}
	}
	return cc, p, st, nil
}

// keyContext completes cc before a cache key is made of its endpoint: a
// context without an endpoint takes its issuer's, waiting for the issuer's
// first discovery. When that fails cc comes back as it was: the call then
// fails for want of metadata, where the hooks see it, and nothing is cached.
func (c *Client) keyContext(ctx context.Context, cc ClientContext) ClientContext {
	if cc.Endpoint != "" || cc.Issuer == "" && c.prov == nil {
		return cc
	}
	if rc, _, _, err := c.resolve(ctx, cc); err == nil {
		return rc
	}
	return cc
}

// startIssuers creates the providers of WithJWTIssuers and the cache of
// client contexts' issuers. With eager discovery, the JWT issuers' metadata
// and keys are fetched first.
func (c *Client) startIssuers() error {
	c.contexts = newContextIssuers(c, c.cfg.maxIssuers)
	if len(c.cfg.jwtIssuers) == 0 {
		return nil
	}
	c.jwtIssuers = make(map[string]*provider, len(c.cfg.jwtIssuers))
	var errs []error
	for _, iss := range c.cfg.jwtIssuers {
		if c.prov != nil && iss == c.prov.issuer {
			continue
		}
		p := newProvider(c, iss, roleJWT)
		if err := p.start(c.cfg.eagerDiscovery); err != nil {
			errs = append(errs, err)
			continue
		}
		c.jwtIssuers[iss] = p
	}
	return errors.Join(errs...)
}

// closeIssuers stops the refreshes of every issuer but WithIssuer's.
func (c *Client) closeIssuers() {
	for _, p := range c.jwtIssuers {
		p.close()
	}
	if c.contexts != nil {
		c.contexts.close()
	}
}

// redactURLs is the URLs redacted (redactURL), comma-separated.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redactURL(u)
	}
	return strings.Join(out, ",")
}
