package introspect_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// decisions records what the Decided hook reports.
type decisions struct {
	mu  sync.Mutex
	all []string
}

func (d *decisions) hook(r *http.Request, dec introspect.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := r.Method + " " + r.URL.Path + " " + http.StatusText(dec.Status)
	if dec.Allowed {
		s += " allowed"
	}
	if dec.Introspection != nil {
		s += " sub=" + dec.Introspection.Subject
	}
	if dec.Err != nil {
		s += " err"
	}
	d.all = append(d.all, s)
}

func (d *decisions) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	all := d.all
	d.all = nil
	return all
}

// Every decision reaches the Decided hook with the request and the verdict,
// allowed ones included; refusal log lines name the method, path, status
// and reason, never the token.
func TestDecidedHookAndRefusalLog(t *testing.T) {
	as := newAS(t)
	var d decisions
	log, logs := debugLogger()
	mw := newMW(t, as, introspect.WithHooks(&introspect.Hooks{Decided: d.hook}), introspect.WithLogger(log))
	optional := newMW(t, as, introspect.WithHooks(&introspect.Hooks{Decided: d.hook}), introspect.WithOptionalToken())
	good := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	revoked := as.Issue(introspecttest.Claims{Subject: "mallory"})
	as.Revoke(revoked)
	admin := mw.Handler(mw.RequireScope("admin")(okHandler))
	get := func(path, tok string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		return r
	}
	assert.Equal(t, 200, serve(mw.Handler(okHandler), get("/docs", good)).status)
	assert.Equal(t, 401, serve(mw.Handler(okHandler), get("/docs", revoked)).status)
	assert.Equal(t, 401, serve(mw.Handler(okHandler), get("/docs", "")).status)
	assert.Equal(t, 403, serve(admin, get("/admin", good)).status)
	assert.Equal(t, 200, serve(optional.Handler(okHandler), get("/public", "")).status)
	assert.Equal(t, []string{
		"GET /docs OK allowed sub=alice",
		"GET /docs Unauthorized sub= err", // the inactive answer
		"GET /docs Unauthorized err",      // no token, no answer
		"GET /admin OK allowed sub=alice",
		"GET /admin Forbidden sub=alice err",
		"GET /public OK allowed",
	}, d.take())

	out := logs.String()
	assert.Contains(t, out, `msg="introspect: request refused" method=GET path=/admin status=403`)
	assert.Contains(t, out, `msg="introspect: request refused" method=GET path=/docs status=401`)
	for _, tok := range []string{good, revoked} {
		assert.NotContains(t, out, tok)
	}
}

// WithSkipper lets what it skips through untouched (a CORS preflight) and
// checks everything else.
func TestSkipper(t *testing.T) {
	as := newAS(t)
	var d decisions
	mw := newMW(t, as, introspect.WithHooks(&introspect.Hooks{Decided: d.hook}),
		introspect.WithSkipper(func(r *http.Request) bool { return r.Method == http.MethodOptions }))
	h := mw.Handler(okHandler)
	preflight := httptest.NewRequest(http.MethodOptions, "/api", nil)
	preflight.Header.Set("Access-Control-Request-Method", "GET")
	res := serve(h, preflight)
	assert.Equal(t, 200, res.status)
	assert.Equal(t, "anonymous", res.body, "the handler finds no verdict")
	assert.Zero(t, as.Calls())
	assert.Empty(t, d.take(), "a skipped request is no decision")
	assert.Equal(t, 401, serve(h, bearer("")).status, "other methods are checked")
	assert.Equal(t, 401, serve(mw.Handler(mw.RequireScope("read")(okHandler)), preflight).status,
		"a guard behind a skipped request finds no token")

	_, err := introspect.New(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret), introspect.WithSkipper(nil))
	assert.ErrorContains(t, err, "WithSkipper: nil function")
	_, err = introspect.NewClient(introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials(rsClientID, rsSecret), introspect.WithSkipper(func(*http.Request) bool { return false }))
	assert.ErrorContains(t, err, "WithSkipper applies to the middleware")
}

// Decided reports adapters' decisions too: they call Authenticate and
// WriteError.
func TestDecidedThroughAuthenticate(t *testing.T) {
	as := newAS(t)
	var d decisions
	mw := newMW(t, as, introspect.WithHooks(&introspect.Hooks{Decided: d.hook}))
	tok := as.Issue(introspecttest.Claims{Subject: "alice"})
	r := bearer(tok)
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	_, err := mw.Authenticate(r.WithContext(ctx))
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mw.WriteError(rec, bearer("x"), nil, introspect.ErrInactiveToken)
	got := d.take()
	require.Len(t, got, 2)
	assert.Equal(t, "GET /api OK allowed sub=alice", got[0])
	assert.True(t, strings.HasPrefix(got[1], "GET /api Unauthorized"), got[1])
}
