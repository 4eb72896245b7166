package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/introspect-go/introspect"
)

// outcome is what became of a request, in the access log and the metrics:
// the middleware's decisions (named as the otel module names them) and
// what happens after.
type outcome uint8

// The outcomes, outcomeUnset while none is known.
const (
	outcomeUnset outcome = iota
	outcomeAllowed
	outcomeAnonymous
	outcomeMissing
	outcomeMalformed
	outcomeInactive
	outcomeInsufficientScope
	outcomeUnavailable
	outcomeCanceled
	outcomeUpstreamError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	outcomeUnset:             "",
	outcomeAllowed:           "allowed",
	outcomeAnonymous:         "anonymous",
	outcomeMissing:           "missing",
	outcomeMalformed:         "malformed",
	outcomeInactive:          "inactive",
	outcomeInsufficientScope: "insufficient_scope",
	outcomeUnavailable:       "unavailable",
	outcomeCanceled:          "canceled",
	outcomeUpstreamError:     "upstream_error",
}

func (o outcome) String() string { return outcomeNames[o] }

// record is what the access log learns of a request while it is served.
// Only the request's own goroutine writes it.
type record struct {
	outcome    outcome
	origMethod string // forward-auth: the original request's
	origPath   string
	upBody     *bodyWatch // the body of a request sent to the upstream, nil before
}

// bodyWatch notes when a body has been read to its end, by the transport's
// write loop (another goroutine than the handler's).
type bodyWatch struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// bodyRead reports whether the request's body was read to its end.
func (r *record) bodyRead() bool { return r != nil && r.upBody != nil && r.upBody.eof.Load() }

func (r *record) setOutcome(o outcome) {
	if r != nil {
		r.outcome = o
	}
}

type recordKey struct{}

// recordOf returns the record of the request of ctx, nil outside observe.
func recordOf(ctx context.Context) *record {
	r, _ := ctx.Value(recordKey{}).(*record)
	return r
}

// recordHooks set the outcome of each decision on the request's record.
// A request that a rule refuses after its token was accepted is decided
// twice: the refusal, which comes last, is its outcome.
func (s *Server) recordHooks() *introspect.Hooks {
	return &introspect.Hooks{
		Decided: func(r *http.Request, d introspect.Decision) {
			recordOf(r.Context()).setOutcome(outcomeOf(d))
		},
		Canceled: func(ctx context.Context, _ error) {
			recordOf(ctx).setOutcome(outcomeCanceled)
		},
	}
}

// outcomeOf classifies a decision.
func outcomeOf(d introspect.Decision) outcome {
	switch {
	case d.Allowed && d.Introspection == nil:
		return outcomeAnonymous
	case d.Allowed:
		return outcomeAllowed
	case errors.Is(d.Err, introspect.ErrRequestCanceled):
		return outcomeCanceled
	case errors.Is(d.Err, introspect.ErrMissingToken):
		return outcomeMissing
	case errors.Is(d.Err, introspect.ErrInvalidRequest):
		return outcomeMalformed
	case errors.Is(d.Err, introspect.ErrInsufficientScope):
		return outcomeInsufficientScope
	case errors.Is(d.Err, introspect.ErrInactiveToken):
		return outcomeInactive
	}
	return outcomeUnavailable
}

// observed is the state observe keeps for a request: its record and the
// writer noting the response, in one allocation.
type observed struct {
	rec record
	rw  responseRecorder
}

// serveFunc serves a request whose record is on ctx, which r does not
// carry yet: a handler that copies r anyway (forward-auth, for the
// original request) puts ctx on its copy, so that a request is copied once.
type serveFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request)

// serveWith is a serveFunc of h: r with ctx, to h.
func serveWith(h http.Handler) serveFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(ctx))
	}
}

