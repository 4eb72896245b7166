// Command loadrun is the driver of bench/load.sh: it starts, on loopback, the
// stub authorization server, a bare server, a server behind the introspect
// middleware and (when installed) Apache httpd with mod_auth_openidc; with
// -proxy on, introspect-proxy in reverse-proxy mode and behind nginx in
// forward-auth mode, with their baselines (a bare httputil.ReverseProxy and
// nginx alone); with -oathkeeper, Ory Oathkeeper's proxy. It runs the same
// wrk scenarios against each in turn, and writes a Markdown table with
// ratios against the bare server. Every run is bounded in time; every process
// it starts is stopped when it ends.
//
// The runs go in rounds: one round of one scenario runs every server of a
// group back to back, after the 1-minute load average has fallen below
// -settle-load (at most -settle-max). All the rounds of every server but
// Apache come first, Apache's after them, so the load Apache's 2×64
// threads leave on the machine never lands on a Go server's run. The report
// gives each round's figures with its starting load and its ratios against
// the bare server in the same round, and the median, minimum and maximum of
// those ratios.
//
//	loadrun -bin /tmp/bin -duration 10s -out results/latest.md
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/bench/internal/benchutil"
	"github.com/introspect-go/introspect/bench/stub"
)

type options struct {
	bin         string
	duration    time.Duration
	connections int
	threads     int
	latency     time.Duration
	tokens      int
	out         string
	apache      string
	command     string
	scenarios   string
	rounds      int
	proxy       string
	floors      string
	oathkeeper  string
	servers     string
	settleLoad  float64
	settleMax   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "directory holding the stubas and server binaries")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each wrk run")
	flag.IntVar(&o.connections, "connections", 64, "wrk connections (the herd always uses 64)")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.DurationVar(&o.latency, "latency", 5*time.Millisecond, "stub AS latency per introspection call")
	flag.IntVar(&o.tokens, "tokens", 1000, "distinct tokens of the cycled scenario")
	flag.StringVar(&o.out, "out", "results/latest.md", "Markdown report file")
	flag.StringVar(&o.apache, "apache", "auto", "run Apache mod_auth_openidc: auto (if installed), on, off")
	flag.StringVar(&o.command, "command", "make loadtest", "the command to quote in the report")
	flag.StringVar(&o.scenarios, "scenarios", "cached,cycled,invalid,herd", "scenarios to run, comma-separated")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds of every scenario on every server (figures are medians, counts sums)")
	flag.StringVar(&o.proxy, "proxy", "off", "run introspect-proxy (from -bin) in reverse-proxy mode and behind nginx in forward-auth mode, with a bare httputil.ReverseProxy and nginx alone: on, off")
	flag.StringVar(&o.floors, "floors", "off", "with -proxy on, also run the floors of one hop (the bench server's floor-* modes): on, off")
	flag.StringVar(&o.oathkeeper, "oathkeeper", "", "path of an Ory Oathkeeper binary to run as a proxy with its oauth2_introspection authenticator (empty: none)")
	flag.StringVar(&o.servers, "servers", "", "servers to measure, comma-separated (empty: all that run)")
	flag.Float64Var(&o.settleLoad, "settle-load", 0.5*float64(runtime.NumCPU()), "before each round, wait until the 1-minute load average is below this: 0.5 per core unless set")
	flag.DurationVar(&o.settleMax, "settle-max", 90*time.Second, "longest wait for -settle-load before a round (0: no wait)")
	flag.Parse()
	log.SetPrefix("loadrun: ")
	log.SetFlags(log.Ltime)
	if o.bin == "" || o.duration <= 0 || o.connections <= 0 || o.threads <= 0 || o.tokens <= 0 || o.rounds <= 0 {
		log.Fatal("need -bin and positive -duration, -connections, -threads, -tokens, -rounds")
	}
	if o.settleLoad < 0 || o.settleMax < 0 {
		log.Fatal("-settle-load and -settle-max cannot be negative")
	}
	if o.floors == "on" && o.proxy != "on" {
		log.Fatal("-floors on needs -proxy on")
	}
	// A hard bound on the whole run, whatever happens: room for 18 servers
	// (a default run has 5; -proxy on adds 7, -oathkeeper 1, -floors on 5)
	// and two waits to settle (the two groups) per round of each scenario.
	limit := time.Duration(o.rounds*len(strings.Split(o.scenarios, ",")))*(18*(o.duration+10*time.Second)+2*o.settleMax) + 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{o: o}
	err := r.run(ctx)
	r.stopAll()
	if err != nil {
		log.Fatal(err)
	}
}

