package introspect

import "testing"

// BenchmarkParseIntrospection measures the response parser on a typical
// active answer and on one carrying an unregistered member. The reference
// sub-benchmarks run the previous parser (refParseIntrospection, kept in
// parse_diff_test.go) on the same bodies.
func BenchmarkParseIntrospection(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"typical", `{"active":true,"sub":"user-123","client_id":"app","scope":"read write","iss":"https://as.bench.test","token_type":"Bearer","exp":1795000000,"iat":1794990000,"aud":"https://api.bench.test"}`},
		{"extra", `{"active":true,"sub":"user-123","client_id":"app","scope":"read write","iss":"https://as.bench.test","token_type":"Bearer","exp":1795000000,"iat":1794990000,"aud":"https://api.bench.test","tenant":"acme"}`},
		{"inactive", `{"active":false}`},
		// Claims of the kind Keycloak adds to its answers.
		{"many-extra", `{"active":true,"exp":1795000000,"iat":1794990000,"jti":"6a3f9c2e-1b7d-4e8a-9f0c-2d5b7e1a3c4f","iss":"https://as.bench.test/realms/demo","aud":"account","sub":"f47ac10b-58cc-4372-a567-0e02b2c3d479","typ":"Bearer","azp":"app","session_state":"0c1f2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b","acr":"1","allowed-origins":["https://app.bench.test"],"realm_access":{"roles":["offline_access","uma_authorization"]},"resource_access":{"account":{"roles":["manage-account","view-profile"]}},"scope":"openid profile email","sid":"0c1f2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b","email_verified":true,"name":"Alice Example","preferred_username":"alice","given_name":"Alice","family_name":"Example","email":"alice@bench.test","client_id":"app","username":"alice","token_type":"Bearer"}`},
	}
	parsers := []struct {
		name  string
		parse func([]byte) (*Introspection, error)
	}{
		{"current", parseIntrospection},
		{"reference", refParseIntrospection},
	}
	for _, body := range bodies {
		for _, p := range parsers {
			b.Run(body.name+"/"+p.name, func(b *testing.B) {
				data := []byte(body.body)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.parse(data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
