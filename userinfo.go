package introspect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// userinfoConfig is the configuration of WithUserinfo.
type userinfoConfig struct {
	endpoint   string // WithUserinfoEndpoint; "": the metadata's userinfo_endpoint
	bestEffort bool   // UserinfoBestEffort
}

// A UserinfoOption configures [WithUserinfo].
type UserinfoOption func(*userinfoConfig)

// UserinfoBestEffort serves a request without userinfo claims
// ([Introspection.Userinfo] is nil) when the userinfo endpoint cannot be
// asked (unreachable, timeout, a status other than 200 and 401, an answer
// that is too large, malformed or badly signed), instead of answering 503.
// The failure is logged at warn level by [WithLogger], in the package's
// words. A token the endpoint refuses (401) is still refused, and so is a
// userinfo answer about another subject. Default off: such a request gets
// 503.
func UserinfoBestEffort() UserinfoOption {
	return func(c *userinfoConfig) { c.bestEffort = true }
}

// WithUserinfo loads the OpenID Connect userinfo claims (OpenID Connect Core
// §5.3) of every accepted token, by introspection or by local JWT
// validation, into [Introspection.Userinfo] of the verdict the handler gets.
//
// The middleware GETs the userinfo endpoint with the token in an
// Authorization: Bearer header, through the client's HTTP client (no
// redirects, the call timeout of [WithTimeout], answers bounded by
// [WithMaxResponseSize], within the bulkhead of
// [WithMaxConcurrentIntrospections]). The endpoint is the
// userinfo_endpoint of the discovery metadata of the token's issuer
// ([WithIssuer], [WithJWTIssuers] or the request's [ClientContext].Issuer),
// or the one of [WithUserinfoEndpoint]; one of the two is required.
//
// A plain answer must be a JSON object (application/json). A signed one
// (application/jwt) must be a JWS signed by a key of the issuer's jwks_uri
// with an asymmetric algorithm (never none, never HMAC), with iss equal to
// the issuer, no expired exp and, when it has an aud, the token's client_id
// (the client the answer is for) or our client ID in it; it requires
// discovery of the issuer. An encrypted answer
// is not supported. Its "sub" must be there and equal the token's (OpenID
// Connect Core §5.3.2).
//
// A token the endpoint refuses (401) and a userinfo answer about another
// subject are refused: 401 invalid_token. Any other failure is a 503 (fail
// closed), unless [UserinfoBestEffort] is given. Errors never repeat the
// endpoint's text.
//
// With [WithCache], the claims are cached in the same cache as verdicts,
// apart from them under their own key (a hash of the userinfo endpoint, the
// client ID and the token, never the token itself), for as long as a
// verdict fetched at the same time would be ([WithMaxTTL], never past the
// token's exp); a token whose verdict would not be cached gets its claims
// anew on each request. Concurrent misses for one token share one call,
// [Middleware.Evict] removes the claims with the verdict, and
// [WithStaleIfError] does not apply to them. A cached verdict is never
// changed: the claims are set on a copy.
//
// A token bound to a key (cnf with jkt, DPoP, or x5t#S256, a client
// certificate) is not sent: the userinfo endpoint would need a proof of
// possession that only the token's client can make, and the middleware does
// not forward sender-constrained tokens. Its verdict has no userinfo claims
// (Userinfo is nil); handlers that need them must refuse such tokens
// themselves. A token whose verdict has no subject (sub), a client's own
// token, is refused without a call (401 invalid_token, best effort or not,
// as the endpoint would refuse it): it has no user, and no answer could be
// checked to be about it.
//
// Default off.
func WithUserinfo(opts ...UserinfoOption) Option {
	return func(c *config) {
		c.middlewareOnly("WithUserinfo")
		if c.userinfo == nil {
			c.userinfo = &userinfoConfig{}
		}
		for _, o := range opts {
			if o == nil {
				c.fail("WithUserinfo: nil option")
				continue
			}
			o(c.userinfo)
		}
	}
}

// WithUserinfoEndpoint sets the userinfo endpoint of [WithUserinfo], for an
// authorization server without discovery or one whose metadata does not list
// it. It serves the tokens of [WithIssuer]'s issuer and of client contexts
// that name no issuer; a context of a [ClientStore] that names another
// issuer uses that issuer's discovered userinfo_endpoint, so that no token
// goes to another issuer's server. It must be https, unless the host is
// loopback or [InsecureAllowHTTP] is given. It needs WithUserinfo. Default:
// the userinfo_endpoint of the metadata of [WithIssuer].
func WithUserinfoEndpoint(endpoint string) Option {
	return func(c *config) {
		c.middlewareOnly("WithUserinfoEndpoint")
		c.userinfoEndpoint = endpoint
		c.userinfoEndpointSet = true
	}
}

