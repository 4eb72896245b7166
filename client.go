package introspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client asks an authorization server about tokens (RFC 7662). It is safe for
// concurrent use and immutable after [NewClient].
type Client struct {
	cfg  *config
	http *http.Client
	prov *provider // nil without WithIssuer
	// jwtIssuers are the providers of WithJWTIssuers (WithIssuer's, when
	// listed, is c.prov), read-only after NewClient; contexts those of client
	// contexts' issuers.
	jwtIssuers map[string]*provider
	contexts   *contextIssuers
	// static is the context of the static credentials without discovery,
	// with the authentication method chosen.
	static ClientContext
	// endpoint is the configured introspection endpoint parsed, nil if none.
	endpoint *url.URL
}

// NewClient returns a client configured by opts: [WithEndpoint] and client
// credentials, or [WithClientStore] (then use [Client.IntrospectAs]), plus any
// of the transport and validation options. Middleware-only options are an
// error here.
//
// A Client makes one call to the authorization server per Introspect. For
// the cache, the coalescing of concurrent calls, the bulkhead and the hooks
// without an *http.Request (a queue consumer, a websocket, a custom
// protocol), build a [Middleware] with [New] and call [Middleware.Verify].
func NewClient(opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	for _, name := range cfg.mwOnly {
		cfg.fail("%s applies to the middleware, not to a Client", name)
	}
	return newClient(cfg)
}