type runner struct {
	o      options
	dir    string // temporary directory, removed at the end
	procs  []*exec.Cmd
	before string // load averages before the first round
	passes []pass // the rounds of each group, in the order they ran
	nonce  string
	tck    float64 // clock ticks per second
}

// target is one server under test.
type target struct {
	name string
	url  string // base URL, no trailing slash
	path string // request path
	pids func() []int
	auth bool // the server checks tokens (AS calls are expected)
}

type scenario struct {
	name   string
	desc   string
	prefix string // token prefix, completed with the server's name and a nonce
	count  int    // distinct tokens (1: the prefix is the token)
	warm   bool   // one request before the measurement
	conns  int
}

type result struct {
	scenario, server string
	rps, p50, p99    float64 // p50, p99 in µs
	cpuPerReq        float64 // µs
	requests         int64
	non2xx, sockErrs int64
	as               stub.Stats
	auth             bool
	round            int // from 0; in a combined result, the first
	pass             int // index in runner.passes
}

func (r *runner) run(ctx context.Context) error {
	var err error
	r.dir, err = os.MkdirTemp("", "introspect-load-")
	if err != nil {
		return err
	}
	r.nonce = randHex(4)
	r.tck = clockTicks()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk is not installed (apt-get install wrk)")
	}

	// The stub authorization server.
	asHTTPS, asAdmin := benchutil.FreeAddr(), benchutil.FreeAddr()
	caFile := filepath.Join(r.dir, "ca.pem")
	if err := r.start(ctx, filepath.Join(r.o.bin, "stubas"), nil, nil, "-https", asHTTPS, "-admin", asAdmin,
		"-cert-out", caFile, "-latency", r.o.latency.String()); err != nil {
		return err
	}
	admin := "http://" + asAdmin
	if err := benchutil.WaitHTTP(ctx, admin+"/stats", nil, false); err != nil {
		return fmt.Errorf("stub AS: %w", err)
	}
	endpoint := "https://" + asHTTPS + "/introspect"

	// The Go servers.
	var targets []target
	for _, name := range []string{"bare", "introspect", "introspect-h1"} {
		mode, http1 := strings.CutSuffix(name, "-h1")
		addr := benchutil.FreeAddr()
		args := []string{"-mode", mode, "-addr", addr}
		if mode == "introspect" {
			args = append(args, "-as", endpoint, "-ca", caFile)
		}
		if http1 {
			args = append(args, "-http1")
		}
		cmd, err := r.startCmd(ctx, filepath.Join(r.o.bin, "server"), nil, nil, args...)
		if err != nil {
			return err
		}
		if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/", nil, true); err != nil {
			return fmt.Errorf("%s server: %w", name, err)
		}
		pid := cmd.Process.Pid
		targets = append(targets, target{name: name, url: "http://" + addr, path: "/api",
			pids: func() []int { return []int{pid} }, auth: mode == "introspect"})
	}

	// The backend of the proxies (-proxy on, -oathkeeper, and Apache's
	// mod_proxy then).
	var be backend
	if r.o.proxy == "on" || r.o.oathkeeper != "" {
		if be, err = r.startBackend(ctx); err != nil {
			return err
		}
	}

	// Apache httpd with mod_auth_openidc.
	apacheNote := ""
	if use, why := r.wantApache(); use {
		ts, err := r.startApache(ctx, endpoint, caFile, be)
		if err != nil {
			return fmt.Errorf("apache: %w", err)
		}
		targets = append(targets, ts...)
	} else {
		apacheNote = why
		log.Print(why)
	}

	// introspect-proxy, its baselines and Oathkeeper, in front of one backend.
	if r.o.proxy == "on" || r.o.oathkeeper != "" {
		ts, err := r.proxyTargets(ctx, endpoint, caFile, be)
		if err != nil {
			return err
		}
		targets = append(targets, ts...)
	}
	if r.o.servers != "" {
		want := strings.Split(r.o.servers, ",")
		targets = slices.DeleteFunc(targets, func(t target) bool { return !slices.Contains(want, t.name) })
		if len(targets) == 0 {
			return fmt.Errorf("no server left by -servers %s", r.o.servers)
		}
	}

	scenarios := r.scenarios()
	r.before = benchutil.LoadAvg()
	st := newSettler(r.o.settleLoad, r.o.settleMax)
	var all []result
	// Every round of every scenario on the first group, then on Apache's.
	for _, group := range groups(targets) {
		for round := range r.o.rounds {
			for _, sc := range scenarios {
				s, err := st.wait(ctx)
				if err != nil {
					return err
				}
				p := pass{group: groupOf(group[0]), scenario: sc.name, round: round, settled: s}
				r.passes = append(r.passes, p)
				of := sc.name
				if p.group == "apache" {
					of += " (Apache)"
				}
				log.Printf("round %d of %s: load average %s%s", round+1, of, s.load, waitNote(s))
				for i := range group {
					// Every other round in reverse order, so that drift in the
					// machine's load does not always favour the same server.
					t := group[i]
					if round%2 == 1 {
						t = group[len(group)-1-i]
					}
					if ctx.Err() != nil {
						return ctx.Err()
					}
					res, err := r.measure(ctx, wrk, admin, t, sc, round)
					if err != nil {
						return fmt.Errorf("%s on %s: %w", sc.name, t.name, err)
					}
					res.pass = len(r.passes) - 1
					log.Printf("%-8s %-12s %9.0f req/s  p50 %6.0f µs  p99 %7.0f µs  CPU %6.1f µs/req  AS calls %d (distinct %d, new conns %d)  non-2xx %d",
						sc.name, t.name, res.rps, res.p50, res.p99, res.cpuPerReq, res.as.Calls, res.as.Distinct, res.as.NewConns, res.non2xx)
					all = append(all, res)
				}
			}
		}
	}
	results := combine(all, targets, scenarios)
	report := r.report(scenarios, results, perRound(all, targets, scenarios), apacheNote)
	fmt.Print(report)
	if r.o.out != "" {
		if err := os.MkdirAll(filepath.Dir(r.o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(r.o.out, []byte(report), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", r.o.out)
	}
	return nil
}

func (r *runner) scenarios() []scenario {
	all := map[string]scenario{
		"cached":  {name: "cached", desc: "one cached token", prefix: "valid-c", count: 1, warm: true, conns: r.o.connections},
		"cycled":  {name: "cycled", desc: fmt.Sprintf("%d distinct tokens cycled from a cold cache", r.o.tokens), prefix: "valid-y", count: r.o.tokens, conns: r.o.connections},
		"invalid": {name: "invalid", desc: "one invalid token repeated", prefix: "bad-i", count: 1, conns: r.o.connections},
		"herd":    {name: "herd", desc: "thundering herd: 64 connections, one new token", prefix: "valid-h", count: 1, conns: 64},
	}
	var out []scenario
	for _, n := range strings.Split(r.o.scenarios, ",") {
		if sc, ok := all[strings.TrimSpace(n)]; ok {
			out = append(out, sc)
		}
	}
	return out
}

// measure runs one scenario against one server.
func (r *runner) measure(ctx context.Context, wrk, admin string, t target, sc scenario, round int) (result, error) {
	res := result{scenario: sc.name, server: t.name, auth: t.auth, round: round}
	prefix := fmt.Sprintf("%s-%s-%s-%d", sc.prefix, t.name, r.nonce, round)
	if sc.count > 1 {
		prefix += "-"
	}
	if err := post(ctx, admin+"/reset"); err != nil {
		return res, err
	}
	if sc.warm {
		hdr := http.Header{"Authorization": {"Bearer " + prefix}}
		if err := benchutil.WaitHTTP(ctx, t.url+t.path, hdr, false); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	script := filepath.Join(r.dir, "scenario.lua")
	if err := os.WriteFile(script, []byte(luaScript(prefix, sc.count, r.o.threads, t.path)), 0o644); err != nil {
		return res, err
	}
	before := r.cpuTicks(t.pids())
	wctx, cancel := context.WithTimeout(ctx, r.o.duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(wctx, wrk, "-t", strconv.Itoa(r.o.threads), "-c", strconv.Itoa(sc.conns),
		"-d", fmt.Sprintf("%ds", int(math.Ceil(r.o.duration.Seconds()))), "--timeout", "5s", "-s", script, t.url+t.path)
	out, err := cmd.CombinedOutput()
	after := r.cpuTicks(t.pids())
	if err != nil {
		return res, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var durUS float64
	var found bool
	sc2 := bufio.NewScanner(bytes.NewReader(out))
	for sc2.Scan() {
		line, ok := strings.CutPrefix(sc2.Text(), "RESULT ")
		if !ok {
			continue
		}
		found = true
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "requests":
				res.requests = int64(n)
			case "duration_us":
				durUS = n
			case "p50_us":
				res.p50 = n
			case "p99_us":
				res.p99 = n
			case "status_errors":
				res.non2xx = int64(n)
			case "connect_errors", "read_errors", "write_errors", "timeouts":
				res.sockErrs += int64(n)
			}
		}
	}
	if !found || res.requests == 0 || durUS == 0 {
		return res, fmt.Errorf("no result from wrk: %s", out)
	}
	res.rps = float64(res.requests) / (durUS / 1e6)
	res.cpuPerReq = (after - before) / r.tck * 1e6 / float64(res.requests)
	s, err := quiesce(ctx, admin+"/stats")
	if err != nil {
		return res, err
	}
	res.as = s
	return res, nil
}

// quiesce waits until the stub has received no call for 500 ms (at most
// 10 s), so that calls still in flight when wrk stopped (a server may go on
// working through queued requests) are counted for this server and not for
// the next, and returns the stub's counters.
func quiesce(ctx context.Context, url string) (stub.Stats, error) {
	last, err := getStats(ctx, url)
	if err != nil {
		return last, err
	}
	quiet := time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		s, err := getStats(ctx, url)
		if err != nil {
			return s, err
		}
		if s.Calls != last.Calls {
			last, quiet = s, time.Now()
			continue
		}
		if time.Since(quiet) >= 500*time.Millisecond {
			return s, nil
		}
	}
	return last, nil
}

// combine merges the rounds of each scenario and server: medians of the
// figures, sums of the counts, in the order of the scenarios and targets.
func combine(all []result, targets []target, scenarios []scenario) []result {
	var out []result
	for _, sc := range scenarios {
		for _, t := range targets {
			var rs []result
			for _, res := range all {
				if res.scenario == sc.name && res.server == t.name {
					rs = append(rs, res)
				}
			}
			if len(rs) == 0 {
				continue
			}
			c := rs[0]
			c.as = stub.Stats{}
			c.requests, c.non2xx, c.sockErrs = 0, 0, 0
			pick := func(f func(result) float64) float64 {
				v := make([]float64, len(rs))
				for i, res := range rs {
					v[i] = f(res)
				}
				return median(v)
			}
			c.rps = pick(func(r result) float64 { return r.rps })
			c.p50 = pick(func(r result) float64 { return r.p50 })
			c.p99 = pick(func(r result) float64 { return r.p99 })
			c.cpuPerReq = pick(func(r result) float64 { return r.cpuPerReq })
			for _, res := range rs {
				c.requests += res.requests
				c.non2xx += res.non2xx
				c.sockErrs += res.sockErrs
				c.as.Calls += res.as.Calls
				c.as.Failures += res.as.Failures
				c.as.Distinct += res.as.Distinct
				c.as.NewConns += res.as.NewConns
				c.as.MaxPerToken = max(c.as.MaxPerToken, res.as.MaxPerToken)
			}
			out = append(out, c)
		}
	}
	return out
}

// luaScript is the wrk script: Bearer tokens prefix0..prefix(count-1)
// spread over the threads (or prefix alone when count is 1), and a RESULT
// line with the figures at the end.
func luaScript(prefix string, count, threads int, path string) string {
	return fmt.Sprintf(`local prefix = %q
local count = %d
local nthreads = %d
local path = %q
local threads = {}
local n = 0
local single = nil

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  if count == 1 then
    single = wrk.format("GET", path, {["Authorization"] = "Bearer " .. prefix})
  end
end

function request()
  if single then
    return single
  end
  local i = (n * nthreads + tid) %% count
  n = n + 1
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. prefix .. i})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d status_errors=%%d connect_errors=%%d read_errors=%%d write_errors=%%d timeouts=%%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
`, prefix, count, threads, path)
}

func (r *runner) wantApache() (bool, string) {
	if r.o.apache == "off" {
		return false, "Apache: skipped (-apache off)."
	}
	_, err1 := exec.LookPath("apache2")
	_, err2 := os.Stat(apacheModules + "/mod_auth_openidc.so")
	if err1 != nil || err2 != nil {
		if r.o.apache == "on" {
			log.Fatal("apache2 or mod_auth_openidc is not installed (apt-get install apache2 libapache2-mod-auth-openidc)")
		}
		return false, "Apache: not run: apache2 or libapache2-mod-auth-openidc is not installed."
	}
	return true, ""
}

const apacheModules = "/usr/lib/apache2/modules"

const apacheConf = `# Written by bench/cmd/loadrun for one load run.
ServerRoot "{{dir}}"
ServerName 127.0.0.1
Listen {{addr}}
PidFile "{{dir}}/httpd.pid"
DefaultRuntimeDir "{{dir}}"
Mutex file:{{dir}} default
ErrorLog "{{dir}}/error.log"
LogLevel warn
LoadModule mpm_event_module {{mods}}/mod_mpm_event.so
LoadModule authn_core_module {{mods}}/mod_authn_core.so
LoadModule authz_core_module {{mods}}/mod_authz_core.so
LoadModule authz_user_module {{mods}}/mod_authz_user.so
LoadModule auth_openidc_module {{mods}}/mod_auth_openidc.so
{{proxymods}}DocumentRoot "{{dir}}/htdocs"
# Keep-alive without a request cap, like the Go servers.
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
# Two processes of 64 threads, never retired during the run, so that CPU
# time can be read off the live processes.
StartServers 2
ServerLimit 2
ThreadsPerChild 64
MaxRequestWorkers 128
MinSpareThreads 1
MaxSpareThreads 256
MaxConnectionsPerChild 0

OIDCCryptoPassphrase "{{passphrase}}"
OIDCCacheType shm
OIDCCacheEncrypt On
# Room for the 1,000 tokens of the cycled scenario (the default is 500
# entries; the 2.4.12 shm cache scans its table on a lookup, so it is not
# made larger than needed).
OIDCCacheShmMax 2000
OIDCCABundlePath "{{dir}}/ca.pem"
OIDCOAuthIntrospectionEndpoint {{endpoint}}
OIDCOAuthIntrospectionEndpointAuth client_secret_basic
OIDCOAuthClientID rs
OIDCOAuthClientSecret rs-secret
# Re-introspect a cached token after 5 min, like the middleware's MaxTTL.
OIDCOAuthTokenIntrospectionInterval 300
OIDCOAuthRemoteUserClaim sub

<Directory "{{dir}}/htdocs">
  Require all granted
</Directory>
<Location "/api">
  AuthType oauth20
  Require valid-user
</Location>
{{proxylocations}}`

// apacheProxyMods and apacheProxyLocations are what the Apache configuration
// gets when a backend runs: mod_proxy in front of it at /plain-rp, and after
// mod_auth_openidc at /api-rp (keep-alive connections to the backend, pooled
// per process).
const apacheProxyMods = `LoadModule proxy_module {{mods}}/mod_proxy.so
LoadModule proxy_http_module {{mods}}/mod_proxy_http.so
`

const apacheProxyLocations = `<Location "/plain-rp">
  ProxyPass "http://{{backend}}/plain"
</Location>
<Location "/api-rp">
  AuthType oauth20
  Require valid-user
  ProxyPass "http://{{backend}}/api"
</Location>
`

// startApache writes a configuration into the temporary directory and starts
// httpd in the foreground as an unprivileged user. It returns two targets on
// the same httpd: /api behind mod_auth_openidc, /plain without it; when be
// runs, two more with mod_proxy in front of it: /api-rp and /plain-rp.
func (r *runner) startApache(ctx context.Context, endpoint, caFile string, be backend) ([]target, error) {
	dir := filepath.Join(r.dir, "apache")
	if err := os.MkdirAll(filepath.Join(dir, "htdocs"), 0o755); err != nil {
		return nil, err
	}
	addr := benchutil.FreeAddr()
	conf := apacheConf
	if be.addr != "" {
		conf = strings.NewReplacer("{{proxymods}}", apacheProxyMods, "{{proxylocations}}", apacheProxyLocations).Replace(conf)
	} else {
		conf = strings.NewReplacer("{{proxymods}}", "", "{{proxylocations}}", "").Replace(conf)
	}
	conf = strings.NewReplacer("{{dir}}", dir, "{{addr}}", addr, "{{mods}}", apacheModules, "{{backend}}", be.addr,
		"{{passphrase}}", randHex(16), "{{endpoint}}", endpoint).Replace(conf)
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	for name, body := range map[string]string{
		"httpd.conf": conf, "ca.pem": string(ca), "htdocs/api": "ok\n", "htdocs/plain": "ok\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Run as nobody: no root process serves requests.
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for _, p := range []string{r.dir, dir, filepath.Join(dir, "htdocs")} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				return nil, err
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			_ = os.Chown(filepath.Join(dir, e.Name()), 65534, 65534)
		}
	}
	cmd, err := r.startCmd(ctx, "apache2", cred, nil, "-d", dir, "-f", filepath.Join(dir, "httpd.conf"), "-DFOREGROUND")
	if err != nil {
		return nil, err
	}
	if err := benchutil.WaitHTTP(ctx, "http://"+addr+"/plain", nil, false); err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return nil, fmt.Errorf("%w; error.log: %s", err, logs)
	}
	parent := cmd.Process.Pid
	pids := func() []int { return append([]int{parent}, children(parent)...) }
	ts := []target{
		{name: "apache-bare", url: "http://" + addr, path: "/plain", pids: pids},
		{name: "apache-oidc", url: "http://" + addr, path: "/api", pids: pids, auth: true},
	}
	if be.addr != "" {
		withBackend := func() []int { return append(pids(), be.pid) }
		ts = append(ts,
			target{name: "apache-rp", url: "http://" + addr, path: "/plain-rp", pids: withBackend},
			target{name: "apache-oidc-rp", url: "http://" + addr, path: "/api-rp", pids: withBackend, auth: true})
	}
	return ts, nil
}

