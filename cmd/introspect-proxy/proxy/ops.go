package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/introspect-go/introspect"
	introspectotel "github.com/introspect-go/introspect/otel"
)

// meterName is the instrumentation scope of the proxy's own metrics.
const meterName = "github.com/introspect-go/introspect/cmd/introspect-proxy"

// readyTimeout bounds the checks of /readyz.
const readyTimeout = time.Second

// telemetry holds the metrics: the middleware's (introspectotel) and the
// proxy's, in an OpenTelemetry meter provider read by the Prometheus
// exporter, with the Go runtime's and the process's collectors.
type telemetry struct {
	provider *sdkmetric.MeterProvider
	hooks    *introspect.Hooks
	requests metric.Float64Histogram
	metrics  http.Handler

	// requestAttrs are the attributes of the request metric for each
	// outcome and status from minStatus to maxStatus, made on first use.
	requestAttrs [numOutcomes][maxStatus - minStatus + 1]atomic.Pointer[[]metric.RecordOption]
}

// The statuses whose request metric attributes are kept; a request with
// another (net/http allows up to 999) makes its own.
const (
	minStatus = 100
	maxStatus = 599
)

// recordRequest records a request that took d in the request metric.
func (t *telemetry) recordRequest(ctx context.Context, d time.Duration, o outcome, status int) {
	t.requests.Record(ctx, d.Seconds(), t.attrs(o, status)...)
}

// attrs returns the options of the request metric for o and status, made
// once for each pair: attribute.NewSet sorts, hashes and allocates, and
// this is on every request.
func (t *telemetry) attrs(o outcome, status int) []metric.RecordOption {
	if status < minStatus || status > maxStatus {
		return newRequestAttrs(o, status)
	}
	p := &t.requestAttrs[o][status-minStatus]
	if opts := p.Load(); opts != nil {
		return *opts
	}
	opts := newRequestAttrs(o, status)
	p.Store(&opts) // a race stores an equal value
	return opts
}

func newRequestAttrs(o outcome, status int) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("introspect.outcome", o.String()),
		attribute.Int("http.response.status_code", status),
	))}
}

func newTelemetry() (*telemetry, error) {
	registry := prometheus.NewRegistry()
	if err := registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "introspect-proxy"))),
	)
	hooks, err := introspectotel.New(introspectotel.WithMeterProvider(provider))
	if err != nil {
		return nil, err
	}
	requests, err := provider.Meter(meterName).Float64Histogram("introspect_proxy.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Requests served by the proxy, from the first byte read to the last written (for a websocket, to the upgrade), by outcome and status."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err != nil {
		return nil, err
	}
	return &telemetry{
		provider: provider,
		hooks:    hooks,
		requests: requests,
		metrics:  promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
	}, nil
}

func (t *telemetry) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return t.provider.Shutdown(ctx)
}

// newOpsHandler serves the operations endpoints: GET /healthz (the process
// is alive), GET /readyz (it can serve: discovery has loaded the metadata
// and keys of -issuer and -jwt-issuers; Redis answers, when used; no
// shutdown under way) and GET /metrics (Prometheus).
func (s *Server) newOpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.tel.metrics)
	return mux
}

// ready answers /readyz.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if s.draining.Load() {
		problems = append(problems, "shutting down")
	}
	if err := s.mw.Client().Ready(); err != nil {
		problems = append(problems, "discovery: "+strings.TrimPrefix(err.Error(), "introspect: "))
	}
	if s.rdb != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		err := s.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			problems = append(problems, "redis: does not answer")
		}
	}
	if len(problems) > 0 {
		writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeStatus(w, http.StatusOK, map[string]any{"status": "ready"})
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
