// Package introspectgrpc protects gRPC servers with token introspection.
//
// It is a thin layer over an [*introspect.Middleware]: the middleware takes
// the bearer token off the "authorization" metadata with its extractor (the
// same RFC 6750 rules as for HTTP), introspects it through the same client and
// cache, and decides every verdict; this package turns the verdict into a gRPC
// status and puts the [*introspect.Introspection] on the handler's context,
// where [introspect.FromContext] reads it.
//
//	mw, err := introspect.New(introspect.WithEndpoint(url), introspect.WithClientCredentials(id, secret))
//	...
//	auth, err := introspectgrpc.New(mw,
//		introspectgrpc.WithMethodScopes(map[string][]string{
//			"/shop.v1.Orders/Cancel": {"orders:write"},
//		}),
//		introspectgrpc.WithMethodAnyScopes(map[string][]string{
//			"/shop.v1.Orders/Get": {"orders:read", "orders:write"},
//		}),
//	)
//	...
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(auth.Unary()),
//		grpc.ChainStreamInterceptor(auth.Stream()),
//	)
//	shoppb.RegisterOrdersServer(srv, orders)
//	if err := auth.Validate(srv); err != nil { // a misspelled method in the rules
//		...
//	}
//
// # The request handed to the middleware
//
// The middleware works on an *http.Request. For each call this package builds
// one that carries the call's context, the method POST, URL.Path set to the
// full method name ("/shop.v1.Orders/Cancel"), Host set to the :authority,
// RemoteAddr set to the peer's address, a header per metadata key (binary
// "-bin" keys and pseudo-headers left out) and, when the connection uses TLS,
// TLS set to the peer's connection state. So an [introspect.ClientStore] can
// choose a tenant by method or authority, and the mutual-TLS token binding
// check (cnf "x5t#S256", RFC 8705) sees the client certificate. The request
// has no body. It must be treated as read-only.
//
// # DPoP
//
// A DPoP-bound token (RFC 9449) comes with the DPoP scheme in the
// "authorization" metadata ("DPoP <token>") and its proof in the "dpop"
// metadata, a new proof for each call (a stream is one call). The proof is
// checked against the request that stands for the call: the client signs
// htm "POST" and an htu of "https://" ("http://" without TLS), the call's
// :authority and the full method name, such as
// "https://orders.example.com/shop.v1.Orders/Cancel" (a default port counts
// as none). grpc-go sends the target's host and port as :authority unless
// grpc.WithAuthority says otherwise. Behind a proxy that terminates TLS or
// changes the authority, set [introspect.WithDPoPExternalURL]: htu is then
// that URL and the full method name. A refused proof is
// codes.Unauthenticated; the nonce of a use_dpop_nonce refusal is not sent,
// so server nonces ([introspect.WithDPoPNonces]) do not suit gRPC clients.
//
// # Status codes
//
// The HTTP statuses of [introspect.StatusCode] map to: 400 →
// codes.InvalidArgument (malformed authorization metadata), 401 →
// codes.Unauthenticated (no token, or a token that is not active or that a
// local check such as expiry, the token binding or the DPoP proof refused),
// 403 → codes.PermissionDenied (a scope requirement failed), 503 →
// codes.Unavailable (no verdict was possible; the call fails closed). A
// call whose own context ended before its verdict (the client canceled it,
// or its deadline passed while the authorization server was slow) ends
// with codes.Canceled or codes.DeadlineExceeded instead: not an outage,
// which clients' retry policies retry. Status
// messages are fixed texts: they never contain the token, the metadata or the
// authorization server's answer.
//
// # Limits
//
// The middleware's responders ([introspect.WithErrorResponder],
// [introspect.WithInactiveTokenResponder]) are HTTP-only and are not used.
// A refused call is reported as an HTTP refusal is
// ([introspect.Middleware.ReportRefusal]: [introspect.Hooks] Rejected or
// Canceled, Decided, and the logger), with the request that stands for the
// call ([Request]); the hooks of the check itself (CacheHit, IntrospectDone
// and the others) are called as for HTTP.
//
// With [introspect.WithOptionalToken], a call without a token goes on with no
// verdict on its context, unless its method has scope requirements.
package introspectgrpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/introspect-go/introspect"
)