// checkUserinfo validates the userinfo options.
func (c *config) checkUserinfo() error {
	if c.userinfo == nil {
		if c.userinfoEndpointSet {
			return errors.New("introspect: WithUserinfoEndpoint needs WithUserinfo")
		}
		return nil
	}
	if c.userinfoEndpointSet {
		if len(c.jwtIssuers) > 0 {
			// One endpoint would get the tokens of every issuer.
			return errors.New("introspect: WithUserinfoEndpoint names one endpoint for every token, and WithJWTIssuers several issuers: leave it out, each issuer's userinfo_endpoint is discovered")
		}
		if err := checkEndpoint(c.userinfoEndpoint, c.insecureHTTP); err != nil {
			return errors.New("introspect: WithUserinfoEndpoint: " + strings.TrimPrefix(err.Error(), "introspect: "))
		}
		c.userinfo.endpoint = c.userinfoEndpoint
		return nil
	}
	if c.discoveryIssuer == "" && len(c.jwtIssuers) == 0 && c.store == nil {
		return errors.New("introspect: WithUserinfo needs WithIssuer, WithJWTIssuers, a ClientStore whose contexts name issuers (the userinfo_endpoint comes from discovery) or WithUserinfoEndpoint")
	}
	return nil
}

// Userinfo errors, in the package's words.
var (
	errUserinfoRefused    = fmt.Errorf("%w: the userinfo endpoint refused the token", ErrInactiveToken)
	errUserinfoSubject    = fmt.Errorf("%w: the userinfo answer is about another subject", ErrInactiveToken)
	errUserinfoNoSubject  = fmt.Errorf("%w: userinfo: the token has no subject", ErrInactiveToken)
	errUserinfoNoEndpoint = fmt.Errorf("%w: userinfo: the metadata has no userinfo_endpoint", ErrClientConfig)
)

// userinfoMember is the Extra member under which a cache entry of the
// userinfo claims holds them.
const userinfoMember = "userinfo"

// boundToken reports whether ti or tok says the token is sender-constrained.
func boundToken(tok Token, ti *Introspection) bool {
	if isDPoP(tok) {
		return true
	}
	c := ti.Confirmation
	return c != nil && (c.JKT != "" || c.X5TS256 != "")
}

// withUserinfo returns a copy of ti, an accepted verdict, with the userinfo
// claims of tok set, or ti itself for a bound token or, best effort, when
// the endpoint cannot be asked. A token without a subject is refused: it
// has no user, and no answer could be checked to be about it.
func (m *Middleware) withUserinfo(ctx context.Context, cc ClientContext, tok Token, ti *Introspection, now time.Time) (*Introspection, error) {
	if boundToken(tok, ti) {
		return ti, nil
	}
	if ti.Subject == "" {
		return ti, errUserinfoNoSubject
	}
	claims, err := m.userinfoClaims(ctx, cc, tok.Value, ti, now)
	if err != nil {
		if m.cfg.userinfo.bestEffort && !errors.Is(err, ErrInactiveToken) && !errors.Is(err, ErrRequestCanceled) {
			if m.obs.log != nil {
				m.obs.log.WarnContext(ctx, "introspect: userinfo unavailable: serving without it", "error", err)
			}
			return ti, nil
		}
		return ti, err
	}
	out := *ti
	out.Userinfo = claims
	return &out, nil
}

// userinfoEndpoint is the configured endpoint, or the metadata's of iss,
// with the issuer's provider and state (nil without an issuer).
func (m *Middleware) userinfoEndpoint(ctx context.Context, iss string) (string, *provider, *providerState, error) {
	var p *provider
	if iss != "" {
		var err error
		if p, err = m.client.providerOf(iss); err != nil {
			return "", nil, nil, err
		}
	}
	var st *providerState
	if p != nil {
		var err error
		if st, err = p.state(ctx); err != nil {
			return "", nil, nil, discoveryError(err)
		}
	}
	if m.configuredUserinfo(iss) {
		return m.cfg.userinfo.endpoint, p, st, nil
	}
	if st == nil || st.meta.UserinfoEndpoint == "" {
		return "", p, st, errUserinfoNoEndpoint
	}
	return st.meta.UserinfoEndpoint, p, st, nil
}

