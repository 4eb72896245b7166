package introspectecho_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/introspect-go/introspect"
	introspectecho "github.com/introspect-go/introspect/adapters/echo"
	"github.com/introspect-go/introspect/introspecttest"
)

func Example() {
	as := introspecttest.NewServer(introspecttest.WithClient("rs", "rs-secret"))
	defer as.Close()

	mw, err := introspect.New(
		introspect.WithEndpoint(as.IntrospectionURL()),
		introspect.WithClientCredentials("rs", "rs-secret"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	e := echo.New()
	api := e.Group("/api", introspectecho.Authenticate(mw))
	api.GET("/me", func(c echo.Context) error {
		ti, _ := introspectecho.FromContext(c)
		return c.String(http.StatusOK, "hello "+ti.Subject)
	})
	api.DELETE("/users/:id", func(c echo.Context) error {
		return c.NoContent(http.StatusNoContent)
	}, introspectecho.RequireScope(mw, "admin"))

	tok := as.Issue(introspecttest.Claims{Subject: "alice", Scope: "read"})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/api/me", nil),
		httptest.NewRequest(http.MethodDelete, "/api/users/7", nil),
	} {
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		fmt.Println(req.Method, req.URL.Path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// GET /api/me 200 hello alice
	// DELETE /api/users/7 403 {"error":"insufficient_scope","error_description":"the access token does not grant access to this resource"}
}
