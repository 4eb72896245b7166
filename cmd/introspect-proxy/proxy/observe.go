package proxy

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/introspect-go/introspect"
)

// The outcomes of requests, in the access log and the metrics: the
// middleware's decisions (named as the otel module names them) and what
// happens after.
const (
	outcomeAllowed           = "allowed"
	outcomeAnonymous         = "anonymous"
	outcomeMissing           = "missing"
	outcomeMalformed         = "malformed"
	outcomeInactive          = "inactive"
	outcomeInsufficientScope = "insufficient_scope"
	outcomeUnavailable       = "unavailable"
	outcomeCanceled          = "canceled"
	outcomeUpstreamError     = "upstream_error"
)

// record is what the access log learns of a request while it is served.
// Only the request's own goroutine writes it.
type record struct {
	outcome    string
	origMethod string // forward-auth: the original request's
	origPath   string
}

func (r *record) setOutcome(o string) {
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
func outcomeOf(d introspect.Decision) string {
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

// observe times each request, records it in the request metrics and, with
// -access-log, logs it: method, path without query, status, duration,
// outcome, bytes, peer; in forward-auth mode the original method and path
// too. Never a header, a token or a query.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &record{}
		rw := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
		elapsed := time.Since(start)
		status := rw.statusCode()
		if rec.outcome == "" {
			rec.outcome = outcomeUnavailable // a response the middleware did not decide: a panic recovered below us, say
		}
		s.tel.requests.Record(r.Context(), elapsed.Seconds(), metric.WithAttributeSet(attribute.NewSet(
			attribute.String("introspect.outcome", rec.outcome),
			attribute.Int("http.response.status_code", status),
		)))
		if !s.cfg.AccessLog {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("outcome", rec.outcome),
			slog.Int64("bytes", rw.bytes),
			slog.String("remote", r.RemoteAddr),
		}
		if rec.origMethod != "" {
			attrs = append(attrs, slog.String("original_method", rec.origMethod), slog.String("original_path", rec.origPath))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// responseRecorder notes the status and size of a response. It passes
// Flush, Hijack and the rest of http.ResponseController through.
type responseRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

// WriteHeader notes the final status (1xx answers other than 101 are not
// final).
func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes of the body.
func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the response, when the connection can.
func (w *responseRecorder) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes the connection over for a protocol upgrade; the reverse
// proxy writes the 101 answer on it itself.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
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