// Interceptors authenticates gRPC calls. Make one with [New]; it is safe for
// concurrent use and immutable.
type Interceptors struct {
	mw     *introspect.Middleware
	checks map[string]introspect.Check // by full method name
	origin map[string]string           // by full method name: the option that set its check
	skip   func(ctx context.Context, fullMethod string) bool
}

// Option configures [New].
type Option func(*config)

type config struct {
	all  map[string][]string // WithMethodScopes
	any  map[string][]string // WithMethodAnyScopes
	skip func(ctx context.Context, fullMethod string) bool
	errs []error
}

// WithMethodScopes requires, for each full method name
// ("/package.Service/Method"), every one of its scopes
// ([introspect.AllScopes]); a call whose token lacks one is refused with
// codes.PermissionDenied. Methods without scope requirements need an active
// token only (or none, with [introspect.WithOptionalToken]).
//
// [New] fails if a name is not a full method name, or if a method has no
// scopes or a scope that is not an RFC 6749 scope token
// ([introspect.CheckScopes]: "" can never be granted, and "read write" is two
// scopes, which are listed apart). A method given again, here or in another
// WithMethodScopes, needs the scopes of both; a method given to
// [WithMethodAnyScopes] too is an error. [Interceptors.Validate] checks the
// names against a server's services. Default no scope requirements.
func WithMethodScopes(scopes map[string][]string) Option {
	return func(c *config) {
		for _, m := range checkRules(c, "WithMethodScopes", scopes) {
			if c.all == nil {
				c.all = make(map[string][]string, len(scopes))
			}
			c.all[m] = append(c.all[m], scopes[m]...)
		}
	}
}

// WithMethodAnyScopes requires, for each full method name
// ("/package.Service/Method"), at least one of its scopes
// ([introspect.AnyScope]); a call whose token has none of them is refused
// with codes.PermissionDenied.
//
// [New] fails for the names and scopes that [WithMethodScopes] refuses, and
// for a method given twice, here or in another WithMethodAnyScopes, or given
// to WithMethodScopes too. Default no scope requirements.
func WithMethodAnyScopes(scopes map[string][]string) Option {
	return func(c *config) {
		for _, m := range checkRules(c, "WithMethodAnyScopes", scopes) {
			if _, ok := c.any[m]; ok {
				c.errs = append(c.errs, fmt.Errorf("introspectgrpc: WithMethodAnyScopes: %q is given twice", m))
				continue
			}
			if c.any == nil {
				c.any = make(map[string][]string, len(scopes))
			}
			c.any[m] = slices.Clone(scopes[m])
		}
	}
}

// checkRules records in c.errs the problems of the rules given to option
// and returns, sorted, the methods whose rules are valid.
func checkRules(c *config, option string, scopes map[string][]string) []string {
	var valid []string
	for _, m := range slices.Sorted(maps.Keys(scopes)) {
		if !validMethod(m) {
			c.errs = append(c.errs, fmt.Errorf("introspectgrpc: %s: %q is not a full method name", option, m))
			continue
		}
		if err := introspect.CheckScopes(scopes[m]); err != nil {
			c.errs = append(c.errs, fmt.Errorf("introspectgrpc: %s: %q: %s", option, m, strings.TrimPrefix(err.Error(), "introspect: ")))
			continue
		}
		valid = append(valid, m)
	}
	return valid
}

// WithSkipper lets calls through without any check when skip returns true,
// for example for the health and reflection services: the authorization
// server is not asked, the scope requirements are not checked and the call
// has no verdict on its context. [New] fails for a nil skip. Default no call
// is skipped.
func WithSkipper(skip func(ctx context.Context, fullMethod string) bool) Option {
	return func(c *config) {
		if skip == nil {
			c.errs = append(c.errs, errors.New("introspectgrpc: WithSkipper: nil skipper"))
			return
		}
		c.skip = skip
	}
}

