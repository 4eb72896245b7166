package introspect_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// dpopAPI serves mw in front of okHandler on a real server, so that the
// proofs' htu is the URL the client calls.
func dpopAPI(t *testing.T, mw *introspect.Middleware) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mw.Handler(okHandler))
	t.Cleanup(srv.Close)
	return srv
}

type dpopResult struct {
	status     int
	challenges []string
	nonce      string
	body       string
}

// callDPoP sends method to url with scheme and token, and the proof headers.
func callDPoP(t *testing.T, method, url, scheme, token string, proofs ...string) dpopResult {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return dpopResult{status: resp.StatusCode, challenges: resp.Header.Values("WWW-Authenticate"), nonce: resp.Header.Get("DPoP-Nonce"), body: b.String()}
}

func dpopKey(t *testing.T, alg string) *introspecttest.DPoPKey {
	t.Helper()
	k, err := introspecttest.NewDPoPKey(alg)
	require.NoError(t, err)
	return k
}

// A DPoP-bound token passes with a valid proof of its key, by the rules of
// RFC 9449, and fails every way a proof or its binding can be wrong.
func TestDPoPMiddleware(t *testing.T) {
	as := newAS(t)
	key, other := dpopKey(t, "ES256"), dpopKey(t, "ES256")
	bound := as.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"jkt": key.JKT()}})
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})
	mw := newMW(t, as, introspect.WithCache(newLRU(t, 100)))
	srv := dpopAPI(t, mw)
	url := srv.URL + "/api/orders"

	res := callDPoP(t, "GET", url, "DPoP", bound, key.Proof("GET", url, bound))
	require.Equal(t, 200, res.status, res.body)
	assert.Equal(t, "sub=alice", res.body)
	calls := as.Calls()
	res = callDPoP(t, "GET", url+"?page=2", "DPoP", bound, key.Proof("GET", url, bound))
	assert.Equal(t, 200, res.status, "htu is compared without the query; the cached verdict, a new proof")
	assert.Equal(t, calls, as.Calls(), "the verdict came from the cache")

	replayed := key.Proof("POST", url, bound)
	require.Equal(t, 200, callDPoP(t, "POST", url, "DPoP", bound, replayed).status)

	tests := []struct {
		name   string
		method string
		scheme string
		token  string
		proofs []string
		code   string
	}{
		{"replayed proof", "POST", "DPoP", bound, []string{replayed}, "invalid_dpop_proof"},
		{"no proof", "GET", "DPoP", bound, nil, "invalid_dpop_proof"},
		{"two proofs", "GET", "DPoP", bound, []string{key.Proof("GET", url, bound), key.Proof("GET", url, bound)}, "invalid_dpop_proof"},
		{"proof of another key", "GET", "DPoP", bound, []string{other.Proof("GET", url, bound)}, "invalid_token"},
		{"wrong method", "GET", "DPoP", bound, []string{key.Proof("POST", url, bound)}, "invalid_dpop_proof"},
		{"wrong URL", "GET", "DPoP", bound, []string{key.Proof("GET", srv.URL+"/other", bound)}, "invalid_dpop_proof"},
		{"proof for another token", "GET", "DPoP", bound, []string{key.Proof("GET", url, plain)}, "invalid_dpop_proof"},
		{"garbage proof", "GET", "DPoP", bound, []string{"not.a.jwt"}, "invalid_dpop_proof"},
		{"DPoP-bound token as Bearer", "GET", "Bearer", bound, nil, "invalid_token"},
		{"DPoP-bound token as Bearer, with a proof", "GET", "Bearer", bound, []string{key.Proof("GET", url, bound)}, "invalid_token"},
		{"unbound token with the DPoP scheme", "GET", "DPoP", plain, []string{key.Proof("GET", url, plain)}, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := callDPoP(t, tt.method, url, tt.scheme, tt.token, tt.proofs...)
			assert.Equal(t, 401, res.status)
			assert.Contains(t, res.body, `"error":"`+tt.code+`"`)
			require.Len(t, res.challenges, 2, "a Bearer and a DPoP challenge")
			var errorIn string
			for _, c := range res.challenges {
				if strings.Contains(c, "error=") {
					errorIn = strings.Fields(c)[0]
				}
				if strings.HasPrefix(c, "DPoP") {
					assert.Contains(t, c, `algs="`, "the DPoP challenge names the algorithms")
				}
			}
			want := "Bearer"
			if tt.scheme == "DPoP" {
				want = "DPoP"
			}
			assert.Equal(t, want, errorIn, "the challenge of the request's scheme carries the error")
			assert.NotContains(t, strings.Join(res.challenges, " "), tt.token)
		})
	}
	res = callDPoP(t, "GET", url, "Bearer", plain)
	assert.Equal(t, 200, res.status, "Bearer tokens still pass in the default mode")
	res = callDPoP(t, "GET", url, "", "")
	assert.Equal(t, 401, res.status)
	assert.Equal(t, []string{`Bearer realm="api"`, `DPoP realm="api", algs="` + strings.Join(mw.DPoPVerifier().Algorithms(), " ") + `"`}, res.challenges)
}

