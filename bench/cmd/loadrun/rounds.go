package main

import (
	"fmt"
	"slices"
	"strings"
)

// Rounds and their ratios. The runs are grouped in passes: one pass is one
// round of one scenario on one group of servers, Apache's or all the others
// (the Go servers, nginx), back to back after the machine has settled.
// Every pass of the other servers runs before any of Apache's, so the load
// Apache leaves never lands on a Go server. A server's figures in a round
// are compared with the bare server's in the same round (for Apache, the
// bare server's round of the same number, from the first group's pass).

// pass is one round of one scenario on one group of servers, and the load
// average the machine had settled to when it started.
type pass struct {
	group    string // "" for the first group, "apache"
	scenario string
	round    int // from 0
	settled
}

// groupOf is the group a server's rounds run in.
func groupOf(t target) string {
	if strings.HasPrefix(t.name, "apache-") {
		return "apache"
	}
	return ""
}

// groups splits the targets into the first group and Apache's, in that
// order and each in the targets' order, and leaves out an empty group.
func groups(targets []target) [][]target {
	var first, apache []target
	for _, t := range targets {
		if groupOf(t) == "apache" {
			apache = append(apache, t)
		} else {
			first = append(first, t)
		}
	}
	var out [][]target
	for _, g := range [][]target{first, apache} {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// roundFig is one server's figures in one round of a scenario, and their
// ratios to the bare server's in the same round (ok false: no bare figures
// for that round).
type roundFig struct {
	scenario, server   string
	round              int
	pass               int // index of the pass it ran in
	rps, cpuPerReq     float64
	rpsRatio, cpuRatio float64
	ok                 bool
}

// perRound lists the figures of every server in every round, in the order
// of the scenarios, then the rounds, then the targets, with their ratios to
// the bare server's figures of the same scenario and round.
func perRound(all []result, targets []target, scenarios []scenario) []roundFig {
	type key struct {
		scenario, server string
		round            int
	}
	byKey := map[key]result{}
	rounds := 0
	for _, res := range all {
		byKey[key{res.scenario, res.server, res.round}] = res
		rounds = max(rounds, res.round+1)
	}
	var out []roundFig
	for _, sc := range scenarios {
		for round := range rounds {
			bare, hasBare := byKey[key{sc.name, "bare", round}]
			for _, t := range targets {
				res, ok := byKey[key{sc.name, t.name, round}]
				if !ok {
					continue
				}
				f := roundFig{scenario: sc.name, server: t.name, round: round, pass: res.pass,
					rps: res.rps, cpuPerReq: res.cpuPerReq}
				if hasBare && bare.rps > 0 && bare.cpuPerReq > 0 {
					f.rpsRatio, f.cpuRatio, f.ok = res.rps/bare.rps, res.cpuPerReq/bare.cpuPerReq, true
				}
				out = append(out, f)
			}
		}
	}
	return out
}

// spread is the median, minimum and maximum of n figures.
type spread struct {
	n                int
	median, min, max float64
}

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	return spread{n: len(v), median: median(v), min: slices.Min(v), max: slices.Max(v)}
}

// median is the middle figure of v, or the mean of the two middle ones; v
// is left as it is.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratioSpread is the spread over the rounds of a server's ratios to the
// bare server, requests/s and CPU per request, in one scenario.
func ratioSpread(figs []roundFig, scenario, server string) (rps, cpu spread) {
	var rv, cv []float64
	for _, f := range figs {
		if f.scenario == scenario && f.server == server && f.ok {
			rv = append(rv, f.rpsRatio)
			cv = append(cv, f.cpuRatio)
		}
	}
	return spreadOf(rv), spreadOf(cv)
}

// rangeNote is " (per round a–b×)" for a spread of more than one round, ""
// otherwise.
func rangeNote(s spread) string {
	if s.n < 2 {
		return ""
	}
	return fmt.Sprintf(" (per round %.2f–%.2f×)", s.min, s.max)
}

// writeRounds renders a scenario's per-round table and the spread of its
// per-round ratios for servers (in that order), as Markdown, under the
// scenario's main table; load formats the load a pass started at.
func writeRounds(b *strings.Builder, figs []roundFig, servers []string, sc string, load func(pass int) string) {
	var rows []roundFig
	for _, f := range figs {
		if f.scenario == sc {
			rows = append(rows, f)
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("Per round: each server against `bare` in the same round; load = 1-minute load average when the round started " +
		"(Apache's rounds run after all the others and compare with `bare`'s round of the same number).\n\n")
	b.WriteString("| round | load | server | req/s | CPU µs/req | req/s vs bare | CPU vs bare |\n")
	b.WriteString("| ---: | --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, f := range rows {
		rr, cr := "–", "–"
		if f.ok {
			rr, cr = fmt.Sprintf("%.2f×", f.rpsRatio), fmt.Sprintf("%.2f×", f.cpuRatio)
		}
		fmt.Fprintf(b, "| %d | %s | %s | %.0f | %.1f | %s | %s |\n", f.round+1, load(f.pass), f.server, f.rps, f.cpuPerReq, rr, cr)
	}
	b.WriteString("\nSpread of the per-round ratios against `bare`:\n\n")
	b.WriteString("| server | rounds | req/s vs bare: median | min | max | CPU vs bare: median | min | max |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, srv := range servers {
		if srv == "bare" {
			continue
		}
		rs, cs := ratioSpread(figs, sc, srv)
		if rs.n == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %d | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× |\n",
			srv, rs.n, rs.median, rs.min, rs.max, cs.median, cs.min, cs.max)
	}
	b.WriteString("\n")
}