// New returns interceptors that authenticate every call with mw. It fails,
// naming every problem, if mw is nil or an option was given invalid values.
func New(mw *introspect.Middleware, opts ...Option) (*Interceptors, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if mw == nil {
		c.errs = append(c.errs, errors.New("introspectgrpc: nil middleware"))
	}
	for _, m := range slices.Sorted(maps.Keys(c.all)) {
		if _, ok := c.any[m]; ok {
			c.errs = append(c.errs, fmt.Errorf("introspectgrpc: %q is given to both WithMethodScopes and WithMethodAnyScopes", m))
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	n := len(c.all) + len(c.any)
	i := &Interceptors{mw: mw, skip: c.skip, checks: make(map[string]introspect.Check, n), origin: make(map[string]string, n)}
	for m, ss := range c.all {
		i.checks[m], i.origin[m] = introspect.AllScopes(ss...), "WithMethodScopes"
	}
	for m, ss := range c.any {
		i.checks[m], i.origin[m] = introspect.AnyScope(ss...), "WithMethodAnyScopes"
	}
	return i, nil
}

// Validate reports the scope requirements ([WithMethodScopes],
// [WithMethodAnyScopes]) that name a method s does not serve: a misspelled
// service or method would leave the method it meant with no requirement
// beyond an active token. The error names each such method, and whether its
// service is registered at all; nil means every rule names a method of s.
//
// Call it after every service is registered on s and before s.Serve, and do
// not serve if it fails:
//
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(auth.Unary()), grpc.ChainStreamInterceptor(auth.Stream()))
//	shoppb.RegisterOrdersServer(srv, orders)
//	if err := auth.Validate(srv); err != nil {
//		log.Fatal(err)
//	}
//
// The check is made once on the complete server rather than as each service
// is registered: a rule for a service that is never registered can only be
// caught once the last one is.
func (i *Interceptors) Validate(s *grpc.Server) error {
	if s == nil {
		return errors.New("introspectgrpc: Validate: nil server")
	}
	services := s.GetServiceInfo()
	var errs []error
	for _, m := range slices.Sorted(maps.Keys(i.checks)) {
		svc, method, _ := strings.Cut(m[1:], "/") // New checked the form
		info, ok := services[svc]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("introspectgrpc: %s: %q: the server has no service %s", i.origin[m], m, svc))
		case !slices.ContainsFunc(info.Methods, func(mi grpc.MethodInfo) bool { return mi.Name == method }):
			errs = append(errs, fmt.Errorf("introspectgrpc: %s: %q: service %s has no method %s", i.origin[m], m, svc, method))
		}
	}
	return errors.Join(errs...)
}

// Unary returns the unary server interceptor.
func (i *Interceptors) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := i.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor. The handler's
// stream.Context() carries the verdict.
//
// A stream is checked once, when it opens: a revocation, or an Evict, does
// not reach a stream already open. Its context ends when the token expires
// (its exp, plus the middleware's leeway): a handler that streams for
// longer must watch stream.Context().Done() and return. A handler that
// returns its context's error then ends the call with
// codes.Unauthenticated (any other error of its own goes as it is), and the
// client opens a new stream with a new token.
func (i *Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := i.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		ti, ok := introspect.FromContext(ctx)
		if !ok || ti.Expiry.IsZero() {
			return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
		}
		ctx, cancel := context.WithDeadlineCause(ctx, ti.Expiry.Add(i.mw.Leeway()), errStreamTokenExpired)
		defer cancel()
		err = handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
		if errors.Is(context.Cause(ctx), errStreamTokenExpired) && contextError(err) {
			return status.Error(codes.Unauthenticated, "the token expired during the stream")
		}
		return err
	}
}

// contextError reports whether err is a handler's report of its context's
// end: the context's error, or a status of DeadlineExceeded or Canceled.
// Any other error of the handler's is its own and goes as it is.
func contextError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	c := status.Code(err)
	return c == codes.DeadlineExceeded || c == codes.Canceled
}

