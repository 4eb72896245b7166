package introspect

import (
	"context"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Hooks into discovery for the external tests.

// WithKeyRefreshLimit sets the least time between two JWKS refreshes caused
// by an unknown kid.
func WithKeyRefreshLimit(d time.Duration) Option {
	return func(c *config) { c.keyRefreshLimit = d }
}

// RefreshDue runs one pass of the background refresh loop.
func (c *Client) RefreshDue() { c.prov.tick() }

// StaticContext exposes staticContext.
func (c *Client) StaticContext() ClientContext { return c.staticContext() }

// NewJWTResponseVerifier returns the signed-answer check of a client whose
// discovery found issuer, the keys in jwks and the algorithms algs, for the
// client clientID, at the time now. It never touches the network: the key
// set is never refreshed.
func NewJWTResponseVerifier(issuer, clientID string, jwks []byte, algs []string, now time.Time) (func(tok []byte) (*Introspection, error), error) {
	set, err := parseKeys(jwks)
	if err != nil {
		return nil, err
	}
	cfg := newConfig([]Option{WithClock(func() time.Time { return now })})
	_ = checkClientConfig(cfg) // fills in the defaults; the missing endpoint does not matter here
	c := &Client{cfg: cfg}
	c.prov = &provider{c: c, issuer: issuer, ctx: context.Background()}
	c.prov.keys = &refresher[jwk.Set]{now: cfg.now, forceLimit: time.Hour, fetched: now,
		load: func(context.Context) (*jwk.Set, time.Duration, error) { panic("no network in this test") }}
	c.prov.keys.cur.Store(&set)
	st := &providerState{meta: ProviderMetadata{Issuer: issuer}, algs: signingAlgs(algs)}
	return func(tok []byte) (*Introspection, error) {
		return c.parseJWTResponse(context.Background(), c.prov, st, clientID, tok, now)
	}, nil
}
