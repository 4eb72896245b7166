package introspect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/introspect-go/introspect"
	"github.com/introspect-go/introspect/introspecttest"
)

// A protected API: every request under /api/ needs an active token, and
// /api/admin a token with scope "admin".
func Example() {
	as := introspecttest.NewServer(introspecttest.WithClient("my-api", "api-secret"))
	defer as.Close()

	cache, err := introspect.NewLRUCache(100_000)
	if err != nil {
		panic(err)
	}
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("my-api", "api-secret"),
		introspect.WithCache(cache),
		introspect.WithRealm("example"),
	)
	if err != nil {
		panic(err)
	}
	defer mw.Close()

	api := http.NewServeMux()
	api.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (%s)", ti.Subject, strings.Join(ti.Scopes, " "))
	})
	api.Handle("/api/admin", mw.RequireScope("admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "welcome, admin")
	})))
	srv := httptest.NewServer(mw.Handler(api))
	defer srv.Close()

	token := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read write"})
	for _, path := range []string{"/api/me", "/api/admin"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode, strings.TrimSpace(string(body)))
		if resp.StatusCode != http.StatusOK {
			fmt.Println("  WWW-Authenticate:", resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Output:
	// /api/me 200 hello alice (read write)
	// /api/admin 403 {"error":"insufficient_scope","error_description":"the access token does not grant access to this resource"}
	//   WWW-Authenticate: Bearer realm="example", error="insufficient_scope", error_description="the access token does not grant access to this resource", scope="admin"
}

// The client alone, without the middleware.
func ExampleClient_Introspect() {
	as := introspecttest.NewServer(introspecttest.WithClient("my-api", "api-secret"))
	defer as.Close()
	client, err := introspect.NewClient(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("my-api", "api-secret"),
	)
	if err != nil {
		panic(err)
	}
	token := as.Issue(introspecttest.Claims{Subject: "alice", ClientID: "web-app"})
	ti, err := client.Introspect(context.Background(), token)
	fmt.Println(ti.Active, ti.Subject, ti.ClientID, err)

	as.Revoke(token)
	_, err = client.Introspect(context.Background(), token)
	fmt.Println(err, introspect.StatusCode(err))
	// Output:
	// true alice web-app <nil>
	// introspect: token is not active 401
}

// One authorization server and client per tenant, chosen from the path.
func ExampleWithClientStore() {
	acme := introspecttest.NewServer(introspecttest.WithClient("api", "acme-secret"))
	defer acme.Close()
	globex := introspecttest.NewServer(introspecttest.WithClient("api", "globex-secret"))
	defer globex.Close()
	tenants := map[string]introspect.ClientContext{
		"acme":   {Endpoint: acme.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: "api", ClientSecret: "acme-secret"}},
		"globex": {Endpoint: globex.IntrospectionURL(), Credentials: introspect.Credentials{ClientID: "api", ClientSecret: "globex-secret"}},
	}
	store := introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		cc, ok := tenants[tenant]
		if !ok {
			return cc, fmt.Errorf("%w: unknown tenant", introspect.ErrInvalidRequest)
		}
		return cc, nil
	})
	mw, err := introspect.New(introspect.WithClientStore(store))
	if err != nil {
		panic(err)
	}
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		fmt.Fprint(w, ti.Subject)
	}))
	token := acme.Issue(introspecttest.Claims{Subject: "wile.e"})
	for _, path := range []string{"/acme/orders", "/globex/orders", "/initech/orders"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(rec, req)
		fmt.Println(path, rec.Code)
	}
	// Output:
	// /acme/orders 200
	// /globex/orders 401
	// /initech/orders 400
}

