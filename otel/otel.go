package introspectotel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/introspect-go/introspect"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// module's import path.
const ScopeName = "github.com/introspect-go/introspect/otel"

// The names of the spans.
const (
	// SpanIntrospection is the span of a call to the introspection
	// endpoint.
	SpanIntrospection = "introspect.introspection"
	// SpanDiscovery is the span of a fetch of the authorization server's
	// metadata or keys.
	SpanDiscovery = "introspect.discovery"
)

// The attributes of the metrics and spans. Each has a small, fixed set of
// values, except server.address (one per authorization server), which is
// set only with [WithEndpointHostAttribute].
const (
	// OutcomeKey is the decision on a request: "allowed", "anonymous" (let
	// through without a token, [introspect.WithOptionalToken]), "missing",
	// "malformed", "inactive", "insufficient_scope", "unavailable" or
	// "canceled" (the client went away before a verdict).
	OutcomeKey = attribute.Key("introspect.outcome")
	// CacheResultKey is the result of a cache lookup: "hit" (an active
	// verdict), "negative_hit" (an inactive one) or "miss".
	CacheResultKey = attribute.Key("introspect.cache.result")
	// CacheOperationKey is the cache operation that failed: "get", "set" or
	// "delete".
	CacheOperationKey = attribute.Key("introspect.cache.operation")
	// ResultKey is how a call ended: "active", "inactive" or "error" for a
	// call to the introspection endpoint, "ok" or "error" for a fetch of a
	// discovery document.
	ResultKey = attribute.Key("introspect.result")
	// DocumentKey is the discovery document fetched: "metadata" or "jwks".
	DocumentKey = attribute.Key("introspect.discovery.document")
)

// The metric bucket boundaries of the duration histograms, in seconds: 100
// µs to 5 s.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Option configures [New].
type Option func(*config)

type config struct {
	mp       metric.MeterProvider
	tp       trace.TracerProvider
	hostAttr bool
	errs     []error
}

// WithMeterProvider sets the meter provider the instruments are created
// with. Default: the global one, otel.GetMeterProvider(), read by New.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.errs = append(c.errs, errors.New("introspectotel: WithMeterProvider: nil meter provider"))
			return
		}
		c.mp = mp
	}
}

// WithTracerProvider sets the tracer provider the spans are started with.
// Default: the global one, otel.GetTracerProvider(), read by New.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.errs = append(c.errs, errors.New("introspectotel: WithTracerProvider: nil tracer provider"))
			return
		}
		c.tp = tp
	}
}

// WithEndpointHostAttribute adds the host of the introspection endpoint as
// server.address to the introspection metrics and spans, to tell
// authorization servers apart (a [introspect.ClientStore] may use several).
// Each host is one more series per attribute combination. Default off.
func WithEndpointHostAttribute() Option {
	return func(c *config) { c.hostAttr = true }
}

// New returns hooks that record metrics and spans of a middleware, for
// [introspect.WithHooks] (with [introspect.Chain] to add hooks of your
// own). The instruments are created once, here. The metrics and spans never
// carry a token, a subject, a credential or a URL: their attributes have a
// small, fixed set of values, and the endpoint's host only with
// [WithEndpointHostAttribute].
func New(opts ...Option) (*introspect.Hooks, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("introspectotel: nil option"))
			continue
		}
		o(&c)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	in, err := newInstruments(c)
	if err != nil {
		return nil, err
	}
	return &introspect.Hooks{
		CacheHit:       in.cacheHit,
		CacheMiss:      in.cacheMiss,
		Coalesced:      in.coalesced,
		StaleServed:    in.staleServed,
		CacheError:     in.cacheError,
		RefreshAhead:   in.refreshAhead,
		Canceled:       in.canceled,
		Decided:        in.decided,
		Panicked:       in.panicked,
		BulkheadFull:   in.bulkheadFull,
		StartSpan:      in.startSpan,
		IntrospectDone: in.introspectDone,
		DiscoveryDone:  in.discoveryDone,
	}, nil
}

// Outcomes of a decision, in the order of outcomeNames.
const (
	outAllowed = iota
	outAnonymous
	outMissing
	outMalformed
	outInactive
	outInsufficientScope
	outUnavailable
	outCanceled
	outcomes
)

var outcomeNames = [outcomes]string{"allowed", "anonymous", "missing", "malformed", "inactive", "insufficient_scope", "unavailable", "canceled"}