// startCmd starts a process in its own process group, remembered for
// stopAll, with env as its environment (nil: this one's). Its output goes
// to a log file in the temporary directory.
func (r *runner) startCmd(ctx context.Context, path string, cred *syscall.Credential, env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	logf, err := os.Create(filepath.Join(r.dir, filepath.Base(path)+"-"+strconv.Itoa(len(r.procs))+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.procs = append(r.procs, cmd)
	return cmd, ctx.Err()
}

func (r *runner) start(ctx context.Context, path string, cred *syscall.Credential, env []string, args ...string) error {
	_, err := r.startCmd(ctx, path, cred, env, args...)
	return err
}

// stopAll stops every process started, newest first (SIGTERM to its group,
// SIGKILL after 5 s), and removes the temporary directory.
func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		benchutil.Stop(r.procs[i])
	}
	r.procs = nil
	if r.dir != "" {
		_ = os.RemoveAll(r.dir)
	}
}

// cpuTicks sums user and system time, own and of reaped children, of pids.
func (r *runner) cpuTicks(pids []int) float64 {
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields start after the last ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// f[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseFloat(f[i], 64)
			total += n
		}
	}
	return total
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if pp, _ := strconv.Atoi(f[1]); pp == pid {
			out = append(out, n)
		}
	}
	return out
}