// One authorization server per tenant, named by its issuer: endpoint,
// client authentication method, keys of signed answers and the expected
// issuer come from each one's discovery, made on its tenant's first request.
func ExampleClientContext_issuer() {
	acme := introspecttest.NewServer(introspecttest.WithClient("api", "acme-secret"))
	defer acme.Close()
	globex := introspecttest.NewServer(introspecttest.WithClient("api", "globex-secret"))
	defer globex.Close()
	tenants := map[string]introspect.ClientContext{
		"acme":   {Issuer: acme.Issuer, Credentials: introspect.Credentials{ClientID: "api", ClientSecret: "acme-secret"}},
		"globex": {Issuer: globex.Issuer, Credentials: introspect.Credentials{ClientID: "api", ClientSecret: "globex-secret"}},
	}
	store := introspect.ClientStoreFunc(func(r *http.Request) (introspect.ClientContext, error) {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		cc, ok := tenants[tenant]
		if !ok {
			return cc, fmt.Errorf("%w: unknown tenant", introspect.ErrInvalidRequest)
		}
		return cc, nil
	})
	mw, err := introspect.New(introspect.WithClientStore(store), introspect.WithJWTResponse())
	if err != nil {
		panic(err)
	}
	defer mw.Close()
	h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, _ := introspect.FromContext(r.Context())
		fmt.Fprint(w, ti.Subject)
	}))
	token := globex.Issue(introspecttest.Claims{Subject: "hank"})
	for _, path := range []string{"/globex/orders", "/acme/orders"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(rec, req)
		fmt.Println(path, rec.Code, rec.Body.String())
	}
	// Output:
	// /globex/orders 200 hank
	// /acme/orders 401 {"error":"invalid_token","error_description":"the access token is not valid"}
}

// JWT access tokens of two authorization servers validated locally in one
// middleware, each with its own issuer's keys; other tokens are introspected
// at the first.
func ExampleWithJWTIssuers() {
	corp := introspecttest.NewServer(introspecttest.WithClient("api", "secret"))
	defer corp.Close()
	partner := introspecttest.NewServer()
	defer partner.Close()
	mw, err := introspect.New(
		introspect.WithIssuer(corp.Issuer),
		introspect.WithJWTIssuers(partner.Issuer),
		introspect.WithValidation(introspect.ValidateHybrid),
		introspect.WithJWTAudience("https://api.example"),
		introspect.WithClientCredentials("api", "secret"),
	)
	if err != nil {
		panic(err)
	}
	defer mw.Close()
	aud := []string{"https://api.example"}
	for _, token := range []string{
		corp.IssueJWT(introspecttest.Claims{Subject: "ann", Audience: aud}),
		partner.IssueJWT(introspecttest.Claims{Subject: "bo", Audience: aud}),
		corp.Issue(introspecttest.Claims{Subject: "cy"}),
	} {
		ti, err := mw.Verify(context.Background(), token)
		if err != nil {
			panic(err)
		}
		fmt.Println(ti.Subject, ti.Source)
	}
	// Output:
	// ann jwt
	// bo jwt
	// cy introspection
}

// Taking the token off the request without introspecting it.
func ExampleExtractAuthorization() {
	h := introspect.ExtractAuthorization(nil, nil)(introspect.RequireAuthorization(nil)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := introspect.TokenFromContext(r.Context())
			fmt.Fprintf(w, "%s token of %d characters from the %s", tok.Scheme, len(tok.Value), tok.Source)
		})))
	for _, auth := range []string{"bearer mF_9.B5f-4.1JqM", "", "Bearer two tokens"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Body.String())))
	}
	// Output:
	// 200 Bearer token of 15 characters from the header
	// 401
	// 400 {"error":"invalid_request","error_description":"the request is malformed"}
}

// The pipeline in steps, as oidcc_plug composes its plugs: ExtractAuthorization
// decides where the token may come from (here the query too, RFC 6750 §2.3),
// RequireAuthorization answers 401 when there is none (it checks presence,
// not validity), and the middleware introspects what was extracted.
func ExampleExtractAuthorization_pipeline() {
	as := introspecttest.NewServer(introspecttest.WithClient("my-api", "api-secret"))
	defer as.Close()
	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("my-api", "api-secret"),
	)
	if err != nil {
		panic(err)
	}
	defer mw.Close()

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti, ok := introspect.FromContext(r.Context())
		if !ok {
			http.Error(w, "no verdict", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "hello ", ti.Subject)
	})
	chain := introspect.ExtractAuthorization(introspect.BearerExtractor{AllowQuery: true}, nil)(
		introspect.RequireAuthorization(nil)(
			mw.Handler(api)))
	srv := httptest.NewServer(chain)
	defer srv.Close()

	token := as.Issue(introspecttest.Claims{Subject: "alice"})
	for _, query := range []string{"?access_token=" + token, "", "?access_token=not-issued"} {
		resp, err := http.Get(srv.URL + "/stream" + query)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", string(body))))
	}
	// Output:
	// 200 hello alice
	// 401
	// 401 {"error":"invalid_token","error_description":"the access token is not valid"}
}
