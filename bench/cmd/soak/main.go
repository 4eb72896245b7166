// Command soak is the driver of bench/soak.sh: a steady stream of requests,
// for a set time, at a server behind the introspect middleware (its own
// process, started from -server-bin) whose authorization server (the stub,
// in this process) fails a share of its calls. It checks every answer and
// follows the server's heap.
//
// Answers that count as wrong: 200 for a revoked or never-issued token, or for
// a token past its exp (plus the leeway); 401 for a valid token. A valid token
// may get 503 when the authorization server failed. Everything but 200, 401
// and 503 is counted apart, as an error.
//
//	soak -server-bin /tmp/bin/server -duration 10m -rate 1000 -tokens 10000 -fail-rate 0.05
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/bench/internal/benchutil"
	"github.com/introspect-go/introspect/bench/stub"
)

type options struct {
	serverBin string
	duration  time.Duration
	rate      int
	tokens    int
	failRate  float64
	latency   time.Duration
	workers   int
	out       string
	command   string
}

func main() {
	var o options
	flag.StringVar(&o.serverBin, "server-bin", "", "path of the bench server binary (bench/cmd/server)")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send requests")
	flag.IntVar(&o.rate, "rate", 1000, "requests per second, steady")
	flag.IntVar(&o.tokens, "tokens", 10_000, "distinct valid tokens")
	flag.Float64Var(&o.failRate, "fail-rate", 0.05, "fraction of introspection calls the stub answers 503")
	flag.DurationVar(&o.latency, "latency", 2*time.Millisecond, "stub latency per introspection call")
	flag.IntVar(&o.workers, "workers", 64, "concurrent client connections")
	flag.StringVar(&o.out, "out", "", "Markdown summary file (optional)")
	flag.StringVar(&o.command, "command", "make soak", "the command to quote in the summary")
	flag.Parse()
	log.SetPrefix("soak: ")
	log.SetFlags(log.Ltime)
	if o.serverBin == "" || o.duration <= 0 || o.rate <= 0 || o.tokens <= 0 || o.workers <= 0 {
		log.Fatal("need -server-bin and positive -duration, -rate, -tokens, -workers")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wrong, err := run(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	if wrong > 0 {
		log.Fatalf("%d wrong answers", wrong)
	}
}

// kinds of token sent.
const (
	kindValid    = iota // active for the whole run
	kindExpiring        // active until its exp, within the run
	kindRevoked         // inactive at the authorization server
	kindNever           // never issued, a new one each time
	nKinds
)

var kindNames = [nKinds]string{"valid", "expiring", "revoked", "never-issued"}

// tally counts answers per kind and status class.
type tally struct {
	byKind [nKinds]struct{ ok, unauthorized, unavailable, other atomic.Int64 }
	wrong  atomic.Int64
	errs   atomic.Int64 // transport errors
	sent   atomic.Int64
	late   atomic.Int64 // requests the pacer could not hand to a worker in time
	first  sync.Map     // first wrong answers, for the log: description -> struct{}
}

type job struct {
	token string
	kind  int
	exp   time.Time // kindExpiring
}

func run(ctx context.Context, o options) (int64, error) {
	nonce := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	start := time.Now()

	// The stub authorization server, in this process.
	as := stub.New(stub.Config{ClientID: "rs", ClientSecret: "rs-secret", Issuer: "https://as.bench.test",
		Latency: o.latency, FailRate: o.failRate})
	asLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	asSrv := &http.Server{Handler: as, ConnState: as.ConnState, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = asSrv.Serve(asLn) }()
	defer asSrv.Close()

	// The server under test, its own process.
	addr, adminAddr := benchutil.FreeAddr(), benchutil.FreeAddr()
	cmd := exec.Command(o.serverBin, "-mode", "introspect", "-addr", addr, "-admin", adminAddr,
		"-as", "http://"+asLn.Addr().String()+"/introspect", "-timeout", "2s")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer benchutil.Stop(cmd)
	admin := "http://" + adminAddr + "/stats"
	if err := waitUp(ctx, admin); err != nil {
		return 0, err
	}
	if err := waitUp(ctx, "http://"+addr+"/"); err != nil {
		return 0, err
	}

	// The tokens: a tenth of the valid ones expire during the run.
	type tok struct {
		s   string
		exp time.Time
	}
	valid := make([]tok, o.tokens)
	for i := range valid {
		if i%10 == 0 {
			exp := start.Add(20*time.Second + time.Duration(rand.Int64N(int64(o.duration))))
			valid[i] = tok{s: fmt.Sprintf("valid-exp%d-s%d-%s", exp.Unix(), i, nonce), exp: time.Unix(exp.Unix(), 0)}
		} else {
			valid[i] = tok{s: fmt.Sprintf("valid-s%d-%s", i, nonce)}
		}
	}
	revoked := make([]string, max(o.tokens/20, 1))
	for i := range revoked {
		revoked[i] = fmt.Sprintf("revoked-r%d-%s", i, nonce)
	}

	var t tally
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, MaxIdleConns: o.workers, IdleConnTimeout: time.Minute},
	}
	url := "http://" + addr + "/api"
	jobs := make(chan job, o.rate)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				check(ctx, client, url, j, &t)
			}
		}()
	}

	// Pacer: rate requests per second, checked every 1 ms; 90 % valid tokens,
	// 5 % revoked, 5 % never issued.
	var samples []sample
	sctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	report := time.NewTicker(10 * time.Second)
	defer report.Stop()
	gcEvery := max(o.duration/10, 10*time.Second)
	nextGC := start.Add(gcEvery)
	var dispatched int64
	log.Printf("%d req/s for %s, %d valid tokens (a tenth expiring), AS fails %.0f %% of calls", o.rate, o.duration, o.tokens, o.failRate*100)