func newClient(cfg *config) (*Client, error) {
	if err := checkClientConfig(cfg); err != nil {
		return nil, err
	}
	var hc http.Client
	if cfg.httpClient != nil {
		hc = *cfg.httpClient
	} else {
		hc.Transport = defaultTransport()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.clientCert != nil {
		t, err := withCertificate(hc.Transport, cfg.clientCert)
		if err != nil {
			return nil, err
		}
		hc.Transport = t
	}
	c := &Client{cfg: cfg, http: &hc}
	if cfg.endpoint != "" {
		c.endpoint = parseEndpoint(cfg.endpoint) // checked by cfg.check
	}
	if cfg.credsSet {
		cr := cfg.creds
		cr.AuthMethod = chooseAuthMethod(cr, c.hasCert(), nil)
		c.static = ClientContext{Endpoint: cfg.endpoint, Credentials: cr}
	}
	if cfg.discoveryIssuer != "" {
		c.prov = newProvider(c, cfg.discoveryIssuer, rolePrimary)
		if err := c.prov.start(cfg.eagerDiscovery); err != nil {
			c.prov.close()
			return nil, err
		}
	}
	if err := c.startIssuers(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// checkClientConfig validates the client side of the configuration, with
// the rules of discovery, client authentication and signed answers added to
// config.check's, and fills in the defaults of those options.
func checkClientConfig(cfg *config) error {
	if cfg.metadataRefresh == 0 {
		cfg.metadataRefresh = DefaultMetadataRefresh
	}
	if cfg.keyRefreshLimit == 0 {
		cfg.keyRefreshLimit = defaultKeyRefreshLimit
	}
	if cfg.jwtResponseMaxAge == 0 {
		cfg.jwtResponseMaxAge = defaultJWTResponseMaxAge
	}
	if cfg.maxIssuers == 0 {
		cfg.maxIssuers = DefaultMaxIssuers
	}
	var errs []error
	for _, iss := range append([]string{cfg.discoveryIssuer}, cfg.jwtIssuers...) {
		if iss == "" {
			continue
		}
		if err := checkIssuer(iss, cfg.insecureHTTP); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.discoveryIssuer == "" {
		if cfg.jwtResponse && cfg.store == nil {
			errs = append(errs, errors.New("introspect: WithJWTResponse needs WithIssuer, or a ClientStore whose contexts name issuers (the keys and issuer come from discovery)"))
		}
		if cfg.eagerDiscovery && len(cfg.jwtIssuers) == 0 {
			errs = append(errs, errors.New("introspect: WithEagerDiscovery needs WithIssuer or WithJWTIssuers"))
		}
	}
	if cfg.credsSet {
		cr := cfg.creds
		if err := checkAuthMaterial(cr, chooseAuthMethod(cr, cfg.clientCert != nil, nil)); err != nil {
			errs = append(errs, err)
		}
		if cr.RawBasicAuth && cr.AuthMethod != "" && cr.AuthMethod != ClientSecretBasic {
			errs = append(errs, fmt.Errorf("introspect: WithRawBasicAuth applies to client_secret_basic, and the method is %s", cr.AuthMethod))
		}
		if cr.AuthMethod.isTLS() && cfg.clientCert == nil && cfg.httpClient == nil {
			errs = append(errs, fmt.Errorf("introspect: %s needs a client certificate: use WithClientCertificate or WithHTTPClient", cr.AuthMethod))
		}
	}
	return errors.Join(cfg.check(), errors.Join(errs...), cfg.checkValidation(cfg.validation.usesJWT()))
}

// withCertificate returns a copy of rt that presents cert to servers asking
// for a client certificate (RFC 8705).
func withCertificate(rt http.RoundTripper, cert *tls.Certificate) (http.RoundTripper, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("introspect: WithClientCertificate needs an *http.Transport, the HTTP client has a %T", rt)
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	return t, nil
}

// defaultTransport is shared by every client that was given no HTTP client,
// so connections to one authorization server are pooled and reused.
var defaultTransport = sync.OnceValue(func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 5 * time.Second
	return t
})

// Introspect asks the configured authorization server about token and checks
// the answer. It returns a nil error only for an active token that passes the
// local checks (exp, nbf and iat with leeway; issuer, audience and client
// allow-list when configured). Otherwise the error matches [ErrInactiveToken]
// (the *Introspection is then returned too, when there was an answer) or
// [ErrUnavailable].
func (c *Client) Introspect(ctx context.Context, token string) (*Introspection, error) {
	if c.cfg.store != nil {
		return nil, fmt.Errorf("%w: client uses a ClientStore: call IntrospectAs", ErrClientConfig)
	}
	return c.IntrospectAs(ctx, c.staticContext(), token)
}

// IntrospectAs is [Client.Introspect] with the endpoint and credentials of cc.
func (c *Client) IntrospectAs(ctx context.Context, cc ClientContext, token string) (*Introspection, error) {
	if token == "" {
		return nil, ErrMissingToken // nothing to ask the server about
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	cc, _, _, err := c.resolve(ctx, cc)
	if err != nil {
		return nil, err
	}
	ti, err := c.fetch(ctx, cc, token)
	if err != nil {
		return ti, err
	}
	return ti, c.validateFor(ti, c.cfg.now(), cc.Issuer)
}

// staticContext is the context of the static credentials. It is called on
// every request: an atomic load with discovery, no lock, no allocation, no
// network. Before discovery has succeeded its Endpoint is empty, and fetch
// then waits for discovery.
func (c *Client) staticContext() ClientContext { return *c.staticContextRef() }

// staticContextRef is staticContext without the copy, for the hit path:
// what it points to is shared and must not be written.
func (c *Client) staticContextRef() *ClientContext {
	if c.prov != nil {
		if st := c.prov.meta.current(); st != nil {
			return &st.cc
		}
		return &ClientContext{Issuer: c.prov.issuer, Credentials: c.static.Credentials}
	}
	return &c.static
}

// fetch asks the authorization server. It returns the verdict, active or not,
// or an error if no verdict was possible. A 400 invalid_token answer is the
// verdict "inactive" (some servers answer unknown tokens so). The caller
// bounds ctx by the call timeout.
func (c *Client) fetch(ctx context.Context, cc ClientContext, token string) (*Introspection, error) {
	cc, p, st, err := c.resolve(ctx, cc)
	if err != nil {
		return nil, err
	}
	if c.cfg.jwtResponse && st == nil {
		return nil, fmt.Errorf("%w: WithJWTResponse: the client context names no issuer", ErrClientConfig)
	}
	u := c.knownEndpoint(cc.Endpoint, st)
	if u == nil {
		if err := checkEndpoint(cc.Endpoint, c.cfg.insecureHTTP); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrClientConfig, err)
		}
		if u = parseEndpoint(cc.Endpoint); u == nil {
			return nil, fmt.Errorf("%w: bad endpoint", ErrClientConfig)
		}
	}
	if err := checkCredentials(cc.Credentials); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientConfig, err)
	}
	if err := checkAuthMaterial(cc.Credentials, cc.Credentials.AuthMethod); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientConfig, err)
	}

	form := url.Values{"token": {token}}
	hint := c.cfg.hint
	if c.cfg.hintFunc != nil {
		hint = c.cfg.hintFunc(token)
	}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	req := newPost(ctx, u)
	audience := cc.Endpoint
	if st != nil {
		audience = st.meta.Issuer
	}
	if err := authenticate(ctx, cc.Credentials, audience, c.cfg.now(), req, form); err != nil {
		return nil, err
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.cfg.jwtResponse {
		req.Header.Set("Accept", jwtResponseMediaType)
	} else {
		req.Header.Set("Accept", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, exchangeFailure(ctx, err))
	}
	defer resp.Body.Close()
	data, err := readBody(resp, c.cfg.maxBody)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, exchangeFailure(ctx, err))
	}
	if int64(len(data)) > c.cfg.maxBody {
		return nil, ErrResponseTooLarge
	}
	if resp.StatusCode != http.StatusOK {
		rerr := responseError(resp, data)
		if rerr.StatusCode == http.StatusBadRequest && rerr.ErrorCode == "invalid_token" {
			return &Introspection{Active: false}, nil
		}
		return nil, rerr
	}
	if c.cfg.jwtResponse {
		return c.verifyJWTResponse(ctx, p, st, cc.Credentials.ClientID, resp.Header, data)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, fmt.Errorf("%w: content type is not application/json", ErrMalformedResponse)
	}
	return parseIntrospection(data)
}

