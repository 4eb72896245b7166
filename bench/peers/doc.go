// Package peers measures, in one go test -bench run, the per-request cost of
// this library's middleware and of the Go libraries users would pick instead
// (zitadel-go's cached introspection middleware, Ory Oathkeeper's
// oauth2_introspection authenticator), all against the same stub
// authorization server:
//
//	cd bench/peers && go test -run '^$' -bench . -benchmem
//
// It is its own module so that the library never depends on its peers.
package peers
