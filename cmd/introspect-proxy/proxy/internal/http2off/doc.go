// Package http2off tests introspect-proxy over TLS in a binary where
// GODEBUG turns net/http's HTTP/2 server off: its test file's go:debug
// directive would turn it off for every other test of the proxy package.
package http2off
