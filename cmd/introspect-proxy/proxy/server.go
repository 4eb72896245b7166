// Package proxy is introspect-proxy assembled from its configuration: the
// reverse proxy or the forward-auth endpoint in front of the introspection
// middleware, the identity headers, the per-path scope rules, the access
// log, the operations endpoints (/healthz, /readyz, /metrics) and the
// servers with their graceful shutdown.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/cmd/introspect-proxy/config"
)

// Server is the proxy of one configuration. Build it with [New]; it is
// safe for concurrent use.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	mw       *introspect.Middleware
	rules    rules
	identity *identity
	tel      *telemetry
	rdb      redis.UniversalClient // nil without Redis
	handler  http.Handler
	ops      http.Handler
	closers  []func() error

	draining atomic.Bool // set when the shutdown begins: /readyz fails
	// upgraded counts the requests whose connection was taken over (a
	// websocket): http.Server's Shutdown neither waits for them nor closes
	// them.
	upgraded        upgrades
	warnedUntrusted atomic.Bool // a forward-auth request from an untrusted address was logged at warn level
	warnedRefused   atomic.Bool // a forward-auth request from an untrusted address was refused, and logged
}

// New assembles the proxy of cfg, which [config.Load] checked: the
// middleware with its cache and hooks, the handlers, the metrics. It opens
// no listener. With -issuer, discovery starts in the background
// (-eager-discovery waits for it and fails with it); with Redis and an
// in-memory tier, the subscription to evictions starts. Close releases
// what it holds.
func New(cfg *config.Config, logger *slog.Logger) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("no configuration")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger, rules: newRules(cfg.ScopeRules), identity: newIdentity(cfg, logger)}
	tel, err := newTelemetry()
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s.tel = tel
	s.closers = append(s.closers, tel.shutdown)
	mw, err := s.newMiddleware()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.mw = mw
	s.closers = append(s.closers, mw.Close)
	var serve serveFunc
	if cfg.ForwardAuth {
		serve = s.forwardAuth
	} else {
		serve = serveWith(s.requirePath(mw.Handler(http.HandlerFunc(s.authorizeAndProxy(s.newReverseProxy())))))
	}
	s.handler = s.observe(serve)
	s.ops = s.newOpsHandler()
	return s, nil
}

// Handler is the proxy's handler: the reverse proxy or the forward-auth
// endpoint, behind the access log and the request metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler serves GET /healthz, /readyz and /metrics.
func (s *Server) OpsHandler() http.Handler { return s.ops }

// Middleware is the introspection middleware of the proxy.
func (s *Server) Middleware() *introspect.Middleware { return s.mw }

// Close stops the middleware's background work, closes the Redis client
// and flushes the metrics. It is safe to call more than once.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// opsTimeouts bound the requests to the operations endpoints.
const (
	opsReadTimeout  = 10 * time.Second
	opsWriteTimeout = 30 * time.Second
	// opsMaxHeaderBytes bounds the headers of a request to the operations
	// endpoints, which read none.
	opsMaxHeaderBytes = 16 << 10
)