func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

func post(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func getStats(ctx context.Context, url string) (stub.Stats, error) {
	var s stub.Stats
	return s, benchutil.GetJSON(ctx, url, &s)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// report renders the results as Markdown: the machine, the command, one table
// per scenario with ratios against the bare server, its rounds with their
// ratios and the spread of those, and the targets.
func (r *runner) report(scenarios []scenario, results []result, figs []roundFig, apacheNote string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Load test (`%s`)\n\n", r.o.command)
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s, %d cores (`nproc`), %s, %s\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version())
	fmt.Fprintf(&b, "- Tools: %s; %s\n", firstLine("wrk", "-v"), apacheVersion())
	fmt.Fprintf(&b, "- Load average before the first round: %s; at the end: %s\n", r.before, benchutil.LoadAvg())
	fmt.Fprintf(&b, "- %s\n", r.settleNote())
	fmt.Fprintf(&b, "- wrk: %d threads, %d connections (herd: 64), %s per run, on loopback; stub AS latency %s per call, https with a self-signed certificate\n",
		r.o.threads, r.o.connections, r.o.duration, r.o.latency)
	fmt.Fprintf(&b, "- %d round(s) of every scenario on every server, in alternating order; req/s, latencies and CPU are medians over the rounds, counts are sums\n", r.o.rounds)
	b.WriteString("- Order: every round of every scenario on the servers other than Apache first, then Apache's rounds, so that the load Apache leaves does not land on the others; " +
		"in a round, the servers of its group run back to back. The ratios of the main tables are ratios of medians; " +
		"the per-round tables compare each server with `bare` in the same round, and give the median, minimum and maximum of those ratios\n")
	b.WriteString("- Servers: `bare` = net/http with the trivial handler; `introspect` = the same behind this library's middleware " +
		"(LRU cache of 100,000, defaults otherwise; HTTP/2 to the AS, which Go negotiates by default); `introspect-h1` = the same, HTTP/1.1 to the AS; `apache-bare` = Apache httpd (event MPM, 2×64 threads) serving the same 3-byte body; " +
		"`apache-oidc` = the same Apache with mod_auth_openidc as OAuth 2.0 resource server (introspection over https, shm cache, `OIDCCacheEncrypt On`)\n")
	if r.o.proxy == "on" || r.o.oathkeeper != "" {
		b.WriteString("- In front of one backend (a `bare` server): `httputil-rp` = a bare `httputil.ReverseProxy` (256 idle connections to the backend); " +
			"`proxy-reverse` = introspect-proxy in reverse-proxy mode (`-upstream`, defaults otherwise, access log off); " +
			"`nginx` = nginx (2 workers, keep-alive to the backend) alone; `nginx+proxy-fwd` = the same nginx with `auth_request` to introspect-proxy in forward-auth mode (keep-alive to both); `nginx+proxy-unix` = the same with the proxy on a unix socket (`-listen unix:PATH`); " +
			"`apache-rp` and `apache-oidc-rp` = the Apache above with mod_proxy to the backend, without and after mod_auth_openidc; " +
			oathkeeperNote(r.o.oathkeeper) + floorsNote(r.o.floors) +
			"Their CPU µs/req counts every process of the chain: the backend's, nginx's workers and the forward-auth proxy's\n")
	}
	b.WriteString("- CPU µs/req: user+system time of the server's processes (`/proc/<pid>/stat`) over the run, divided by the requests; " +
		"the stub AS and wrk are not counted. AS calls, distinct tokens and new connections are counted at the stub during the scenario (warm-up included)\n")
	if apacheNote != "" {
		fmt.Fprintf(&b, "- %s\n", apacheNote)
	}
	b.WriteString("\n")
	bare := map[string]result{}
	byKey := map[string]result{}
	for _, res := range results {
		byKey[res.scenario+"/"+res.server] = res
		if res.server == "bare" {
			bare[res.scenario] = res
		}
	}
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "## %s: %s\n\n", sc.name, sc.desc)
		b.WriteString("| server | req/s | p50 | p99 | CPU µs/req | req/s vs bare | CPU vs bare | AS calls | distinct tokens | calls/token | new AS conns | non-2xx |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		var servers []string
		for _, res := range results {
			if res.scenario != sc.name {
				continue
			}
			servers = append(servers, res.server)
			br := bare[sc.name]
			perTok := "–"
			if res.as.Distinct > 0 {
				perTok = fmt.Sprintf("%.2f", float64(res.as.Calls)/float64(res.as.Distinct))
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.1f | %s | %s | %d | %d | %s | %d | %d |\n",
				res.server, res.rps, dur(res.p50), dur(res.p99), res.cpuPerReq,
				ratio(res.rps, br.rps), ratio(res.cpuPerReq, br.cpuPerReq),
				res.as.Calls, res.as.Distinct, perTok, res.as.NewConns, res.non2xx+res.sockErrs)
		}
		b.WriteString("\n")
		writeRounds(&b, figs, servers, sc.name, r.loadCell)
	}
	// The targets, one row each. The first two: behind the middleware, a
	// cached token serves at least 0.9× the bare server's requests/s at no
	// more than 1.1× its CPU per request. Where Apache ran, the middleware
	// also serves at least 2× mod_auth_openidc's requests/s at no more than
	// 0.4× its CPU per request. Then one AS call per distinct token (for an
	// invalid token, at most one per NegativeTTL window), and misses that
	// reuse keep-alive connections to the AS.
	b.WriteString("## Targets\n\n| target | measured | met |\n| --- | --- | --- |\n")
	check := func(name, measured string, ok bool) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	if c, ok := byKey["cached/introspect"]; ok {
		br := bare["cached"]
		rs, cs := ratioSpread(figs, "cached", "introspect")
		check("cached token: ≥ 90 % of bare req/s", ratio(c.rps, br.rps)+rangeNote(rs), c.rps >= 0.9*br.rps)
		check("cached token: ≤ 1.1× bare CPU/req", ratio(c.cpuPerReq, br.cpuPerReq)+rangeNote(cs), c.cpuPerReq <= 1.1*br.cpuPerReq)
		if a, ok := byKey["cached/apache-oidc"]; ok {
			check("cached token: ≥ 2× mod_auth_openidc req/s", ratio(c.rps, a.rps), c.rps >= 2*a.rps)
			check("cached token: ≤ 0.4× mod_auth_openidc CPU/req", ratio(c.cpuPerReq, a.cpuPerReq), c.cpuPerReq <= 0.4*a.cpuPerReq)
		}
	}
	r.proxyChecks(check, byKey)
	for _, srv := range []string{"introspect", "introspect-h1", "proxy-reverse", "nginx+proxy-fwd", "nginx+proxy-unix"} {
		for _, sc := range scenarios {
			res, ok := byKey[sc.name+"/"+srv]
			if !ok || res.as.Distinct == 0 {
				continue
			}
			if sc.name == "invalid" {
				windows := int64(r.o.rounds) * (int64(math.Ceil(r.o.duration.Seconds()/introspect.DefaultNegativeTTL.Seconds())) + 1)
				check(fmt.Sprintf("%s, invalid token: ≤ 1 AS call per NegativeTTL (%s): ≤ %d in %d × %s", srv, introspect.DefaultNegativeTTL, windows, r.o.rounds, r.o.duration),
					fmt.Sprintf("%d calls", res.as.Calls), res.as.Calls <= windows)
				continue
			}
			check(fmt.Sprintf("%s, %s: AS calls per distinct token = 1.00", srv, sc.name),
				fmt.Sprintf("%.2f (%d/%d)", float64(res.as.Calls)/float64(res.as.Distinct), res.as.Calls, res.as.Distinct), res.as.Calls == res.as.Distinct)
		}
		if res, ok := byKey["cycled/"+srv]; ok {
			check(srv+", cycled: misses reuse keep-alive connections (new AS conns ≤ 10 % of calls)",
				fmt.Sprintf("%d new connections for %d calls", res.as.NewConns, res.as.Calls), res.as.NewConns*10 <= res.as.Calls)
		}
	}
	if notes := proxyNotes(byKey, scenarios); notes != "" {
		b.WriteString("\n" + notes)
	}
	b.WriteString("\n")
	return b.String()
}