// instruments are the hooks' state: the instruments and the measurement
// options of the fixed attribute sets, made once so that the request path
// allocates nothing.
type instruments struct {
	tracer   trace.Tracer
	hostAttr bool

	decisions        metric.Int64Counter
	lookups          metric.Int64Counter
	staleCounter     metric.Int64Counter
	refreshes        metric.Int64Counter
	cacheErrors      metric.Int64Counter
	coalescedCounter metric.Int64Counter
	callDuration     metric.Float64Histogram
	inFlight         metric.Int64UpDownCounter
	bulkhead         metric.Int64Counter
	fetchDuration    metric.Float64Histogram
	panics           metric.Int64Counter

	outcome   [outcomes][]metric.AddOption
	outcomeKV [outcomes]attribute.KeyValue
	hit       []metric.AddOption
	negHit    []metric.AddOption
	miss      []metric.AddOption
	cacheOp   map[string][]metric.AddOption
}

func newInstruments(c config) (*instruments, error) {
	m := c.mp.Meter(ScopeName)
	in := &instruments{tracer: c.tp.Tracer(ScopeName), hostAttr: c.hostAttr}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	in.decisions = counter("introspect.decisions", "{request}",
		"Decisions of the middleware on requests, by outcome.")
	in.lookups = counter("introspect.cache.lookups", "{lookup}",
		"Lookups of a verdict in the cache, by result.")
	in.staleCounter = counter("introspect.cache.stale_served", "{request}",
		"Requests answered from a stale cached verdict while the authorization server failed, by the failure's error type.")
	in.refreshes = counter("introspect.cache.refresh_ahead", "{refresh}",
		"Background refreshes of cached verdicts about to expire.")
	in.cacheErrors = counter("introspect.cache.errors", "{error}",
		"Failed cache operations, by operation.")
	in.coalescedCounter = counter("introspect.introspection.coalesced", "{request}",
		"Requests that joined a call to the authorization server another request had started.")
	in.callDuration = histogram("introspect.introspection.duration",
		"Duration of the calls to the introspection endpoint, by result and error type.")
	var err error
	in.inFlight, err = m.Int64UpDownCounter("introspect.introspection.in_flight", metric.WithUnit("{call}"),
		metric.WithDescription("Calls to the introspection endpoint in flight."))
	errs = append(errs, err)
	in.bulkhead = counter("introspect.bulkhead.rejections", "{call}",
		"Calls to the authorization server not made because the calls in flight filled the bulkhead until the call's deadline.")
	in.fetchDuration = histogram("introspect.discovery.duration",
		"Duration of the fetches of the authorization server's metadata and keys, by document, result and error type.")
	in.panics = counter("introspect.panics", "{panic}",
		"Panics of callbacks recovered during calls to the authorization server and fetches of its documents.")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("introspectotel: creating the instruments: %w", err)
	}

	add := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	for i, name := range outcomeNames {
		in.outcomeKV[i] = OutcomeKey.String(name)
		in.outcome[i] = add(in.outcomeKV[i])
	}
	in.hit = add(CacheResultKey.String("hit"))
	in.negHit = add(CacheResultKey.String("negative_hit"))
	in.miss = add(CacheResultKey.String("miss"))
	in.cacheOp = map[string][]metric.AddOption{}
	for _, op := range []string{"get", "set", "delete"} {
		in.cacheOp[op] = add(CacheOperationKey.String(op))
	}
	return in, nil
}

func (in *instruments) cacheHit(ctx context.Context, negative bool) {
	if negative {
		in.lookups.Add(ctx, 1, in.negHit...)
		return
	}
	in.lookups.Add(ctx, 1, in.hit...)
}

func (in *instruments) cacheMiss(ctx context.Context) { in.lookups.Add(ctx, 1, in.miss...) }

func (in *instruments) coalesced(ctx context.Context) { in.coalescedCounter.Add(ctx, 1) }

func (in *instruments) staleServed(ctx context.Context, err error) {
	in.staleCounter.Add(ctx, 1, metric.WithAttributes(semconv.ErrorTypeKey.String(errorType(err, false))))
}

func (in *instruments) cacheError(ctx context.Context, op string, _ error) {
	opts, ok := in.cacheOp[op]
	if !ok {
		opts = []metric.AddOption{metric.WithAttributes(CacheOperationKey.String(op))}
	}
	in.cacheErrors.Add(ctx, 1, opts...)
}

func (in *instruments) refreshAhead(ctx context.Context) { in.refreshes.Add(ctx, 1) }

func (in *instruments) bulkheadFull(ctx context.Context) { in.bulkhead.Add(ctx, 1) }

func (in *instruments) panicked(ctx context.Context, _ any, _ []byte) { in.panics.Add(ctx, 1) }

func (in *instruments) canceled(ctx context.Context, _ error) { in.decide(ctx, outCanceled) }

