package introspectotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
	introspectotel "github.com/introspect-go/introspect/otel"
)

const (
	clientID     = "resource-server"
	clientSecret = "rs-s3cret-Kq8Zt"
)

// telemetry is an SDK meter provider with a manual reader and a tracer
// provider with a span recorder, and the hooks recording into them.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	tp     *sdktrace.TracerProvider
	hooks  *introspect.Hooks
}

func newTelemetry(t testing.TB, opts ...introspectotel.Option) *telemetry {
	t.Helper()
	tm := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tm.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	tm.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	t.Cleanup(func() {
		_ = tm.mp.Shutdown(context.Background())
		_ = tm.tp.Shutdown(context.Background())
	})
	hooks, err := introspectotel.New(append([]introspectotel.Option{
		introspectotel.WithMeterProvider(tm.mp), introspectotel.WithTracerProvider(tm.tp)}, opts...)...)
	require.NoError(t, err)
	tm.hooks = hooks
	return tm
}

// collect reads every metric.
func (tm *telemetry) collect(t testing.TB) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(context.Background(), &rm))
	var all []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, introspectotel.ScopeName, sm.Scope.Name)
		all = append(all, sm.Metrics...)
	}
	return all
}

// metric returns the metric named name; the zero value if none.
func (tm *telemetry) metric(t testing.TB, name string) metricdata.Metrics {
	t.Helper()
	for _, m := range tm.collect(t) {
		if m.Name == name {
			return m
		}
	}
	return metricdata.Metrics{}
}

// attrs names an attribute set as "k=v,k=v", sorted by key; "" for none.
func attrs(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// sums returns the data points of the counter or up-down counter name, by
// their attributes. Points that are zero are kept: an up-down counter back
// at zero has one.
func (tm *telemetry) sums(t testing.TB, name string) map[string]int64 {
	t.Helper()
	m := tm.metric(t, name)
	if m.Data == nil {
		return map[string]int64{}
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T, not an int64 sum", name, m.Data)
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		got[attrs(dp.Attributes)] = dp.Value
	}
	return got
}

// counts returns the counts of the histogram name's data points, by their
// attributes, and checks each point's sum and buckets against its count.
func (tm *telemetry) counts(t testing.TB, name string) map[string]uint64 {
	t.Helper()
	m := tm.metric(t, name)
	if m.Data == nil {
		return map[string]uint64{}
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a %T, not a float64 histogram", name, m.Data)
	got := map[string]uint64{}
	for _, dp := range h.DataPoints {
		got[attrs(dp.Attributes)] = dp.Count
		var inBuckets uint64
		for _, n := range dp.BucketCounts {
			inBuckets += n
		}
		require.Equal(t, dp.Count, inBuckets, "%s: the buckets hold every measurement", name)
		require.Greater(t, dp.Sum, 0.0, "%s: durations are positive", name)
	}
	return got
}

// ended returns the ended spans named name.
func (tm *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// spanAttrs names the attributes of a span as attrs does.
func spanAttrs(s sdktrace.ReadOnlySpan) string {
	return attrs(attribute.NewSet(s.Attributes()...))
}

// newAS starts a test authorization server knowing the resource server.
func newAS(t testing.TB, opts ...introspecttest.Option) *introspecttest.Server {
	t.Helper()
	as := introspecttest.NewServer(append([]introspecttest.Option{introspecttest.WithClient(clientID, clientSecret)}, opts...)...)
	t.Cleanup(as.Close)
	return as
}

// newMW builds a middleware for as with the hooks and extra options.
func newMW(t testing.TB, as *introspecttest.Server, hooks *introspect.Hooks, opts ...introspect.Option) *introspect.Middleware {
	t.Helper()
	mw, err := introspect.New(append([]introspect.Option{
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(clientID, clientSecret),
		introspect.WithHooks(hooks),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	return mw
}

// newCache is an in-memory verdict cache.
func newCache(t testing.TB) *introspect.LRUCache {
	t.Helper()
	c, err := introspect.NewLRUCache(1000)
	require.NoError(t, err)
	return c
}

// ok answers 200.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// get sends a request with the Authorization value auth (none if empty) to
// h and returns the status.
func get(ctx context.Context, h http.Handler, auth string) int {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// leaks lists the places a value shows in the metrics' attributes, the
// spans' names, attributes, events and status descriptions.
func (tm *telemetry) leaks(t testing.TB, values ...string) []string {
	t.Helper()
	var texts []string
	for _, m := range tm.collect(t) {
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				sets = append(sets, dp.Attributes)
			}
		}
		for _, s := range sets {
			texts = append(texts, m.Name+" "+attrs(s))
		}
	}
	for _, s := range tm.spans.Ended() {
		texts = append(texts, "span "+s.Name()+" "+spanAttrs(s)+" status "+s.Status().Description)
		for _, e := range s.Events() {
			texts = append(texts, "event "+e.Name+" "+attrs(attribute.NewSet(e.Attributes...)))
		}
	}
	var found []string
	for _, text := range texts {
		for _, v := range values {
			if v != "" && strings.Contains(text, v) {
				found = append(found, text)
			}
		}
	}
	return slices.Compact(found)
}