loop:
	for {
		select {
		case <-sctx.Done():
			break loop
		case now := <-tick.C:
			// Owed requests follow the clock, not the ticks: a late tick
			// sends more, so the rate holds on a busy machine.
			owed := int64(float64(o.rate)*now.Sub(start).Seconds()) - dispatched
			for ; owed > 0; owed-- {
				dispatched++
				var j job
				switch p := rand.IntN(100); {
				case p < 90:
					v := valid[rand.IntN(len(valid))]
					j = job{token: v.s, kind: kindValid}
					if !v.exp.IsZero() {
						j.kind, j.exp = kindExpiring, v.exp
					}
				case p < 95:
					j = job{token: revoked[rand.IntN(len(revoked))], kind: kindRevoked}
				default:
					j = job{token: fmt.Sprintf("never-%x-%s", rand.Uint64(), nonce), kind: kindNever}
				}
				select {
				case jobs <- j:
				default:
					t.late.Add(1)
				}
			}
			if now.After(nextGC) {
				nextGC = nextGC.Add(gcEvery)
				if s, err := stats(ctx, admin, true); err == nil {
					samples = append(samples, sample{at: now.Sub(start), s: s})
				}
			}
		case <-report.C:
			s, _ := stats(ctx, admin, false)
			a := as.Stats()
			log.Printf("%5.0fs sent %d, wrong %d, errors %d, late %d | heap %.1f MiB (peak %.1f), goroutines %d | AS calls %d, failed %d, new conns %d",
				time.Since(start).Seconds(), t.sent.Load(), t.wrong.Load(), t.errs.Load(), t.late.Load(),
				mib(s.HeapAlloc), mib(s.PeakHeap), s.Goroutines, a.Calls, a.Failures, a.NewConns)
		}
	}
	close(jobs)
	wg.Wait()
	client.CloseIdleConnections()
	elapsed := time.Since(start)
	final, err := stats(ctx, admin, true)
	if err != nil {
		return t.wrong.Load(), err
	}
	samples = append(samples, sample{at: elapsed, s: final})
	summary := summarize(o, &t, as.Stats(), samples, final, elapsed)
	fmt.Print(summary)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return t.wrong.Load(), err
		}
		if err := os.WriteFile(o.out, []byte(summary), 0o644); err != nil {
			return t.wrong.Load(), err
		}
	}
	return t.wrong.Load(), nil
}

