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
//	auth, err := introspectgrpc.New(mw, introspectgrpc.WithMethodScopes(map[string][]string{
//		"/shop.v1.Orders/Cancel": {"orders:write"},
//	}))
//	...
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(auth.Unary()),
//		grpc.ChainStreamInterceptor(auth.Stream()),
//	)
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
// # Status codes
//
// The HTTP statuses of [introspect.StatusCode] map to: 400 →
// codes.InvalidArgument (malformed authorization metadata), 401 →
// codes.Unauthenticated (no token, or a token that is not active), 403 →
// codes.PermissionDenied (a scope requirement failed), 503 →
// codes.Unavailable (no verdict was possible; the call fails closed). Status
// messages are fixed texts: they never contain the token, the metadata or the
// authorization server's answer.
//
// # Limits
//
// The middleware's responders ([introspect.WithErrorResponder],
// [introspect.WithInactiveTokenResponder]) are HTTP-only and are not used.
// With [introspect.WithOptionalToken], a call without a token goes on with no
// verdict on its context, unless its method has scope requirements.
package introspectgrpc

import (
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
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
	skip   func(ctx context.Context, fullMethod string) bool
}

// Option configures [New].
type Option func(*config)

type config struct {
	scopes map[string][]string
	skip   func(ctx context.Context, fullMethod string) bool
	errs   []error
}

// WithMethodScopes requires, for each full method name
// ("/package.Service/Method"), every one of its scopes
// ([introspect.AllScopes]); a call whose token lacks one is refused with
// codes.PermissionDenied. Methods not in the map need an active token only.
// Default no scope requirements.
func WithMethodScopes(scopes map[string][]string) Option {
	return func(c *config) {
		for m, ss := range scopes {
			if !validMethod(m) {
				c.errs = append(c.errs, errors.New("introspectgrpc: WithMethodScopes: "+strconv.Quote(m)+" is not a full method name"))
			}
			if len(ss) == 0 {
				c.errs = append(c.errs, errors.New("introspectgrpc: WithMethodScopes: no scopes for "+strconv.Quote(m)))
			}
			for _, s := range ss {
				if s == "" || strings.ContainsAny(s, " \t\r\n") {
					c.errs = append(c.errs, errors.New("introspectgrpc: WithMethodScopes: invalid scope for "+strconv.Quote(m)))
				}
			}
		}
		if c.scopes == nil {
			c.scopes = make(map[string][]string, len(scopes))
		}
		for m, ss := range scopes {
			c.scopes[m] = append(c.scopes[m], ss...)
		}
	}
}

// WithSkipper lets calls through without any check when skip returns true,
// for example for the health and reflection services. Default no call is
// skipped.
func WithSkipper(skip func(ctx context.Context, fullMethod string) bool) Option {
	return func(c *config) {
		if skip == nil {
			c.errs = append(c.errs, errors.New("introspectgrpc: WithSkipper: nil skipper"))
			return
		}
		c.skip = skip
	}
}

// New returns interceptors that authenticate every call with mw.
func New(mw *introspect.Middleware, opts ...Option) (*Interceptors, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if mw == nil {
		c.errs = append(c.errs, errors.New("introspectgrpc: nil middleware"))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	i := &Interceptors{mw: mw, skip: c.skip, checks: make(map[string]introspect.Check, len(c.scopes))}
	for m, ss := range c.scopes {
		i.checks[m] = introspect.AllScopes(ss...)
	}
	return i, nil
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
func (i *Interceptors) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := i.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
	}
}

// authenticate returns ctx with the verdict on it, or a status error.
func (i *Interceptors) authenticate(ctx context.Context, fullMethod string) (context.Context, error) {
	if i.skip != nil && i.skip(ctx, fullMethod) {
		return ctx, nil
	}
	ti, err := i.mw.Authenticate(Request(ctx, fullMethod))
	if err != nil && i.mw.AllowsAnonymous(err) {
		ti, err = nil, nil
	}
	if err == nil {
		if check, ok := i.checks[fullMethod]; ok {
			err = introspect.Authorize(ti, check)
		}
	}
	if err != nil {
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
		if p.Addr != nil {
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
		if introspect.ErrorCode(err) == "invalid_token" {
			return status.Error(codes.Unauthenticated, "introspect: the access token is not valid")
		}
		return status.Error(codes.Unauthenticated, "introspect: no bearer token")
	case http.StatusForbidden:
		return status.Error(codes.PermissionDenied, "introspect: the access token does not grant access to this method")
	default:
		return status.Error(codes.Unavailable, "introspect: the token cannot be verified now")
	}
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