// exactRead bounds the buffer readBody sizes from a declared length before
// any of the body has come.
const exactRead = 64 << 10

// readBody reads the body of resp, at most max+1 bytes of it: more than max
// is too large. A small body of a declared length within max is read into a
// buffer of that size.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= max && n <= exactRead {
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, max+1))
}

// isJSON reports whether the media type of the Content-Type value ct is
// application/json, whatever its parameters.
func isJSON(ct string) bool {
	if ct == "application/json" { // the common case, without a parse
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// knownEndpoint returns endpoint parsed if it was validated when it was
// configured or discovered, so it need not be checked and parsed again;
// otherwise nil.
func (c *Client) knownEndpoint(endpoint string, st *providerState) *url.URL {
	switch {
	case endpoint == "":
		return nil
	case endpoint == c.cfg.endpoint:
		return c.endpoint
	case st != nil && endpoint == st.cc.Endpoint:
		return st.endpoint
	}
	return nil
}

// parseEndpoint parses an endpoint that checkEndpoint accepted, the way
// http.NewRequest would; nil if it cannot.
func parseEndpoint(endpoint string) *url.URL {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	if strings.LastIndex(u.Host, ":") > strings.LastIndex(u.Host, "]") {
		u.Host = strings.TrimSuffix(u.Host, ":") // an empty port, as http.NewRequest drops it
	}
	return u
}

// newPost is http.NewRequestWithContext(ctx, "POST", u.String(), nil)
// without parsing the URL again: u is copied, never shared.
func newPost(ctx context.Context, u *url.URL) *http.Request {
	cu := *u
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        &cu,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Host:       cu.Host,
	}
	return req.WithContext(ctx)
}

// discoveryError makes sure a failed discovery matches ErrDiscovery.
func discoveryError(err error) error {
	if errors.Is(err, ErrDiscovery) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDiscovery, err)
}

// exchangeError is a failed HTTP exchange told in the package's words. The
// error it stands for is not kept: the text of net/http, crypto/tls and the
// network may repeat what the other side sent (a status line, a header, the
// names in a certificate, a URL of its metadata). It matches its class and,
// for a timeout or a cancellation, the context's error.
type exchangeError struct {
	class error  // ErrConnect, ErrTLS, ErrConnectionLost, ErrMalformedHTTP or ErrUnavailable
	ctx   error  // context.DeadlineExceeded, context.Canceled or nil
	text  string // the class and a detail, in the package's words
}

func (e *exchangeError) Error() string { return e.text }

func (e *exchangeError) Unwrap() []error {
	if e.ctx != nil {
		return []error{e.class, e.ctx}
	}
	return []error{e.class}
}

// Words for the classes of [exchangeError].
const (
	connectWords  = "cannot connect"
	tlsWords      = "TLS handshake failed"
	lostWords     = "connection lost"
	malformedHTTP = "malformed HTTP answer"
	timeoutWords  = "timed out"
)