// check sends one request and judges the answer.
func check(ctx context.Context, client *http.Client, url string, j job, t *tally) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+j.token)
	sent := time.Now()
	t.sent.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.errs.Add(1)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	got := time.Now()
	k := &t.byKind[j.kind]
	switch resp.StatusCode {
	case http.StatusOK:
		k.ok.Add(1)
	case http.StatusUnauthorized:
		k.unauthorized.Add(1)
	case http.StatusServiceUnavailable:
		k.unavailable.Add(1)
	default:
		k.other.Add(1)
		t.errs.Add(1)
		return
	}
	var bad bool
	switch j.kind {
	case kindValid:
		bad = resp.StatusCode == http.StatusUnauthorized
	case kindExpiring:
		// Active before exp; refused once exp plus the leeway has passed.
		// Around exp either answer is right: the second of the request is
		// not the second of the check.
		switch {
		case got.Before(j.exp.Add(-time.Second)):
			bad = resp.StatusCode == http.StatusUnauthorized
		case sent.After(j.exp.Add(introspect.DefaultLeeway + time.Second)):
			bad = resp.StatusCode == http.StatusOK
		}
	case kindRevoked, kindNever:
		bad = resp.StatusCode == http.StatusOK
	}
	if bad {
		t.wrong.Add(1)
		d := fmt.Sprintf("%s token got %d", kindNames[j.kind], resp.StatusCode)
		if _, seen := t.first.LoadOrStore(d, struct{}{}); !seen {
			log.Printf("WRONG: %s", d)
		}
	}
}

type sample struct {
	at time.Duration
	s  benchutil.ServerStats
}

// stats reads the server's figures; gc makes it collect first, so HeapAlloc
// is the live heap.
func stats(ctx context.Context, url string, gc bool) (benchutil.ServerStats, error) {
	var s benchutil.ServerStats
	if gc {
		url += "?gc=1"
	}
	return s, benchutil.GetJSON(ctx, url, &s)
}

func summarize(o options, t *tally, a stub.Stats, samples []sample, final benchutil.ServerStats, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Soak (`%s`)\n\n", o.command)
	fmt.Fprintf(&b, "- Date: %s; machine: %d cores, %s; load average at the end: %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), benchutil.LoadAvg())
	fmt.Fprintf(&b, "- %s at %d req/s (%d sent, %.0f req/s achieved, %d late); %d valid tokens, a tenth of them expiring during the run; 5 %% of requests with %d revoked tokens, 5 %% with never-issued ones\n",
		elapsed.Round(time.Second), o.rate, t.sent.Load(), float64(t.sent.Load())/elapsed.Seconds(), t.late.Load(), o.tokens, max(o.tokens/20, 1))
	fmt.Fprintf(&b, "- Server: bench/cmd/server -mode introspect (LRU cache of 100,000, defaults otherwise, call timeout 2 s); stub AS over loopback http, %s latency, failing %.0f %% of calls with 503\n\n",
		o.latency, o.failRate*100)
	fmt.Fprintf(&b, "**Wrong answers: %d.** Transport errors and unexpected statuses: %d.\n\n", t.wrong.Load(), t.errs.Load())
	b.WriteString("| token kind | 200 | 401 | 503 | other |\n| --- | ---: | ---: | ---: | ---: |\n")
	for k := range nKinds {
		c := &t.byKind[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", kindNames[k], c.ok.Load(), c.unauthorized.Load(), c.unavailable.Load(), c.other.Load())
	}
	fmt.Fprintf(&b, "\nAuthorization server: %d calls, %d failed on purpose, %d distinct tokens, at most %d calls for one token, %d new connections.\n\n",
		a.Calls, a.Failures, a.Distinct, a.MaxPerToken, a.NewConns)
	fmt.Fprintf(&b, "Server heap: peak HeapAlloc %.1f MiB (sampled every 100 ms); goroutines peak %d, at the end %d. Live heap after a forced GC:\n\n",
		mib(final.PeakHeap), final.PeakRoutines, final.Goroutines)
	b.WriteString("| at | live heap | goroutines | GCs |\n| ---: | ---: | ---: | ---: |\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %.1f MiB | %d | %d |\n", s.at.Round(time.Second), mib(s.s.HeapAlloc), s.s.Goroutines, s.s.NumGC)
	}
	b.WriteString("\n")
	return b.String()
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// waitUp polls url until it answers at all, for at most 15 s.
func waitUp(ctx context.Context, url string) error {
	if benchutil.WaitHTTP(ctx, url, nil, true) != nil {
		return errors.New(url + " did not answer")
	}
	return nil
}
