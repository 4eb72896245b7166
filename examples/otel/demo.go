package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/internal/exampledemo"
	"github.com/introspect-go/introspect/introspecttest"
)

// demo makes the scripted requests against the API, printing each outcome
// (never a token), then reads /metrics and checks the introspect series.
func demo(ctx context.Context, base string, as *introspecttest.Server, mw *introspect.Middleware, out io.Writer) error {
	if err := script(ctx, base, as, mw, out); err != nil {
		return err
	}
	text, err := scrape(ctx, base)
	if err != nil {
		return err
	}
	got, err := introspectSeries(text)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nThe introspect series of /metrics (without their otel_scope labels; of the buckets, le=\"5\" and le=\"+Inf\"):")
	for _, k := range slices.Sorted(maps.Keys(got)) {
		fmt.Fprintf(out, "  %s %g\n", k, got[k])
	}
	var wrong []string
	for _, k := range slices.Sorted(maps.Keys(wantSeries)) {
		if v, ok := got[k]; !ok || v != wantSeries[k] {
			wrong = append(wrong, fmt.Sprintf("%s = %g, want %g", k, v, wantSeries[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		_, ok := wantSeries[k]
		switch {
		case strings.Contains(k, "_sum{"):
			if got[k] <= 0 {
				wrong = append(wrong, fmt.Sprintf("%s = %g, want a positive duration", k, got[k]))
			}
		case !ok:
			wrong = append(wrong, fmt.Sprintf("%s = %g, not expected", k, got[k]))
		}
	}
	if len(wrong) > 0 {
		return errors.New("metrics not as expected:\n  " + strings.Join(wrong, "\n  "))
	}
	fmt.Fprintf(out, "%d series as expected\n", len(wantSeries))
	return nil
}

// script is the demo's requests: a valid token (a cache miss, then a hit),
// a missing one, a token before and after its revocation, an insufficient
// scope, and an outage of the authorization server.
func script(ctx context.Context, base string, as *introspecttest.Server, mw *introspect.Middleware, out io.Writer) error {
	reader := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "otel-app", Scope: "read"}))
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory", ClientID: "otel-app", Scope: "read"})
	during := exampledemo.Bearer(as.Issue(introspecttest.Claims{Subject: "bob", ClientID: "otel-app", Scope: "read"}))
	defer as.ClearFault()
	return exampledemo.Run(ctx, base, []exampledemo.Step{
		{Name: "valid token", Path: "/api/me", Auth: reader, Want: 200},
		{Name: "valid token, cached", Path: "/api/me", Auth: reader, Want: 200},
		{Name: "missing token", Path: "/api/me", Want: 401},
		{Name: "token used before revocation", Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: 200},
		{Name: "revoked token", Path: "/api/me", Auth: exampledemo.Bearer(revoked), Want: 401, Before: func() error {
			as.Revoke(revoked)
			return mw.Evict(ctx, revoked) // as a revocation event handler would
		}},
		{Name: "insufficient scope", Path: "/api/admin", Auth: reader, Want: 403},
		{Name: "authorization server down", Path: "/api/me", Auth: during, Want: 503, Before: func() error {
			as.SetFault(introspecttest.Respond(http.StatusServiceUnavailable, "text/plain", "down for maintenance"))
			return nil
		}},
	}, out)
}

// wantSeries are the introspect series the script leaves, by name and
// labels as introspectSeries writes them. The 403 counts twice: the
// middleware accepted the token (allowed), then the scope guard refused
// the request (insufficient_scope).
var wantSeries = map[string]float64{
	`introspect_decisions_total{introspect_outcome="allowed"}`:                                                    4,
	`introspect_decisions_total{introspect_outcome="missing"}`:                                                    1,
	`introspect_decisions_total{introspect_outcome="inactive"}`:                                                   1,
	`introspect_decisions_total{introspect_outcome="insufficient_scope"}`:                                         1,
	`introspect_decisions_total{introspect_outcome="unavailable"}`:                                                1,
	`introspect_cache_lookups_total{introspect_cache_result="hit"}`:                                               2,
	`introspect_cache_lookups_total{introspect_cache_result="miss"}`:                                              4,
	`introspect_introspection_duration_seconds_count{introspect_result="active"}`:                                 2,
	`introspect_introspection_duration_seconds_count{introspect_result="inactive"}`:                               1,
	`introspect_introspection_duration_seconds_count{error_type="http_5xx",introspect_result="error"}`:            1,
	`introspect_introspection_duration_seconds_bucket{introspect_result="active",le="5"}`:                         2,
	`introspect_introspection_duration_seconds_bucket{introspect_result="active",le="+Inf"}`:                      2,
	`introspect_introspection_duration_seconds_bucket{introspect_result="inactive",le="5"}`:                       1,
	`introspect_introspection_duration_seconds_bucket{introspect_result="inactive",le="+Inf"}`:                    1,
	`introspect_introspection_duration_seconds_bucket{error_type="http_5xx",introspect_result="error",le="5"}`:    1,
	`introspect_introspection_duration_seconds_bucket{error_type="http_5xx",introspect_result="error",le="+Inf"}`: 1,
	`introspect_introspection_in_flight{}`:                                                                        0,
}

// scrape GETs /metrics.
func scrape(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return string(b), err
}

// introspectSeries parses the Prometheus text format and returns the
// introspect series by name and labels, as name{label="value",...} with
// the labels sorted and the otel_scope ones left out: counters and gauges
// by value, histograms by _count and _sum, and of their buckets only +Inf
// and the largest bound, 5.
func introspectSeries(text string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	got := map[string]float64{}
	for name, f := range families {
		if !strings.HasPrefix(name, "introspect_") {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := seriesLabels(m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				got[name+labels.String()] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				got[name+labels.String()] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				got[name+"_count"+labels.String()] = float64(h.GetSampleCount())
				got[name+"_sum"+labels.String()] = h.GetSampleSum()
				got[name+"_bucket"+labels.with("le", "+Inf").String()] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					if b.GetUpperBound() == 5 {
						got[name+"_bucket"+labels.with("le", "5").String()] = float64(b.GetCumulativeCount())
					}
				}
			default:
				return nil, fmt.Errorf("%s: unexpected metric type %s", name, f.GetType())
			}
		}
	}
	return got, nil
}

// labelSet is the labels of a series, otel_scope ones left out.
type labelSet map[string]string

func seriesLabels(pairs []*dto.LabelPair) labelSet {
	l := labelSet{}
	for _, p := range pairs {
		if !strings.HasPrefix(p.GetName(), "otel_scope_") {
			l[p.GetName()] = p.GetValue()
		}
	}
	return l
}

func (l labelSet) with(k, v string) labelSet {
	c := maps.Clone(l)
	c[k] = v
	return c
}

// String is the labels as {k="v",...}, sorted by name.
func (l labelSet) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(l)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, l[k])
	}
	b.WriteByte('}')
	return b.String()
}