// configuredUserinfo reports whether the tokens of iss ("" for a context
// of an endpoint alone) go to the endpoint of WithUserinfoEndpoint: it is
// WithIssuer's, or that of an authorization server without discovery, and
// another issuer's tokens never go there.
func (m *Middleware) configuredUserinfo(iss string) bool {
	return m.cfg.userinfo.endpoint != "" && (iss == "" || m.client.prov != nil && iss == m.client.prov.issuer)
}

// userinfoIssuer is the issuer whose userinfo endpoint serves the subject
// of ti: the verified issuer of a JWT validated locally, else the issuer of
// the client context the token was introspected with; "" for a context of
// an endpoint alone, whose token goes to no issuer's endpoint.
func (m *Middleware) userinfoIssuer(cc ClientContext, ti *Introspection) string {
	if ti.Source == VerdictJWT || ti.Source == VerdictJWTIntrospected {
		return ti.Issuer
	}
	return m.client.contextIssuer(&cc)
}

// userinfoClaims returns the userinfo claims of token, from the cache when
// a fresh entry is there, otherwise from one call shared by the concurrent
// requests for the same token.
func (m *Middleware) userinfoClaims(ctx context.Context, cc ClientContext, token string, ti *Introspection, now time.Time) (map[string]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, callerDone(err)
	}
	cctx, cancel := context.WithTimeout(ctx, m.cfg.timeout)
	endpoint, p, st, err := m.userinfoEndpoint(cctx, m.userinfoIssuer(cc, ti))
	cancel()
	if err != nil {
		return nil, err
	}
	clientID := cc.Credentials.ClientID
	if clientID == "" {
		clientID = m.client.static.Credentials.ClientID
	}
	if m.cfg.cache == nil {
		ctx, cancel := context.WithTimeout(ctx, m.cfg.timeout)
		defer cancel()
		e, err := m.protect(ctx, func() (*Introspection, error) {
			return m.fetchUserinfo(ctx, p, st, endpoint, clientID, token, ti)
		})
		if err != nil {
			return nil, err
		}
		return userinfoOf(e), nil
	}
	key := userinfoKey(endpoint, clientID, token)
	if e, found, err := m.cfg.cache.Get(ctx, key); err != nil {
		m.obs.cacheError(ctx, "get", err)
	} else if found && e.fresh(now) && e.Introspection != nil {
		if claims := userinfoOf(e.Introspection); claims != nil {
			return claims, nil
		}
	}
	f, leader := m.flights.join(key)
	if leader {
		bctx := context.WithoutCancel(ctx)
		call := func() (*Introspection, error) {
			ctx, cancel := context.WithTimeout(bctx, m.cfg.timeout)
			defer cancel()
			gen := m.evictions.Load()
			// With a cache shared by processes, the claims are stored under
			// the fence read before the call, as verdicts are, so an
			// eviction in another process is not undone by this call.
			var fence string
			fenceOK := true
			if m.fenced != nil {
				var err error
				_, _, fence, err = m.fenced.GetFenced(ctx, key)
				fenceOK = err == nil || fence != ""
			}
			e, err := m.fetchUserinfo(ctx, p, st, endpoint, clientID, token, ti)
			if err != nil || m.evictions.Load() != gen {
				return e, err
			}
			// The claims live no longer than the verdict would be cached.
			if ve, ok := m.entryFor(ti, m.cfg.now()); ok && ti.Active {
				entry := CacheEntry{Introspection: e, Expiry: ve.Expiry, StaleUntil: ve.Expiry}
				switch {
				case m.fenced == nil:
					if err := m.cfg.cache.Set(ctx, key, entry); err != nil {
						m.obs.cacheError(ctx, "set", err)
					}
				case fenceOK:
					if _, err := m.fenced.SetFenced(ctx, key, entry, fence); err != nil {
						m.obs.cacheError(ctx, "set", err)
					}
				}
			}
			return e, nil
		}
		go m.flights.run(key, f, call, func(v any, stack []byte) { m.obs.panicked(bctx, v, stack) })
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, callerDone(ctx.Err())
	}
	if f.err != nil {
		return nil, f.err
	}
	claims := userinfoOf(f.ti)
	if claims == nil {
		return nil, fmt.Errorf("%w: userinfo: no claims", ErrMalformedResponse)
	}
	return claims, nil
}