// errStreamTokenExpired is the cause of a stream's context that ended at
// its token's expiry.
var errStreamTokenExpired = errors.New("introspectgrpc: the token expired during the stream")

// authenticate returns ctx with the verdict on it, or a status error.
func (i *Interceptors) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	if i.skip != nil && i.skip(ctx, fullMethod) {
		return ctx, nil
	}
	r := Request(ctx, fullMethod)
	ti, err := i.mw.Authenticate(r)
	if err != nil && i.mw.AllowsAnonymous(err) {
		ti, err = nil, nil
	}
	if err == nil {
		if check, ok := i.checks[fullMethod]; ok {
			err = introspect.Authorize(ti, check)
		}
	}
	if err != nil {
		i.mw.ReportRefusal(r, ti, err)
		if cerr := ctx.Err(); cerr != nil && introspect.StatusCode(err) == http.StatusServiceUnavailable {
			// No verdict because the call ended first: the client's
			// cancel or deadline, not an outage to retry.
			return nil, status.FromContextError(cerr).Err()
		}
		return nil, Error(err)
	}
	if ti == nil {
		return ctx, nil
	}
	return introspect.NewContext(ctx, ti), nil
}

// Request builds the *http.Request that stands for a call in the middleware
// (see the package documentation): ctx is the call's incoming context.
func Request(ctx context.Context, fullMethod string) *http.Request {
	md, _ := metadata.FromIncomingContext(ctx)
	h := make(http.Header, len(md))
	host := ""
	for k, vs := range md {
		switch {
		case k == ":authority":
			if len(vs) > 0 {
				host = vs[0]
			}
		case strings.HasPrefix(k, ":"), strings.HasSuffix(k, "-bin"):
		default:
			// The metadata's slices are shared, not copied: the request is
			// read-only.
			h[textproto.CanonicalMIMEHeaderKey(k)] = vs
		}
	}
	r := (&http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: fullMethod},
		RequestURI: fullMethod,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       host,
		Body:       http.NoBody,
	}).WithContext(ctx)
	if p, ok := peer.FromContext(ctx); ok {
		switch {
		case p.Addr == nil:
		case p.Addr.Network() == "unix":
			// A unix peer's address is the path it bound its end to, which
			// it chooses: never taken for an IP address. The listener's
			// address tells the middleware it came over a unix socket, as
			// net/http's does.
			if p.LocalAddr != nil {
				r = r.WithContext(context.WithValue(ctx, http.LocalAddrContextKey, p.LocalAddr))
			}
		default:
			r.RemoteAddr = p.Addr.String()
		}
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			st := info.State
			r.TLS = &st
		}
	}
	return r
}

// Error turns an error of package introspect (from
// [introspect.Middleware.Authenticate] or [introspect.Authorize]) into a gRPC
// status error with the code of the package documentation and a fixed
// message. Handlers that make their own checks can return it. A nil err gives
// nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	switch introspect.StatusCode(err) {
	case http.StatusBadRequest:
		return status.Error(codes.InvalidArgument, "introspect: malformed authorization metadata")
	case http.StatusUnauthorized:
		switch introspect.ErrorCode(err) {
		case "invalid_token":
			return status.Error(codes.Unauthenticated, "introspect: the access token is not valid")
		case "invalid_dpop_proof", "use_dpop_nonce":
			return status.Error(codes.Unauthenticated, "introspect: the DPoP proof is not valid")
		}
		return status.Error(codes.Unauthenticated, "introspect: no bearer token")
	case http.StatusForbidden:
		return status.Error(codes.PermissionDenied, "introspect: the access token does not grant access to this method")
	}
	if errors.Is(err, introspect.ErrRequestCanceled) {
		return status.Error(codes.Canceled, "introspect: the call was canceled before its token was verified")
	}
	return status.Error(codes.Unavailable, "introspect: the token cannot be verified now")
}

// serverStream is a grpc.ServerStream with another context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

func validMethod(m string) bool {
	svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
	return strings.HasPrefix(m, "/") && ok && svc != "" && method != "" && !strings.Contains(method, "/")
}