// WithResourceMetadata names the metadata in every 401 (RFC 9728 §5.1, which
// allows it with the DPoP scheme): under DPoPRequired in the DPoP challenge,
// the only one; under DPoPAllowed in the Bearer challenge alone.
func TestDPoPChallengeResourceMetadata(t *testing.T) {
	as := newAS(t)
	const meta = "https://api.example.com/.well-known/oauth-protected-resource"
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})
	for _, tc := range []struct {
		mode   introspect.DPoPMode
		scheme string
		token  string
	}{
		{introspect.DPoPRequired, "", ""},
		{introspect.DPoPRequired, "Bearer", plain},
		{introspect.DPoPRequired, "DPoP", "not-issued"},
		{introspect.DPoPAllowed, "", ""},
		{introspect.DPoPAllowed, "DPoP", "not-issued"},
	} {
		mw := newMW(t, as, introspect.WithDPoP(tc.mode), introspect.WithResourceMetadata(meta))
		srv := dpopAPI(t, mw)
		res := callDPoP(t, "GET", srv.URL, tc.scheme, tc.token)
		assert.Equal(t, 401, res.status)
		n := 0
		for _, c := range res.challenges {
			if strings.Contains(c, `resource_metadata="`+meta+`"`) {
				n++
				if tc.mode == introspect.DPoPAllowed {
					assert.True(t, strings.HasPrefix(c, "Bearer "), c)
				}
			}
		}
		assert.Equal(t, 1, n, "mode %v, scheme %q: %q", tc.mode, tc.scheme, res.challenges)
	}
}

