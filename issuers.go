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
// them (refused in [ValidateJWT] mode, introspected in [ValidateHybrid]),
// and that issuer is never contacted. Every issuer's metadata must name
// itself (RFC 8414 §3.3) and a jwks_uri. The audience, algorithms and other
// rules of local validation apply to each.
//
// These issuers are trusted on every request, whatever its client context:
// list here only issuers every route accepts. For one issuer per tenant,
// name each in its tenant's [ClientContext].Issuer instead (and not here):
// a request then accepts its own context's issuer only.
//
// Opaque tokens are not routed by issuer: [WithClientStore] chooses where
// they are introspected, by a rule of the application (a token prefix, the
// host, a tenant in the path, a header). Needs [ValidateJWT] or
// [ValidateHybrid]; in [ValidateJWTAndIntrospect] mode a token is
// introspected at its own issuer, which the request's context names, so
// this option is refused there.
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
// is dropped, and discovered again when a request names it (an issuer that
// was failing keeps its backoff). Set it above the number of tenants:
// requests cycling through more issuers than the bound make a discovery
// each. The issuers of [WithIssuer] and [WithJWTIssuers] are not counted.
// Default [DefaultMaxIssuers].
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
// discovered on first use, at most a bound of them. The least recently used
// one is dropped: its refresh loop stops, requests still holding it go on
// with it (its fetches are not cancelled), and its failure state (the
// backoff of an issuer whose metadata or keys fail) is remembered for the
// provider made for it next, so that
// requests cycling through more issuers than the bound never contact a
// failing server more often than its backoff allows.
type contextIssuers struct {
	c   *Client
	lru *lru.Cache[string, *provider]
	// failed remembers the failure state of dropped providers whose issuer
	// was failing (its metadata or its keys), a bounded number of them.
	failed *lru.Cache[string, issuerFailure]

	mu     sync.Mutex // serializes the creation of providers and close
	closed bool

	rmu      sync.Mutex // guards retiring
	retiring map[*provider]struct{}
	wg       sync.WaitGroup // the goroutines retiring dropped providers
}

func newContextIssuers(c *Client, size int) *contextIssuers {
	s := &contextIssuers{c: c, retiring: make(map[*provider]struct{})}
	s.failed, _ = lru.New[string, issuerFailure](4 * size)
	s.lru, _ = lru.NewWithEvict(size, s.dropped)
	return s
}

// dropped is called when the cache drops p, the provider of iss, maybe
// under the cache's lock: it must not take s.mu.
func (s *contextIssuers) dropped(iss string, p *provider) {
	f := issuerFailure{meta: p.meta.failure()}
	if p.keys != nil {
		f.keys = p.keys.failure()
	}
	if f.meta.n > 0 || f.keys.n > 0 {
		s.failed.Add(iss, f)
	} else {
		s.failed.Remove(iss)
	}
	s.rmu.Lock()
	s.retiring[p] = struct{}{}
	s.rmu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.retire()
		s.rmu.Lock()
		delete(s.retiring, p)
		s.rmu.Unlock()
	}()
}

// issuerFailure is the failure state of an issuer's metadata and keys.
type issuerFailure struct{ meta, keys failure }

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
	if f, ok := s.failed.Get(iss); ok {
		p.meta.seed(f.meta)
		if p.keys != nil {
			p.keys.seed(f.keys)
		}
	}
	_ = p.start(false) // never fails without eager discovery
	s.lru.Add(iss, p)
	return p, nil
}

// close ends every provider, those being retired included, and waits for
// them.
func (s *contextIssuers) close() {
	s.mu.Lock()
	s.closed = true
	ps := s.lru.Values()
	s.mu.Unlock()
	s.rmu.Lock()
	for p := range s.retiring {
		ps = append(ps, p)
	}
	s.rmu.Unlock()
	for _, p := range ps {
		p.close()
	}
	s.lru.Purge() // retires what close already ended
	s.wg.Wait()
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
// if iss is none of the issuers whose tokens the request accepts: those of
// WithJWTIssuers, and ctxIssuer, the issuer of the request's client context
// (contextIssuer).
func (c *Client) jwtProvider(iss, ctxIssuer string) (*provider, error) {
	switch {
	case iss == "":
		return nil, nil
	case c.jwtIssuers[iss] != nil:
		return c.jwtIssuers[iss], nil
	case iss == ctxIssuer:
		return c.providerOf(iss)
	}
	return nil, nil
}

// contextIssuer is the issuer of cc: the one it names, else WithIssuer's
// for a context that names no endpoint either (the static context, or one
// of a ClientStore left to WithIssuer); "" for a context of an endpoint
// alone.
func (c *Client) contextIssuer(cc *ClientContext) string {
	switch {
	case cc.Issuer != "":
		return cc.Issuer
	case cc.Endpoint == "" && c.prov != nil:
		return c.prov.issuer
	}
	return ""
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
// first discovery. When that fails, cc comes back as it was, with the
// error.
func (c *Client) keyContext(ctx context.Context, cc ClientContext) (ClientContext, error) {
	if cc.Endpoint != "" || cc.Issuer == "" && c.prov == nil {
		return cc, nil
	}
	rc, _, _, err := c.resolve(ctx, cc)
	if err != nil {
		return cc, err
	}
	return rc, nil
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
			c.jwtIssuers[iss] = c.prov // accepted on every route, like the others
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
		if p != c.prov { // WithIssuer's, closed with the client
			p.close()
		}
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

// Ready reports whether the client can serve without waiting for
// discovery: nil when every issuer configured up front ([WithIssuer],
// [WithJWTIssuers]) has a good copy of its metadata, and of its keys when
// they are needed (signed answers, local JWT validation), or when there is
// no such issuer. Otherwise the error matches [ErrDiscovery] and says which
// issuers (without user info, query or fragment) lack what. It reads what
// the background refreshes hold and never calls the network: a readiness
// probe may call it on every request. Issuers of client contexts are
// discovered per request and are not counted.
func (c *Client) Ready() error {
	var missing []string
	check := func(p *provider) {
		switch {
		case p.meta.current() == nil:
			missing = append(missing, redactURL(p.issuer)+" (metadata)")
		case p.keys != nil && p.needsKeys() && p.keys.current() == nil:
			missing = append(missing, redactURL(p.issuer)+" (keys)")
		}
	}
	if c.prov != nil {
		check(c.prov)
	}
	for _, iss := range c.cfg.jwtIssuers {
		if p := c.jwtIssuers[iss]; p != nil && p != c.prov {
			check(p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: not loaded yet: %s", ErrDiscovery, strings.Join(missing, ", "))
	}
	return nil
}