// userinfoKey is the cache key of the userinfo claims of token: apart from
// the verdict's, since the endpoint string differs.
func userinfoKey(endpoint, clientID, token string) CacheKey {
	return NewCacheKey("userinfo "+endpoint, clientID, token)
}

// userinfoOf reads the claims out of a userinfo cache entry.
func userinfoOf(e *Introspection) map[string]json.RawMessage {
	if e == nil {
		return nil
	}
	raw, ok := e.Extra[userinfoMember]
	if !ok {
		return nil
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(raw, &claims) != nil || claims == nil {
		return nil
	}
	return claims
}

// fetchUserinfo makes one call to the userinfo endpoint within the
// bulkhead and returns the claims as a cache entry: an active
// Introspection holding them, as raw JSON, in Extra["userinfo"], so that
// every Cache (and codec) carries them as it carries verdicts. ti is the
// token's verdict: its subject and client, when known, are checked against
// the answer.
func (m *Middleware) fetchUserinfo(ctx context.Context, p *provider, st *providerState, endpoint, clientID, token string, ti *Introspection) (*Introspection, error) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		if err := ctx.Err(); errors.Is(err, context.Canceled) {
			return nil, callerDone(err)
		}
		m.obs.bulkheadFull(ctx)
		return nil, fmt.Errorf("%w: too many calls in flight: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-m.sem }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: bad endpoint", ErrClientConfig)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json, application/jwt")
	resp, err := m.client.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %w", ErrUnavailable, exchangeFailure(ctx, err))
	}
	defer resp.Body.Close()
	data, err := readBody(resp, m.cfg.maxBody)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: reading the answer: %w", ErrUnavailable, exchangeFailure(ctx, err))
	}
	if int64(len(data)) > m.cfg.maxBody {
		return nil, fmt.Errorf("%w (userinfo)", ErrResponseTooLarge)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, errUserinfoRefused
	default:
		return nil, fmt.Errorf("%w (userinfo endpoint)", responseError(resp, data))
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: no content type", ErrMalformedResponse)
	}
	var claims map[string]json.RawMessage
	switch mt {
	case "application/json":
		if json.Unmarshal(data, &claims) != nil || claims == nil {
			return nil, fmt.Errorf("%w: userinfo: not a JSON object", ErrMalformedResponse)
		}
	case "application/jwt":
		if claims, err = m.verifySignedUserinfo(ctx, p, st, clientID, ti.ClientID, bytes.TrimSpace(data)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: userinfo: content type is neither application/json nor application/jwt", ErrMalformedResponse)
	}
	var got string
	if decodeString(claims, "sub", &got) != nil {
		return nil, fmt.Errorf("%w: userinfo: sub is not a string", ErrMalformedResponse)
	}
	switch {
	case got == "":
		return nil, fmt.Errorf("%w: userinfo: no sub", ErrMalformedResponse) // always there (OpenID Connect Core §5.3.2)
	case got != ti.Subject:
		return nil, errUserinfoSubject
	}
	raw, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %w", ErrMalformedResponse, err)
	}
	return &Introspection{Active: true, Extra: map[string]json.RawMessage{userinfoMember: raw}}, nil
}