func (in *instruments) decided(r *http.Request, d introspect.Decision) {
	in.decide(r.Context(), outcomeOf(d))
}

// decide counts a decision and sets it on the request's span, if recording.
func (in *instruments) decide(ctx context.Context, o int) {
	in.decisions.Add(ctx, 1, in.outcome[o]...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(in.outcomeKV[o])
	}
}

// outcomeOf classifies a decision.
func outcomeOf(d introspect.Decision) int {
	switch {
	case d.Allowed && d.Introspection == nil:
		return outAnonymous
	case d.Allowed:
		return outAllowed
	case errors.Is(d.Err, introspect.ErrRequestCanceled):
		return outCanceled
	case errors.Is(d.Err, introspect.ErrMissingToken):
		return outMissing
	case errors.Is(d.Err, introspect.ErrInvalidRequest):
		return outMalformed
	case errors.Is(d.Err, introspect.ErrInsufficientScope):
		return outInsufficientScope
	case errors.Is(d.Err, introspect.ErrInactiveToken):
		return outInactive
	}
	return outUnavailable
}

// callKey marks the context of a call to the introspection endpoint, which
// holds its *call for the hooks of in.
type callKey struct{ in *instruments }

// call is the state of a call to the introspection endpoint between its
// hooks.
type call struct {
	span trace.Span
	host []attribute.KeyValue // server.address, with WithEndpointHostAttribute
}

func (in *instruments) startSpan(ctx context.Context, info introspect.SpanInfo) (context.Context, func(error)) {
	switch info.Op {
	case "introspect":
		return in.startCall(ctx, info.Endpoint)
	case "metadata", "jwks":
		ctx, span := in.tracer.Start(ctx, SpanDiscovery, trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(DocumentKey.String(info.Op)))
		return ctx, func(err error) { endSpan(span, err, true) }
	}
	return ctx, nil
}

func (in *instruments) startCall(ctx context.Context, endpoint string) (context.Context, func(error)) {
	c := &call{}
	var inFlight []metric.AddOption
	if in.hostAttr {
		if host := hostOf(endpoint); host != "" {
			c.host = []attribute.KeyValue{semconv.ServerAddressKey.String(host)}
			inFlight = []metric.AddOption{metric.WithAttributes(c.host...)}
		}
	}
	ctx, c.span = in.tracer.Start(ctx, SpanIntrospection, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(c.host...))
	ctx = context.WithValue(ctx, callKey{in}, c)
	in.inFlight.Add(ctx, 1, inFlight...)
	return ctx, func(err error) {
		in.inFlight.Add(ctx, -1, inFlight...)
		endSpan(c.span, err, false)
	}
}

// endSpan sets a span's error type and status from err, and ends it. The
// status description is the error type: the error's text stays out of
// traces (WithLogger logs it).
func endSpan(span trace.Span, err error, discovery bool) {
	if err != nil {
		et := errorType(err, discovery)
		span.SetAttributes(ResultKey.String("error"), semconv.ErrorTypeKey.String(et))
		span.SetStatus(codes.Error, et)
	} else if discovery {
		span.SetAttributes(ResultKey.String("ok"))
	}
	span.End()
}

func (in *instruments) introspectDone(ctx context.Context, info introspect.IntrospectDoneInfo) {
	c, _ := ctx.Value(callKey{in}).(*call)
	var host []attribute.KeyValue
	if c != nil {
		host = c.host
	} else if in.hostAttr {
		if h := hostOf(info.Endpoint); h != "" {
			host = []attribute.KeyValue{semconv.ServerAddressKey.String(h)}
		}
	}
	result := "error"
	switch {
	case info.Err == nil && info.Active:
		result = "active"
	case info.Err == nil:
		result = "inactive"
	}
	attrs := append([]attribute.KeyValue{ResultKey.String(result)}, host...)
	if info.Err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(info.Err, false)))
	} else if c != nil {
		c.span.SetAttributes(ResultKey.String(result))
	}
	in.callDuration.Record(ctx, info.Duration.Seconds(), metric.WithAttributes(attrs...))
}

func (in *instruments) discoveryDone(ctx context.Context, info introspect.DiscoveryInfo) {
	attrs := []attribute.KeyValue{DocumentKey.String(info.Document), ResultKey.String("ok")}
	if info.Err != nil {
		attrs[1] = ResultKey.String("error")
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(info.Err, true)))
	}
	in.fetchDuration.Record(ctx, info.Duration.Seconds(), metric.WithAttributes(attrs...))
}

// hostOf is the host of an endpoint URL, without the port; "" if none.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
