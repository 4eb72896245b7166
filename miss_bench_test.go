package introspect_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
)

// missStub is the authorization server of BenchmarkMiss: it checks the Basic
// credentials, answers every token starting with "valid-" as active and
// counts the calls. It does what bench/stub does, in the root module.
type missStub struct{ calls atomic.Int64 }

// missAnswer is the answer of missStub, and what http-post-json decodes.
type missAnswer struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	Issuer    string `json:"iss"`
	TokenType string `json:"token_type"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	Audience  string `json:"aud"`
}

func (s *missStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	id, secret, _ := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if id != rsClientID || secret != rsSecret {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	token := r.PostForm.Get("token")
	if !strings.HasPrefix(token, "valid-") {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	now := time.Now()
	_ = json.NewEncoder(w).Encode(missAnswer{
		Active: true, Subject: "user-" + strconv.Itoa(len(token)), ClientID: "app",
		Scope: "read write", Issuer: "https://as.bench.test", TokenType: "Bearer",
		Expiry: now.Add(time.Hour).Unix(), IssuedAt: now.Add(-time.Minute).Unix(), Audience: "api",
	})
}

// missTokens numbers the tokens of BenchmarkMiss, so that none is reused
// across its runs (a reused token would hit the cache).
var missTokens atomic.Int64

// BenchmarkMiss is the cache-miss path: every request carries a token never
// seen before, so each makes one call over loopback HTTP to an in-process
// stub (no added latency), in parallel. The floors run in the same process
// against the same stub: http-post is a bare http.Client POST of the same
// form with Basic credentials, on a transport pooled like the library's
// default, its answer read but not decoded; http-post-json also unmarshals
// it into a struct (the least a client must do); harness is the cost of a
// new token and request per operation, which the library's figures include
// and the floors do not. uncached is the middleware without a cache (the
// call path); cache-1k has a full cache of 1,000 entries (each miss evicts
// one); cache-100k a cache growing by one entry per miss.
//
//	go test -run '^$' -bench BenchmarkMiss -benchmem -count 6
//
// cpu-ns/op is the process's CPU time per operation, the stub's included.
func BenchmarkMiss(b *testing.B) {
	stub := &missStub{}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	endpoint := srv.URL + "/introspect"

	for _, decode := range []bool{false, true} {
		name := "http-post"
		if decode {
			name = "http-post-json"
		}
		b.Run(name, func(b *testing.B) {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 256
			hc := &http.Client{Transport: t}
			defer hc.CloseIdleConnections()
			b.ReportAllocs()
			runtime.GC()
			b.ResetTimer()
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := missPost(hc, endpoint, fmt.Sprintf("valid-miss-%d", missTokens.Add(1)), decode); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("harness", func(b *testing.B) { missRun(b, benchHandler) })
	for _, tc := range []struct {
		name string
		size int // 0: no cache
	}{{"uncached", 0}, {"cache-1k", 1000}, {"cache-100k", 100_000}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := []introspect.Option{
				introspect.WithEndpoint(endpoint),
				introspect.WithClientCredentials(rsClientID, rsSecret),
			}
			if tc.size > 0 {
				c, err := introspect.NewLRUCache(tc.size)
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, introspect.WithCache(c))
			}
			mw, err := introspect.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer mw.Close()
			before := stub.calls.Load()
			missRun(b, mw.Handler(benchHandler))
			b.ReportMetric(float64(stub.calls.Load()-before)/float64(b.N), "AS-calls/op")
		})
	}
}

// missRun serves b.N requests through h in parallel, each with a new token,
// and fails on any status but 200.
func missRun(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	runtime.GC() // what an earlier benchmark left is not collected on this one's time
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		w := &statusWriter{h: make(http.Header)}
		for pb.Next() {
			r, _ := http.NewRequest(http.MethodGet, "http://api.example/orders", nil)
			r.Header.Set("Authorization", "Bearer valid-miss-"+strconv.FormatInt(missTokens.Add(1), 10))
			w.status = http.StatusOK
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// statusWriter is a ResponseWriter that keeps the status and allocates
// nothing.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(s int)           { w.status = s }

// missPost is the floor of the miss path: one form POST with Basic
// credentials, the answer read and, with decode, unmarshalled into a struct.
func missPost(hc *http.Client, endpoint, token string, decode bool) error {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form))
	if err != nil {
		return err
	}
	req.SetBasicAuth(url.QueryEscape(rsClientID), url.QueryEscape(rsSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && decode {
		var a missAnswer
		if err = json.Unmarshal(body, &a); err == nil && !a.Active {
			err = fmt.Errorf("inactive")
		}
	}
	return err
}
