package conformance

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

type dpopAnswer struct {
	status     int
	challenges []string
	nonce      string
	body       string
}

// sendDPoP sends a GET to url with the token under scheme and the proofs.
func sendDPoP(t *testing.T, url, scheme, token string, proofs []string) dpopAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", scheme+" "+token)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return dpopAnswer{resp.StatusCode, resp.Header.Values("WWW-Authenticate"), resp.Header.Get("DPoP-Nonce"), string(b)}
}

func newDPoPKey(t *testing.T) *introspecttest.DPoPKey {
	t.Helper()
	k, err := introspecttest.NewDPoPKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RunDPoP sends DPoP-bound tokens (RFC 9449) through router(mw), which
// serves the routes of [RunHTTP], and through [Core], each on a real server
// so that the proofs' htu is the URL called: a valid proof passes, a wrong
// one is refused with the core's answer, a DPoP challenge naming the error
// among them.
func RunDPoP(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv)
	adapter := httptest.NewServer(router(mw))
	t.Cleanup(adapter.Close)
	core := httptest.NewServer(Core(mw))
	t.Cleanup(core.Close)
	key, other := newDPoPKey(t), newDPoPKey(t)
	tok := srv.Issue(key.Bind(introspecttest.Claims{Subject: "alice"}))

	tests := []struct {
		name   string
		scheme string
		proofs func(t *testing.T, url string) []string
		status int
		code   string // the error of the challenge of the request's scheme
	}{
		{"valid proof", "DPoP", func(_ *testing.T, url string) []string {
			return []string{key.Proof(http.MethodGet, url, tok)}
		}, http.StatusOK, ""},
		{"proof of another key", "DPoP", func(_ *testing.T, url string) []string {
			return []string{other.Proof(http.MethodGet, url, tok)}
		}, http.StatusUnauthorized, "invalid_token"},
		{"replayed proof", "DPoP", func(t *testing.T, url string) []string {
			p := key.Proof(http.MethodGet, url, tok)
			if got := sendDPoP(t, url, "DPoP", tok, []string{p}); got.status != http.StatusOK {
				t.Fatalf("first use: %+v", got)
			}
			return []string{p}
		}, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"wrong htm", "DPoP", func(_ *testing.T, url string) []string {
			return []string{key.Proof(http.MethodPost, url, tok)}
		}, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"wrong htu", "DPoP", func(_ *testing.T, url string) []string {
			return []string{key.Proof(http.MethodGet, url+"/other", tok)}
		}, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"stale iat", "DPoP", func(_ *testing.T, url string) []string {
			return []string{key.Proof(http.MethodGet, url, tok, introspecttest.WithProofIssuedAt(time.Now().Add(-time.Hour)))}
		}, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"no proof", "DPoP", func(*testing.T, string) []string { return nil }, http.StatusUnauthorized, "invalid_dpop_proof"},
		{"DPoP-bound token as Bearer", "Bearer", func(_ *testing.T, url string) []string {
			return []string{key.Proof(http.MethodGet, url, tok)}
		}, http.StatusUnauthorized, "invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := adapter.URL + PathMe
			got := sendDPoP(t, url, tc.scheme, tok, tc.proofs(t, url))
			if got.status != tc.status {
				t.Fatalf("status = %d, want %d; %+v", got.status, tc.status, got)
			}
			if tc.status == http.StatusOK {
				var s Seen
				if err := json.Unmarshal([]byte(got.body), &s); err != nil || s.Subject != "alice" || !s.OnRequest {
					t.Errorf("the handler saw %q (%v), want alice on the request", got.body, err)
				}
				return
			}
			url = core.URL + PathMe
			want := sendDPoP(t, url, tc.scheme, tok, tc.proofs(t, url))
			if strings.Join(got.challenges, "\n") != strings.Join(want.challenges, "\n") || got.body != want.body || got.status != want.status {
				t.Errorf("the adapter answers %+v, the core %+v", got, want)
			}
			var dpop string
			for _, c := range got.challenges {
				if strings.HasPrefix(c, "DPoP ") {
					dpop = c
				}
			}
			if !strings.Contains(dpop, `algs="`) {
				t.Errorf("challenges %q, want a DPoP challenge with the algorithms", got.challenges)
			}
			if tc.scheme == "DPoP" && !strings.Contains(dpop, `error="`+tc.code+`"`) {
				t.Errorf("DPoP challenge %q, want error %q", dpop, tc.code)
			}
			if strings.Contains(strings.Join(got.challenges, " ")+got.body, tok) {
				t.Error("the answer contains the token")
			}
		})
	}
}

// RunDPoPNonce checks that the DPoP-Nonce of a use_dpop_nonce refusal
// reaches the client through router(mw), which serves the routes of
// [RunHTTP], and that the proof with it passes.
func RunDPoPNonce(t *testing.T, router func(mw *introspect.Middleware) http.Handler) {
	t.Helper()
	srv := NewServer(t)
	mw := NewMiddleware(t, srv, introspect.WithDPoP(introspect.DPoPRequired,
		introspect.WithDPoPNonces([]byte(strings.Repeat("n", 32)), time.Minute)))
	api := httptest.NewServer(router(mw))
	t.Cleanup(api.Close)
	key := newDPoPKey(t)
	tok := srv.Issue(key.Bind(introspecttest.Claims{Subject: "alice"}))
	url := api.URL + PathMe

	got := sendDPoP(t, url, "DPoP", tok, []string{key.Proof(http.MethodGet, url, tok)})
	if got.status != http.StatusUnauthorized || got.nonce == "" || !strings.Contains(strings.Join(got.challenges, " "), `error="use_dpop_nonce"`) {
		t.Fatalf("a proof without a nonce: %+v, want 401 use_dpop_nonce with a DPoP-Nonce", got)
	}
	got = sendDPoP(t, url, "DPoP", tok, []string{key.Proof(http.MethodGet, url, tok, introspecttest.WithProofNonce(got.nonce))})
	if got.status != http.StatusOK {
		t.Fatalf("a proof with the nonce: %+v, want 200", got)
	}
}