// DPoPRequired refuses Bearer tokens without asking the authorization
// server, and announces only the DPoP scheme; DPoPOff refuses DPoP-bound
// tokens and reads no DPoP scheme.
func TestDPoPModes(t *testing.T) {
	as := newAS(t)
	key := dpopKey(t, "EdDSA")
	bound := as.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"jkt": key.JKT()}})
	plain := as.Issue(introspecttest.Claims{Subject: "bob"})

	required := newMW(t, as, introspect.WithDPoP(introspect.DPoPRequired))
	srv := dpopAPI(t, required)
	calls := as.Calls()
	res := callDPoP(t, "GET", srv.URL, "Bearer", plain)
	assert.Equal(t, 401, res.status)
	assert.Equal(t, calls, as.Calls(), "no call for a Bearer token")
	require.Len(t, res.challenges, 1)
	assert.True(t, strings.HasPrefix(res.challenges[0], `DPoP realm="api", error="invalid_token"`), res.challenges[0])
	assert.Equal(t, 200, callDPoP(t, "GET", srv.URL, "DPoP", bound, key.Proof("GET", srv.URL, bound)).status)
	md := required.ResourceMetadata(introspect.ResourceMetadata{Resource: "https://api.example.com"})
	assert.True(t, md.DPoPBoundAccessTokensRequired)
	assert.Equal(t, required.DPoPVerifier().Algorithms(), md.DPoPSigningAlgValuesSupported)

	off := newMW(t, as, introspect.WithDPoP(introspect.DPoPOff))
	srv = dpopAPI(t, off)
	res = callDPoP(t, "GET", srv.URL, "DPoP", bound, key.Proof("GET", srv.URL, bound))
	assert.Equal(t, 401, res.status)
	assert.Equal(t, []string{`Bearer realm="api"`}, res.challenges, "the DPoP scheme is no bearer token")
	assert.Equal(t, 401, callDPoP(t, "GET", srv.URL, "Bearer", bound).status, "a DPoP-bound token is refused")
	assert.Equal(t, 200, callDPoP(t, "GET", srv.URL, "Bearer", plain).status)
	assert.Nil(t, off.DPoPVerifier())
	md = off.ResourceMetadata(introspect.ResourceMetadata{Resource: "https://api.example.com"})
	assert.Empty(t, md.DPoPSigningAlgValuesSupported)

	for _, bad := range []introspect.Option{
		introspect.WithDPoP(introspect.DPoPMode(9)),
		introspect.WithDPoP(introspect.DPoPOff, introspect.WithDPoPLeeway(time.Second)),
		introspect.WithDPoP(introspect.DPoPAllowed, introspect.WithDPoPAlgorithms("HS256")),
		introspect.WithDPoP(introspect.DPoPAllowed, nil),
	} {
		_, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials(rsClientID, rsSecret), bad)
		assert.Error(t, err)
	}
	for _, s := range []string{"off", "allowed", "required"} {
		m, err := introspect.ParseDPoPMode(s)
		require.NoError(t, err)
		assert.Equal(t, s, m.String())
	}
	_, err := introspect.ParseDPoPMode("on")
	assert.Error(t, err)
}

// With server nonces, a proof without the current nonce gets 401
// use_dpop_nonce and a DPoP-Nonce header; the same request with it passes.
func TestDPoPNonce(t *testing.T) {
	as := newAS(t)
	key := dpopKey(t, "ES256")
	bound := as.Issue(introspecttest.Claims{Subject: "alice", Confirmation: map[string]string{"jkt": key.JKT()}})
	var refused atomic.Int64
	mw := newMW(t, as, introspect.WithDPoP(introspect.DPoPAllowed, introspect.WithDPoPNonces([]byte(strings.Repeat("n", 32)), time.Minute)),
		introspect.WithHooks(&introspect.Hooks{Rejected: func(_ context.Context, status int, _ error) { refused.Add(1) }}))
	srv := dpopAPI(t, mw)
	res := callDPoP(t, "GET", srv.URL, "DPoP", bound, key.Proof("GET", srv.URL, bound))
	require.Equal(t, 401, res.status)
	assert.Contains(t, res.body, `"error":"use_dpop_nonce"`)
	require.NotEmpty(t, res.nonce)
	assert.Contains(t, strings.Join(res.challenges, " "), `DPoP realm="api", error="use_dpop_nonce"`)
	res = callDPoP(t, "GET", srv.URL, "DPoP", bound, key.Proof("GET", srv.URL, bound, introspecttest.WithProofNonce(res.nonce)))
	assert.Equal(t, 200, res.status, res.body)
	assert.Equal(t, int64(1), refused.Load())
}

// DPoPRequired and InsecureSkipTokenBinding contradict each other: with
// both, no binding would be checked while DPoP is announced as required.
func TestDPoPRequiredRefusesSkippedBinding(t *testing.T) {
	as := newAS(t)
	_, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()), introspect.WithClientCredentials(rsClientID, rsSecret),
		introspect.WithDPoP(introspect.DPoPRequired), introspect.InsecureSkipTokenBinding())
	assert.ErrorContains(t, err, "cannot be combined with InsecureSkipTokenBinding")
}
