// Package introspectotel records OpenTelemetry metrics and traces of an
// introspect middleware through its hooks:
//
//	hooks, err := introspectotel.New() // the global meter and tracer providers
//	if err != nil { ... }
//	mw, err := introspect.New(..., introspect.WithHooks(hooks))
//
// With hooks of your own, pass introspect.Chain(mine, hooks). The package
// uses the OpenTelemetry API only: the SDK, its exporters (Prometheus,
// OTLP, stdout) and their configuration are the application's.
//
// # Metrics
//
// Every name starts with "introspect."; the names, units and attributes
// are stable. Attribute values come from small, fixed sets (see the
// attribute keys): no token, subject, client ID, secret or URL, and the
// endpoint's host (server.address) only with [WithEndpointHostAttribute].
//
//	introspect.decisions                     counter    {request}  introspect.outcome
//	introspect.cache.lookups                 counter    {lookup}   introspect.cache.result
//	introspect.cache.stale_served            counter    {request}  error.type
//	introspect.cache.refresh_ahead           counter    {refresh}
//	introspect.cache.errors                  counter    {error}    introspect.cache.operation
//	introspect.introspection.coalesced       counter    {request}
//	introspect.introspection.duration        histogram  s          introspect.result, error.type, server.address
//	introspect.introspection.in_flight       up-down    {call}     server.address
//	introspect.bulkhead.rejections           counter    {call}
//	introspect.discovery.duration            histogram  s          introspect.discovery.document, introspect.result, error.type
//	introspect.panics                        counter    {panic}
//
// introspect.decisions counts the decisions of [introspect.Hooks].Decided
// and the requests of Canceled (outcome "canceled"). It counts decisions,
// not requests: a request that a guard (RequireScope, say) refuses after
// the middleware accepted its token counts once as allowed and once as
// insufficient_scope. introspect.cache.lookups counts the cache's answers;
// a miss then joins a call in flight (coalesced) or makes one.
// introspect.introspection.in_flight rises when a call starts and falls
// when it ends, also when a callback's panic ended it. The duration histograms have bucket boundaries from 100 µs to
// 5 s; their count is the number of calls or fetches. error.type is set
// on failures only, to one of: canceled, discovery, timeout, http_1xx to
// http_5xx, connect, tls, connection_lost, malformed_http,
// response_too_large, encrypted_response, malformed_response,
// client_config, unavailable, _OTHER.
//
// Through the OpenTelemetry Prometheus exporter the names become
// introspect_decisions_total, introspect_cache_lookups_total,
// introspect_introspection_duration_seconds_bucket,
// introspect_introspection_in_flight, and so on.
//
// # Traces
//
// Each call to the introspection endpoint is a span named
// "introspect.introspection", a child of the span on the context of the
// request that started it (the server span of otelhttp, say); each fetch of
// the metadata or keys is an "introspect.discovery" span, a root since it
// runs in the background. The HTTP request to the authorization server
// carries the span's context, so an otelhttp transport given to
// [introspect.WithHTTPClient] nests its client span under it. That
// transport records the endpoint's full URL, query included (leave its URL
// attributes out if the query carries a credential), and with a baggage
// propagator it sends the baggage of the request that started the call,
// which a client chooses, to the authorization server (the first request's,
// for a call shared by several): give it otelhttp.WithPropagators with the
// trace context alone. The spans
// carry introspect.result, error.type (with status Error) and, for
// discovery, introspect.discovery.document; server.address only with
// [WithEndpointHostAttribute]. The error's text is not recorded: the
// middleware's logger has it. The request's own span, when it records, gets
// the decision as introspect.outcome.
package introspectotel