// Serve serves [Server.Handler] on ln (with TLS when the configuration has
// a certificate) and [Server.OpsHandler] on ops (nil: none) until ctx is
// done or a server fails. Then it shuts down gracefully: /readyz fails at
// once, the proxy goes on serving for -shutdown-delay, then stops
// accepting connections and gives the requests in flight, upgraded
// connections (websockets) included, -shutdown-timeout to finish before
// closing what is left. It returns nil after a shutdown
// that ctx asked for and every request finished in time.
func (s *Server) Serve(ctx context.Context, ln, ops net.Listener) error {
	cfg := s.cfg
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	// The context of every request: cancelled when the shutdown timeout
	// ends with upgraded connections still open, which closes them (the
	// reverse proxy closes both ends of an upgrade whose request ends).
	base, closeUpgraded := context.WithCancel(context.Background())
	defer closeUpgraded()
	main := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          errorLog,
	}
	if cfg.TLSCertificate != nil {
		files := newTLSFiles(cfg, s.log)
		// ServeTLS puts net/http's HTTP/2 server in TLSNextProto before it
		// accepts a connection, unless HTTP/2 is off (GODEBUG, a build
		// tag): the handshakes announce h2 only when it did.
		main.TLSConfig = files.config(func() bool {
			_, ok := main.TLSNextProto["h2"]
			return ok
		})
		go files.watch(base)
	}
	servers := []*http.Server{main}
	failed := make(chan error, 2)
	go func() {
		var err error
		if main.TLSConfig != nil {
			err = main.ServeTLS(ln, "", "")
		} else {
			err = main.Serve(ln)
		}
		failed <- err
	}()
	if ops != nil {
		opsSrv := &http.Server{
			Handler:           s.ops,
			ReadHeaderTimeout: opsReadTimeout,
			MaxHeaderBytes:    opsMaxHeaderBytes,
			ReadTimeout:       opsReadTimeout,
			WriteTimeout:      opsWriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			ErrorLog:          errorLog,
		}
		servers = append(servers, opsSrv)
		go func() { failed <- opsSrv.Serve(ops) }()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "delay", cfg.ShutdownDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	case serveErr = <-failed:
		s.log.Error("a server failed: shutting down", "error", serveErr.Error())
	}
	s.draining.Store(true)
	if serveErr == nil && cfg.ShutdownDelay > 0 {
		time.Sleep(cfg.ShutdownDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	errs := []error{serveErr}
	// The proxy first, so that /readyz answers "not ready" while it drains.
	for i, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("requests still in flight at the end of the shutdown timeout: closing their connections")
			errs = append(errs, fmt.Errorf("shutdown: %w", err), srv.Close())
		}
		if i == 0 {
			errs = append(errs, s.drainUpgraded(shutdownCtx, closeUpgraded))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// drainUpgraded waits for the upgraded connections (websockets) to end
// until ctx ends, then closes those left and waits for their requests to
// return, a few seconds at most.
func (s *Server) drainUpgraded(ctx context.Context, closeAll context.CancelFunc) error {
	done := s.upgraded.idle()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.log.Warn("upgraded connections still open at the end of the shutdown timeout: closing them")
	closeAll()
	s.upgraded.closeAll()
	select {
	case <-done:
	case <-time.After(upgradeCloseWait):
		s.log.Warn("upgraded connections did not end after being closed")
	}
	return errors.New("shutdown: upgraded connections were still open at the end of the shutdown timeout")
}

// upgrades counts the requests whose connection was taken over, and holds
// those connections, for the shutdown to wait for and then close.
type upgrades struct {
	mu      sync.Mutex
	n       int
	conns   map[net.Conn]struct{}
	zero    chan struct{} // closed when n falls to 0; nil until idle asks
	closing bool          // closeAll ran: a connection held later is closed at once
}

// add counts a request whose connection is being taken over; hold then
// gives its connection.
func (u *upgrades) add() {
	u.mu.Lock()
	u.n++
	u.mu.Unlock()
}

func (u *upgrades) hold(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		closeNow(c)
		return
	}
	if u.conns == nil {
		u.conns = make(map[net.Conn]struct{})
	}
	u.conns[c] = struct{}{}
}

// done ends the count of a request, and lets go of its connection (nil
// when it was never taken over).
func (u *upgrades) done(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.conns, c)
	if u.n--; u.n == 0 && u.zero != nil {
		close(u.zero)
		u.zero = nil
	}
}

// closeAll closes the connections held: the reverse proxy's copies in
// both directions then end, whichever side had stopped.
func (u *upgrades) closeAll() {
	u.mu.Lock()
	u.closing = true
	conns := make([]net.Conn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	for _, c := range conns {
		closeNow(c)
	}
}

// closeNow closes c without waiting on its peer: a TLS connection's own
// Close sends a close_notify first, under the lock of its writes, which a
// client that reads nothing can hold for good (the reply to each of its
// TLS 1.3 key updates is written under it, with no deadline once the
// connection is taken over). The connection beneath is closed instead:
// every read and write of the TLS connection then ends.
func closeNow(c net.Conn) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	_ = c.Close()
}

// idle returns a channel closed once no request is upgraded.
func (u *upgrades) idle() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if u.zero == nil {
		u.zero = make(chan struct{})
	}
	return u.zero
}

// upgradeCloseWait bounds the wait for the upgraded requests to return
// once their connections are closed.
const upgradeCloseWait = 5 * time.Second

// String names the server by its mode and upstream; it holds no secret.
func (s *Server) String() string {
	if s == nil || s.cfg == nil {
		return "introspect-proxy server <nil>"
	}
	if s.cfg.Upstream != nil {
		u := *s.cfg.Upstream
		u.User = nil
		return "introspect-proxy server (reverse-proxy to " + u.String() + ")"
	}
	return "introspect-proxy server (forward-auth)"
}

// GoString is String.
func (s *Server) GoString() string { return s.String() }

// Format prints String under every verb.
func (s *Server) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue is String.
func (s *Server) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes String as a JSON string.
func (s *Server) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// trusted reports whether r comes from a trusted proxy: it came over a unix
// socket and -trusted-proxies holds unix, or over TCP from a peer address
// (r.RemoteAddr, "ip:port") in -trusted-proxies.
func (s *Server) trusted(r *http.Request) bool {
	// The listener first: over a unix socket, RemoteAddr is the path the
	// peer bound its end to, which it chooses ("127.0.0.1:1" included).
	if overUnixSocket(r) {
		return s.cfg.TrustUnixSocket
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// overUnixSocket reports whether r came over a unix socket: net/http puts
// the listener's address in the request's context.
func overUnixSocket(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a != nil && a.Network() == "unix"
}