// exchangeTexts map the beginnings of error texts of net/http (HTTP/1 and
// its bundled HTTP/2) and crypto/tls to a class and a detail. The beginnings are
// fixed by Go, whatever the other side sent (which may follow them); they
// only choose the words and are never repeated.
var exchangeTexts = []struct {
	prefix string
	class  error
	words  string
}{
	{"malformed HTTP response", ErrMalformedHTTP, malformedHTTP + ": bad status line"},
	{"malformed HTTP status code", ErrMalformedHTTP, malformedHTTP + ": bad status line"},
	{"malformed HTTP version", ErrMalformedHTTP, malformedHTTP + ": bad status line"},
	{"malformed MIME", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"bad Content-Length", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"invalid empty Content-Length", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"http: message cannot contain multiple Content-Length headers", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"unsupported transfer encoding", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"too many transfer encodings", ErrMalformedHTTP, malformedHTTP + ": bad header"},
	{"net/http: server response headers exceeded", ErrMalformedHTTP, malformedHTTP + ": headers too large"},
	{"net/http: too many 1xx informational responses", ErrMalformedHTTP, malformedHTTP + ": too many interim answers"},
	{"malformed chunked encoding", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"invalid byte in chunk length", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"empty hex number for chunk length", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"http chunk length too large", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"chunked line ends with bare LF", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"invalid CR in chunked line", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"chunked encoding contains too much non-data", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"header line too long", ErrMalformedHTTP, malformedHTTP + ": bad chunked encoding"},
	{"http: unexpected EOF reading trailer", ErrMalformedHTTP, malformedHTTP + ": bad trailer"},
	{"http: suspiciously long trailer", ErrMalformedHTTP, malformedHTTP + ": bad trailer"},
	{"tls: ", ErrTLS, tlsWords},
	{"http: server closed idle connection", ErrConnectionLost, lostWords + ": connection closed before the answer was complete"},
	{"http2: ", ErrConnectionLost, lostWords + ": HTTP/2 connection or stream ended"},
	{"stream error:", ErrConnectionLost, lostWords + ": HTTP/2 connection or stream ended"},
	{"connection error:", ErrConnectionLost, lostWords + ": HTTP/2 connection or stream ended"},
	{"net/http: HTTP/1.x transport connection broken", ErrConnectionLost, lostWords},
}

// exchangeFailure tells err, the failure of an HTTP exchange made with ctx
// (a call of http.Client.Do or a read of the answer's body), in the
// package's words: see [exchangeError].
func exchangeFailure(ctx context.Context, err error) error {
	var (
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		certErr  x509.CertificateInvalidError
		verErr   *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		dnsErr   *net.DNSError
		opErr    *net.OpError
		netErr   net.Error
		protoErr textproto.ProtocolError
	)
	fail := func(class error, text string) error { return &exchangeError{class: class, text: text} }
	switch {
	case errors.Is(err, context.Canceled):
		return &exchangeError{class: ErrUnavailable, ctx: context.Canceled, text: "canceled"}
	case errors.Is(err, context.DeadlineExceeded):
		return timedOut(err)
	case ctx.Err() != nil:
		// The context ended first; err is a consequence (a closed connection).
		return exchangeFailure(context.Background(), ctx.Err())
	case errors.As(err, &hostErr):
		return fail(ErrTLS, tlsWords+": certificate not valid for the host")
	case errors.As(err, &authErr), errors.As(err, &certErr), errors.As(err, &verErr):
		return fail(ErrTLS, tlsWords+": certificate not trusted")
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recErr):
		return fail(ErrTLS, tlsWords+": the server does not speak TLS")
	case errors.As(err, &alertErr), errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error"):
		return fail(ErrTLS, tlsWords)
	case errors.As(err, &dnsErr):
		return fail(ErrConnect, connectWords+": host name not resolved")
	case errors.As(err, &netErr) && netErr.Timeout():
		return timedOut(err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		switch t := osErrorText(err); {
		case strings.Contains(t, "refused"):
			return fail(ErrConnect, connectWords+": connection refused")
		case strings.Contains(t, "unreachable"):
			return fail(ErrConnect, connectWords+": host unreachable")
		}
		return fail(ErrConnect, connectWords)
	case errors.As(err, &protoErr):
		return fail(ErrMalformedHTTP, malformedHTTP+": bad header")
	}
	// Deepest first: the outer texts of net/http wrap the inner ones.
	chain := errorChain(err)
	for i := len(chain) - 1; i >= 0; i-- {
		text := chain[i].Error()
		for _, t := range exchangeTexts {
			if strings.HasPrefix(text, t.prefix) {
				return fail(t.class, t.words)
			}
		}
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fail(ErrConnectionLost, lostWords+": connection closed before the answer was complete")
	case errors.As(err, &opErr):
		if t := osErrorText(err); strings.Contains(t, "reset") || strings.Contains(t, "forcibly closed") {
			return fail(ErrConnectionLost, lostWords+": connection reset")
		}
		return fail(ErrConnectionLost, lostWords)
	}
	return fail(ErrUnavailable, "HTTP exchange failed")
}

