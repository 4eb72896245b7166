package stub

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAS(t *testing.T) {
	as := New(Config{ClientID: "rs", ClientSecret: "s e/cret"})
	srv := httptest.NewUnstartedServer(as)
	srv.Config.ConnState = as.ConnState
	srv.Start()
	defer srv.Close()
	past := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	tests := []struct {
		name, token, secret string
		status              int
		active              bool
	}{
		{name: "valid", token: "valid-a", secret: "s e/cret", status: 200, active: true},
		{name: "valid with exp ahead", token: "valid-exp" + future + "-b", secret: "s e/cret", status: 200, active: true},
		{name: "expired", token: "valid-exp" + past + "-c", secret: "s e/cret", status: 200},
		{name: "unknown", token: "other", secret: "s e/cret", status: 200},
		{name: "wrong secret", token: "valid-a", secret: "nope", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/introspect",
				strings.NewReader(url.Values{"token": {tt.token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("rs", url.QueryEscape(tt.secret))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			var got struct {
				Active bool `json:"active"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Active != tt.active {
				t.Errorf("active %v, want %v", got.Active, tt.active)
			}
		})
	}
	s := as.Stats()
	if s.Calls != 5 || s.Distinct != 4 || s.MaxPerToken != 2 || s.NewConns < 1 {
		t.Errorf("stats %+v, want 5 calls, 4 distinct tokens, at most 2 for one, at least 1 connection", s)
	}
	if n := as.CallsFor("valid-a"); n != 2 {
		t.Errorf("CallsFor = %d, want 2", n)
	}
	as.Reset()
	if s := as.Stats(); s != (Stats{}) {
		t.Errorf("after Reset: %+v", s)
	}
}

func TestFailRate(t *testing.T) {
	as := New(Config{ClientID: "rs", ClientSecret: "x", FailRate: 1})
	r := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader("token=valid-a"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("rs", "x")
	w := httptest.NewRecorder()
	as.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || as.Stats().Failures != 1 {
		t.Errorf("status %d, failures %d; want 503 and 1", w.Code, as.Stats().Failures)
	}
}