// observe times each request, records it in the request metrics and, with
// -access-log, logs it: method, path without query, status, duration,
// outcome, bytes, peer; in forward-auth mode the original method and path
// too. Never a header, a token or a query. It runs on every request, so it
// allocates little: the metric's attributes are made once for each outcome
// and status, and the log line goes to the logger's handler directly.
func (s *Server) observe(next serveFunc) http.Handler {
	access := s.log.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// HTTP/2 answers without reading the rest of a body: only HTTP/1
		// connections need ending (and Connection: close would end an
		// HTTP/2 connection with all its streams).
		o := &observed{rw: responseRecorder{ResponseWriter: w, body: r.ContentLength != 0 && r.ProtoMajor == 1, http10: !r.ProtoAtLeast(1, 1)}}
		rec, rw := &o.rec, &o.rw
		rw.rec, rw.upgraded = rec, &s.upgraded
		defer rw.upgradeEnded() // deferred: a panic after an upgrade still ends it
		defer rw.endUnreadBody(r.Body)
		next(context.WithValue(r.Context(), recordKey{}, rec), rw, r)
		end := time.Now()
		elapsed := end.Sub(start)
		status := rw.statusCode()
		if rec.outcome == outcomeUnset {
			rec.outcome = outcomeUnavailable // a response the middleware did not decide: a panic recovered below us, say
		}
		s.tel.recordRequest(r.Context(), elapsed, rec.outcome, status)
		if !s.cfg.AccessLog || !access.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		// The handler without the Logger: no caller's PC to look up (the
		// handler does not print it).
		line := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		line.AddAttrs(
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("outcome", rec.outcome.String()),
			slog.Int64("bytes", rw.bytes),
			slog.String("remote", r.RemoteAddr),
		)
		if rec.origMethod != "" {
			line.AddAttrs(slog.String("original_method", rec.origMethod), slog.String("original_path", rec.origPath))
		}
		_ = access.Handle(r.Context(), line)
	})
}

// responseRecorder notes the status and size of a response. It passes
// Flush, Hijack and the rest of http.ResponseController through.
type responseRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
	body     bool // the HTTP/1 request has a body (a length, or chunked)
	http10   bool // an HTTP/1.0 request: no 1xx answer
	rec      *record
	upgraded *upgrades // holds the connection while it is taken over
	conn     net.Conn  // the connection taken over, nil before
}

// WriteHeader notes the final status (1xx answers other than 101 are not
// final, and an HTTP/1.0 client, which would take one for the final answer,
// gets none: an upstream's 103 Early Hints, say). The body of an HTTP/1
// request not read to its end is no longer read from the connection: at
// once when nothing reads it (a refusal, forward-auth), else when the
// handler returns (endUnreadBody), once the upstream's answer is copied.
// net/http's server reads what is left of a body before it answers and
// again after the handler, with no deadline when -read-timeout is 0: a
// client that announces a body and never sends it would hold the
// connection and a goroutine for good. When nothing reads the body,
// net/http still takes what of it has already come, and keeps the
// connection when that is all of it (forward-auth of Envoy's
// with_request_body or Traefik's forwardBody); else it ends it. A body on
// its way to the upstream ends the connection: its read stops later.
func (w *responseRecorder) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols && w.http10 {
		return
	}
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		if code != http.StatusSwitchingProtocols && w.body && !w.rec.bodyRead() {
			if w.rec == nil || w.rec.upBody == nil {
				_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Now())
			} else {
				w.Header().Set("Connection", "close")
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes of the body.
func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the response, when the connection can; before any write,
// it sends the header of a 200, as net/http does.
func (w *responseRecorder) Flush() {
	if w.status == 0 && !w.hijacked {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes the connection over for a protocol upgrade; the reverse
// proxy writes the 101 answer on it itself.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	// Counted before the server lets go of the connection: a shutdown
	// always finds it, tracked by the server or counted here.
	if w.upgraded != nil {
		w.upgraded.add()
	}
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		if w.upgraded != nil {
			w.upgraded.done(nil)
		}
		return c, rw, err
	}
	w.hijacked, w.conn = true, c
	if w.upgraded != nil {
		w.upgraded.hold(c)
	}
	return c, rw, err
}

// upgradeEnded ends the count of a request whose connection was taken
// over, when its handler returns.
func (w *responseRecorder) upgradeEnded() {
	if w.hijacked && w.upgraded != nil {
		w.upgraded.done(w.conn)
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusCode is the status the client got: 101 for a connection taken
// over, 200 when the handler wrote nothing.
func (w *responseRecorder) statusCode() int {
	switch {
	case w.status != 0:
		return w.status
	case w.hijacked:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}

// endUnreadBody stops reading a body not read to its end when the handler
// returns (or panics): net/http would read the rest, without deadline.
func (w *responseRecorder) endUnreadBody(body io.Closer) {
	if w.body && !w.hijacked && !w.rec.bodyRead() {
		_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Now())
		// Close the body now, under the deadline: it waits for a read in
		// flight (the transport's) to end, and no read reaches the
		// connection after, so net/http's abortPendingRead finds none and
		// does not lift the deadline before its own Close reads the rest.
		if body != nil {
			_ = body.Close()
		}
	}
}