// settleNote describes the waits before the rounds.
// floorsNote describes the floors of one hop when they run.
func floorsNote(floors string) string {
	if floors != "on" {
		return ""
	}
	return "floors of one hop (no token check; measurement code, see bench/cmd/server/floor.go): " +
		"`floor-rp` = `httputil.ReverseProxy` with a copy-buffer pool and 256 idle connections, as introspect-proxy's, on net/http's server and transport; " +
		"`floor-rp-rt` = the same with a transport that writes each request and reads its answer on the asking goroutine (http.ReadResponse); " +
		"`floor-rp-loop` = that, served by a plain loop over http.ReadRequest on each connection instead of net/http's server; " +
		"`nginx+floor-auth` = nginx with `auth_request` to a trivial handler (200 and one header) on net/http's server; " +
		"`nginx+floor-auth-loop` = the same handler on the loop; " +
		"`nginx+floor-auth-raw` = a loop that parses nothing: it reads to the end of each request's header block and writes one canned 200 with one header, the floor of any forward-auth endpoint; "
}

func (r *runner) settleNote() string {
	if r.o.settleMax == 0 {
		return "Before each round: no wait for the load to settle (-settle-max 0); the per-round tables give the 1-minute load average each round started at"
	}
	maxed := 0
	for _, p := range r.passes {
		if p.maxed {
			maxed++
		}
	}
	return fmt.Sprintf("Before each round: a wait until the 1-minute load average is below %.2f (%.2f per core), at most %s; "+
		"%d of %d waits ended at the maximum with the load still higher; the per-round tables give the load each round started at",
		r.o.settleLoad, r.o.settleLoad/float64(runtime.NumCPU()), r.o.settleMax, maxed, len(r.passes))
}

