package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGroups(t *testing.T) {
	var ts []target
	for _, n := range []string{"bare", "introspect", "apache-bare", "apache-oidc", "proxy-reverse", "apache-rp", "oathkeeper"} {
		ts = append(ts, target{name: n})
	}
	var got [][]string
	for _, g := range groups(ts) {
		var names []string
		for _, t := range g {
			names = append(names, t.name)
		}
		got = append(got, names)
	}
	want := [][]string{{"bare", "introspect", "proxy-reverse", "oathkeeper"}, {"apache-bare", "apache-oidc", "apache-rp"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	if g := groups(ts[:2]); len(g) != 1 {
		t.Errorf("groups without Apache = %d groups, want 1", len(g))
	}
	if g := groups(ts[2:4]); len(g) != 1 || g[0][0].name != "apache-bare" {
		t.Errorf("groups of Apache alone = %v, want one group", g)
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want spread
	}{
		{name: "none", in: nil, want: spread{}},
		{name: "one", in: []float64{1.07}, want: spread{n: 1, median: 1.07, min: 1.07, max: 1.07}},
		{name: "odd", in: []float64{0.95, 0.90, 1.00}, want: spread{n: 3, median: 0.95, min: 0.90, max: 1.00}},
		{name: "even", in: []float64{1.2, 0.9, 1.0, 1.1}, want: spread{n: 4, median: 1.05, min: 0.9, max: 1.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := spreadOf(in)
			if got.n != tt.want.n || !near(got.median, tt.want.median) || got.min != tt.want.min || got.max != tt.want.max {
				t.Errorf("spreadOf(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("spreadOf reordered its input: %v", in)
			}
		})
	}
}

// roundsFixture is three rounds of the cached scenario: bare and introspect
// in the first group, apache-oidc after them; in round 3 (index 2) bare did
// not run.
func roundsFixture() ([]result, []target, []scenario) {
	targets := []target{{name: "bare"}, {name: "introspect"}, {name: "apache-oidc"}}
	scenarios := []scenario{{name: "cached"}, {name: "herd"}}
	r := func(server string, round, pass int, rps, cpu float64) result {
		return result{scenario: "cached", server: server, round: round, pass: pass, rps: rps, cpuPerReq: cpu}
	}
	all := []result{
		// The first group, rounds 1 and 2 (in reverse order) and 3.
		r("bare", 0, 0, 100000, 10), r("introspect", 0, 0, 94000, 11),
		r("introspect", 1, 1, 99000, 10.6), r("bare", 1, 1, 110000, 10),
		r("introspect", 2, 2, 90000, 12),
		// Apache's rounds.
		r("apache-oidc", 0, 3, 20000, 80), r("apache-oidc", 1, 4, 22000, 90), r("apache-oidc", 2, 5, 21000, 85),
		// Another scenario, not to be mixed in.
		{scenario: "herd", server: "bare", rps: 1, cpuPerReq: 1}, {scenario: "herd", server: "introspect", rps: 50, cpuPerReq: 50},
	}
	return all, targets, scenarios
}

func TestPerRound(t *testing.T) {
	all, targets, scenarios := roundsFixture()
	figs := perRound(all, targets, scenarios)
	type row struct {
		scenario, server string
		round, pass      int
		rps, cpu         float64
		ok               bool
	}
	var got []row
	for _, f := range figs {
		got = append(got, row{f.scenario, f.server, f.round, f.pass, round2(f.rpsRatio), round2(f.cpuRatio), f.ok})
	}
	// In the order of the scenarios, the rounds and the targets, whatever
	// the order they ran in; each against bare in the same round.
	want := []row{
		{"cached", "bare", 0, 0, 1, 1, true},
		{"cached", "introspect", 0, 0, 0.94, 1.1, true},
		{"cached", "apache-oidc", 0, 3, 0.2, 8, true},
		{"cached", "bare", 1, 1, 1, 1, true},
		{"cached", "introspect", 1, 1, 0.9, 1.06, true},
		{"cached", "apache-oidc", 1, 4, 0.2, 9, true},
		{"cached", "introspect", 2, 2, 0, 0, false},
		{"cached", "apache-oidc", 2, 5, 0, 0, false},
		{"herd", "bare", 0, 0, 1, 1, true},
		{"herd", "introspect", 0, 0, 50, 50, true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("perRound:\n got %v\nwant %v", got, want)
	}

	rs, cs := ratioSpread(figs, "cached", "introspect")
	if rs.n != 2 || !near(rs.median, 0.92) || !near(rs.min, 0.9) || !near(rs.max, 0.94) {
		t.Errorf("req/s ratio spread = %+v, want 2 rounds, median 0.92, 0.90–0.94", rs)
	}
	if cs.n != 2 || !near(cs.median, 1.08) || !near(cs.min, 1.06) || !near(cs.max, 1.1) {
		t.Errorf("CPU ratio spread = %+v, want 2 rounds, median 1.08, 1.06–1.10", cs)
	}
	if got, want := rangeNote(rs), " (per round 0.90–0.94×)"; got != want {
		t.Errorf("rangeNote = %q, want %q", got, want)
	}
	if s, _ := ratioSpread(figs, "herd", "introspect"); rangeNote(s) != "" {
		t.Errorf("rangeNote of one round = %q, want none", rangeNote(s))
	}
}

func TestWriteRounds(t *testing.T) {
	all, targets, scenarios := roundsFixture()
	figs := perRound(all, targets, scenarios)
	r := &runner{o: options{settleMax: 90 * time.Second}, passes: []pass{
		{settled: settled{load: loadAvg{0.62}, waited: 34 * time.Second}},
		{settled: settled{load: loadAvg{0.91}}},
		{settled: settled{load: loadAvg{0.8}}},
		{settled: settled{load: loadAvg{2.31}, waited: 90 * time.Second, maxed: true}},
		{settled: settled{load: loadAvg{0.95}}},
		{settled: settled{load: loadAvg{0.97}}},
	}}
	var b strings.Builder
	writeRounds(&b, figs, []string{"bare", "introspect", "apache-oidc"}, "cached", r.loadCell)
	out := b.String()
	for _, want := range []string{
		"| round | load | server | req/s | CPU µs/req | req/s vs bare | CPU vs bare |\n",
		"| 1 | 0.62 (after 34s) | introspect | 94000 | 11.0 | 0.94× | 1.10× |\n",
		"| 1 | 2.31 (not settled in 1m30s) | apache-oidc | 20000 | 80.0 | 0.20× | 8.00× |\n",
		"| 3 | 0.80 | introspect | 90000 | 12.0 | – | – |\n",
		"| introspect | 2 | 0.92× | 0.90× | 0.94× | 1.08× | 1.06× | 1.10× |\n",
		"| apache-oidc | 2 | 0.20× | 0.20× | 0.20× | 8.50× | 8.00× | 9.00× |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("writeRounds output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| bare | 2 |") || strings.Contains(out, "herd") || strings.Contains(out, "| 50") {
		t.Errorf("writeRounds output has bare's spread or another scenario's rows:\n%s", out)
	}
	b.Reset()
	writeRounds(&b, figs, nil, "invalid", r.loadCell)
	if b.Len() != 0 {
		t.Errorf("writeRounds of a scenario with no rounds = %q, want nothing", b.String())
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func round2(v float64) float64 { return math.Round(v*100) / 100 }