// timedOut is a timeout, named after what timed out when that is known.
func timedOut(err error) error {
	text := timeoutWords
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		text += " connecting"
	case slices.ContainsFunc(errorChain(err), func(e error) bool { return e.Error() == "net/http: TLS handshake timeout" }):
		text += " in the TLS handshake"
	}
	return &exchangeError{class: ErrUnavailable, ctx: context.DeadlineExceeded, text: text}
}

// osErrorText is the operating system's text for the system call that failed
// in err, lower-cased, or "".
func osErrorText(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		return strings.ToLower(se.Err.Error())
	}
	return ""
}

// errorChain lists err and the errors it wraps, depth first, at most 32.
func errorChain(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(out) >= 32 {
			return
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				walk(w)
			}
		}
	}
	walk(err)
	return out
}

// responseError reads an RFC 6749 §5.2 error body, if there is one.
func responseError(resp *http.Response, data []byte) *ResponseError {
	e := &ResponseError{StatusCode: resp.StatusCode}
	var body struct {
		Error       any `json:"error"`
		Description any `json:"error_description"`
	}
	if json.Unmarshal(data, &body) == nil {
		if s, ok := body.Error.(string); ok {
			e.ErrorCode = sanitize(s, 64)
		}
		if s, ok := body.Description.(string); ok {
			e.Description = sanitize(s, 256)
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
			e.RetryAfter = min(time.Duration(n)*time.Second, time.Hour)
		}
	}
	return e
}

// sanitize keeps the characters RFC 6749 allows in error and
// error_description (%x20-21 / %x23-5B / %x5D-7E), at most max of them.
func sanitize(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// validateFor is validate for an answer of the server of issuer iss (""
// when unknown): an answer naming another issuer is refused.
func (c *Client) validateFor(ti *Introspection, now time.Time, iss string) error {
	if err := c.validate(ti, now); err != nil {
		return err
	}
	if iss != "" && ti.Issuer != "" && ti.Issuer != iss {
		return ErrIssuerMismatch
	}
	return nil
}

// validate applies the local checks to an answer, cached or fresh.
func (c *Client) validate(ti *Introspection, now time.Time) error {
	if ti == nil || !ti.Active {
		return ErrInactiveToken
	}
	lw := c.cfg.leeway
	if !ti.Expiry.IsZero() && now.After(ti.Expiry.Add(lw)) {
		return ErrTokenExpired
	}
	if !ti.NotBefore.IsZero() && now.Add(lw).Before(ti.NotBefore) {
		return ErrTokenNotYetValid
	}
	if !ti.IssuedAt.IsZero() && now.Add(lw).Before(ti.IssuedAt) {
		return ErrTokenIssuedInFuture
	}
	if c.cfg.issuer != "" && ti.Issuer != c.cfg.issuer {
		return ErrIssuerMismatch
	}
	if len(c.cfg.audiences) > 0 && !slices.ContainsFunc(c.cfg.audiences, ti.HasAudience) {
		return ErrAudienceMismatch
	}
	if len(c.cfg.clientIDs) > 0 && !slices.Contains(c.cfg.clientIDs, ti.ClientID) {
		return ErrClientNotAllowed
	}
	return nil
}

// Close releases what the client holds in the background (discovery and key
// refreshes). A closed client must not be used. It is safe to call twice.
func (c *Client) Close() error {
	if c.prov != nil {
		c.prov.close()
	}
	c.closeIssuers()
	return nil
}