// waitNote is what the wait before a round adds to its load average: how
// long it took, and whether it ended at the maximum.
func waitNote(s settled) string {
	switch {
	case s.maxed:
		return fmt.Sprintf(" (waited %s: the maximum, not settled)", s.waited.Round(time.Second))
	case s.waited >= time.Second:
		return fmt.Sprintf(" (waited %s)", s.waited.Round(time.Second))
	}
	return ""
}

// loadCell is the 1-minute load average a pass started at, and its wait.
func (r *runner) loadCell(i int) string {
	if i < 0 || i >= len(r.passes) {
		return "?"
	}
	s := r.passes[i].settled
	switch {
	case s.maxed:
		return fmt.Sprintf("%.2f (not settled in %s)", s.load[0], s.waited.Round(time.Second))
	case s.waited >= time.Second:
		return fmt.Sprintf("%.2f (after %s)", s.load[0], s.waited.Round(time.Second))
	}
	return fmt.Sprintf("%.2f", s.load[0])
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func dur(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

func firstLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if l == "" {
		return name + " (not found)"
	}
	if i := strings.Index(l, " ["); i > 0 {
		l = l[:i]
	}
	return l
}

func apacheVersion() string {
	v := firstLine("apache2", "-v")
	v = strings.TrimPrefix(v, "Server version: ")
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "libapache2-mod-auth-openidc").Output()
	if err == nil && len(out) > 0 {
		v += ", mod_auth_openidc " + string(out)
	}
	return v
}
