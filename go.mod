module github.com/introspect-go/introspect

go 1.24
