// Package stub is a small RFC 7662 authorization server for benchmarks: it
// answers from a naming rule instead of a token store, so load generators can
// make up any number of tokens, and it counts what a benchmark wants to know
// (introspection calls per distinct token, failures, new connections).
//
// Token rule: a token starting with "valid-" is active; one starting with
// "valid-exp<unix>-" is active until that Unix time; every other token is
// inactive ({"active":false}).
package stub

import (
	"crypto/subtle"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures an [AS].
type Config struct {
	// ClientID and ClientSecret are the only client credentials accepted,
	// with client_secret_basic or client_secret_post.
	ClientID, ClientSecret string
	// Issuer is the "iss" of active answers.
	Issuer string
	// Latency delays every introspection answer.
	Latency time.Duration
	// FailRate is the fraction of introspection calls answered 503
	// temporarily_unavailable, chosen at random (0 to 1).
	FailRate float64
	// TokenTTL is the lifetime ("exp" − now) of active tokens that carry no
	// expiry of their own. Default 1 h.
	TokenTTL time.Duration
}

// AS is the stub authorization server. Its zero value is not usable: call
// [New].
type AS struct {
	cfg Config

	calls    atomic.Int64
	failures atomic.Int64
	conns    atomic.Int64

	mu       sync.Mutex // guards perToken
	perToken map[string]int64
}

// New returns a stub configured by cfg.
func New(cfg Config) *AS {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	return &AS{cfg: cfg, perToken: make(map[string]int64)}
}

// Stats are the counters of an [AS] since its start or last reset.
type Stats struct {
	Calls       int64 `json:"calls"`         // introspection requests received
	Failures    int64 `json:"failures"`      // of which answered 503 on purpose
	Distinct    int64 `json:"distinct"`      // distinct tokens introspected
	MaxPerToken int64 `json:"max_per_token"` // most calls for any one token
	NewConns    int64 `json:"new_conns"`     // TCP connections accepted
}

// Stats returns the counters.
func (a *AS) Stats() Stats {
	s := Stats{Calls: a.calls.Load(), Failures: a.failures.Load(), NewConns: a.conns.Load()}
	a.mu.Lock()
	defer a.mu.Unlock()
	s.Distinct = int64(len(a.perToken))
	for _, n := range a.perToken {
		s.MaxPerToken = max(s.MaxPerToken, n)
	}
	return s
}

// CallsFor returns the number of introspection calls for token.
func (a *AS) CallsFor(token string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.perToken[token]
}

// Reset sets every counter to zero.
func (a *AS) Reset() {
	a.mu.Lock()
	a.perToken = make(map[string]int64)
	a.mu.Unlock()
	a.calls.Store(0)
	a.failures.Store(0)
	a.conns.Store(0)
}

// ConnState counts new connections; set it as the http.Server's ConnState.
func (a *AS) ConnState(_ net.Conn, s http.ConnState) {
	if s == http.StateNew {
		a.conns.Add(1)
	}
}

// ServeHTTP answers introspection requests (POST, form-encoded) on any path.
func (a *AS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	a.mu.Lock()
	a.perToken[token]++
	a.mu.Unlock()
	if a.cfg.Latency > 0 {
		t := time.NewTimer(a.cfg.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if !a.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="stub"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if a.cfg.FailRate > 0 && rand.Float64() < a.cfg.FailRate {
		a.failures.Add(1)
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	now := time.Now()
	exp, active := Expiry(token, now.Add(a.cfg.TokenTTL))
	if !active || !now.Before(exp) {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_ = json.NewEncoder(w).Encode(answer{
		Active: true, Subject: "user-" + strconv.Itoa(len(token)), ClientID: "app",
		Scope: "read write", Issuer: a.cfg.Issuer, TokenType: "Bearer",
		Expiry: exp.Unix(), IssuedAt: now.Add(-time.Minute).Unix(), Audience: "api",
	})
}

type answer struct {
	Active    bool   `json:"active"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	Issuer    string `json:"iss,omitempty"`
	TokenType string `json:"token_type"`
	Expiry    int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	Audience  string `json:"aud"`
}

// Expiry applies the token rule: it reports whether token is one the stub
// issued, and its expiry (def when the token carries none).
func Expiry(token string, def time.Time) (time.Time, bool) {
	rest, ok := strings.CutPrefix(token, "valid-")
	if !ok {
		return time.Time{}, false
	}
	if s, ok := strings.CutPrefix(rest, "exp"); ok {
		if n, _, ok := strings.Cut(s, "-"); ok {
			if unix, err := strconv.ParseInt(n, 10, 64); err == nil {
				return time.Unix(unix, 0), true
			}
		}
	}
	return def, true
}

func (a *AS) authenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(a.cfg.ClientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.ClientSecret)) == 1
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
}

// AdminHandler serves the counters: GET /stats (JSON [Stats]) and POST
// /reset.
func (a *AS) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Stats())
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		a.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