// verifySignedUserinfo checks a signed userinfo answer (OpenID Connect
// Core §5.3.2) and returns its claims. Every failure wraps ErrUnavailable.
func (m *Middleware) verifySignedUserinfo(ctx context.Context, p *provider, st *providerState, clientID, tokenClient string, tok []byte) (map[string]json.RawMessage, error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%w: signed userinfo: "+format, append([]any{ErrMalformedResponse}, args...)...)
	}
	if st == nil || p == nil || p.keys == nil {
		return nil, malformed("cannot be verified without the issuer's discovery")
	}
	switch bytes.Count(tok, []byte{'.'}) {
	case 2:
	case 4:
		return nil, fmt.Errorf("%w (userinfo)", ErrEncryptedResponse)
	default:
		return nil, malformed("not a compact JWS")
	}
	rawHeader, _, _ := bytes.Cut(tok, []byte{'.'})
	hb := make([]byte, base64.RawURLEncoding.DecodedLen(len(rawHeader)))
	n, err := strictBase64URL.Decode(hb, rawHeader)
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	hdr, err := parseJWTHeader(hb[:n])
	switch {
	case err != nil:
		return nil, malformed("header is not a JSON object")
	case hdr.Enc != "":
		return nil, fmt.Errorf("%w (userinfo)", ErrEncryptedResponse)
	case hdr.Crit:
		return nil, malformed("critical header parameters are not supported")
	case hdr.Typ != "" && !strings.EqualFold(hdr.Typ, "JWT") && !strings.EqualFold(hdr.Typ, "application/jwt"):
		// An access token (at+jwt) or a signed introspection answer is no
		// userinfo answer.
		return nil, malformed("typ is not JWT")
	case !slices.Contains(asymmetricAlgs, hdr.Alg):
		return nil, malformed("algorithm not allowed")
	}
	payload, err := p.verifySignature(ctx, tok, hdr)
	if err != nil {
		return nil, fmt.Errorf("%w (signed userinfo)", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, malformed("claims are not a JSON object")
	}
	var iss string
	if decodeString(claims, "iss", &iss) != nil || iss != st.meta.Issuer {
		return nil, malformed("iss is not the issuer")
	}
	if _, ok := claims["aud"]; ok {
		// The audience is the client the token was issued to (OpenID
		// Connect Core §5.3.2), or this resource server's client.
		aud, err := decodeStrings(claims, "aud", false)
		named := func(id string) bool { return id != "" && slices.Contains(aud, id) }
		if err != nil || !named(tokenClient) && !named(clientID) {
			return nil, malformed("aud names neither the token's client nor this client")
		}
	}
	if exp, err := decodeTime(claims, "exp"); err != nil || !exp.IsZero() && m.cfg.now().After(exp.Add(m.cfg.leeway)) {
		return nil, malformed("expired")
	}
	return claims, nil
}

// UserinfoClaim decodes the userinfo claim name ([WithUserinfo]) into v. It
// reports false if the claim is absent.
func (ti *Introspection) UserinfoClaim(name string, v any) (bool, error) {
	if ti == nil {
		return false, nil
	}
	raw, ok := ti.Userinfo[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// DecodeUserinfo decodes the userinfo claims of ti ([WithUserinfo]) into a
// value of the caller's type T, with encoding/json's rules, like
// [DecodeClaims] does for the verdict, names matching fields exactly. A nil
// ti, or one without userinfo claims (userinfo off, a bound token, best
// effort after a failure), is an error.
func DecodeUserinfo[T any](ti *Introspection) (T, error) {
	var v T
	if ti == nil || ti.Userinfo == nil {
		return v, errors.New("introspect: DecodeUserinfo: no userinfo claims")
	}
	b, err := json.Marshal(ti.Userinfo)
	if err != nil {
		return v, fmt.Errorf("introspect: DecodeUserinfo: %w", err)
	}
	if err := decodeExact(b, &v); err != nil {
		return v, fmt.Errorf("introspect: DecodeUserinfo: %w", err)
	}
	return v, nil
}

// cachedUserinfoKeys are the cache keys token's userinfo claims may be
// under, for Evict, without asking the network: those of the endpoints
// userinfoEndpoint chooses for the issuers the claims may come from (a
// JWT's, unverified, when it was validated locally, else the context's:
// both are removed); none when userinfo is off or no endpoint is known yet
// (then nothing was cached).
func (m *Middleware) cachedUserinfoKeys(cc ClientContext, token string) []CacheKey {
	if m.cfg.userinfo == nil {
		return nil
	}
	clientID := cc.Credentials.ClientID
	if clientID == "" {
		clientID = m.client.static.Credentials.ClientID
	}
	var keys []CacheKey
	for _, iss := range []string{m.client.contextIssuer(&cc), peekIssuer(token)} {
		endpoint := ""
		if m.configuredUserinfo(iss) {
			endpoint = m.cfg.userinfo.endpoint
		} else if iss != "" {
			if p := m.client.knownProvider(iss); p != nil {
				if st := p.meta.current(); st != nil {
					endpoint = st.meta.UserinfoEndpoint
				}
			}
		}
		if endpoint == "" {
			continue
		}
		if k := userinfoKey(endpoint, clientID, token); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// peekIssuer is the unverified iss of token if it is a compact JWS whose
// claims name one, else "".
func peekIssuer(token string) string {
	if len(token) > DefaultMaxJWTSize || strings.Count(token, ".") != 2 {
		return ""
	}
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	b, err := strictBase64URL.DecodeString(payload)
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}
