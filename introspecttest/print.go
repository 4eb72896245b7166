package introspecttest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// This file holds the printed forms of the types that hold a client secret,
// a private key or issued tokens, for fmt (every verb: Format handles %#v
// too), log/slog (LogValue) and encoding/json (MarshalJSON), so that a test
// that logs a Server or a Client does not put them into its output.

// clientSummary is the printed form of a Client.
type clientSummary struct {
	ID          string   `json:"id"`
	Methods     []string `json:"methods,omitempty"`
	Secret      bool     `json:"secret"`
	PublicKey   bool     `json:"public_key"`
	Certificate bool     `json:"certificate"`
}

func (cl Client) summary() clientSummary {
	return clientSummary{ID: cl.ID, Methods: cl.Methods, Secret: cl.Secret != "",
		PublicKey: cl.PublicKey != nil, Certificate: cl.Certificate != nil}
}

// Format prints the client ID, the accepted methods and whether a secret,
// a public key and a certificate are registered, the same for every verb;
// never the secret.
func (cl Client) Format(f fmt.State, _ rune) {
	s := cl.summary()
	fmt.Fprintf(f, "introspecttest.Client{ID: %q, Methods: %q, secret: %t, public key: %t, certificate: %t}",
		s.ID, s.Methods, s.Secret, s.PublicKey, s.Certificate)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (cl Client) LogValue() slog.Value {
	s := cl.summary()
	return slog.GroupValue(slog.String("id", s.ID), slog.Any("methods", s.Methods), slog.Bool("secret", s.Secret),
		slog.Bool("public_key", s.PublicKey), slog.Bool("certificate", s.Certificate))
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (cl Client) MarshalJSON() ([]byte, error) { return json.Marshal(cl.summary()) }

// Format prints the server's URL and issuer, the same for every verb; never
// its tokens, its clients' secrets or its signing key.
func (s *Server) Format(f fmt.State, _ rune) {
	if s == nil {
		_, _ = io.WriteString(f, "<nil>")
		return
	}
	fmt.Fprintf(f, "introspecttest.Server{URL: %q, Issuer: %q}", s.URL, s.Issuer)
}

// LogValue implements [slog.LogValuer] with the URL and the issuer.
func (s *Server) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("url", s.URL), slog.String("issuer", s.Issuer))
}

// MarshalJSON writes the exported fields, URL and Issuer, as encoding/json
// would by default.
func (s *Server) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ URL, Issuer string }{s.URL, s.Issuer})
}

// signedAnswerSummary is the printed form of a SignedAnswer.
type signedAnswerSummary struct {
	Alg         string         `json:"alg"`
	ContentType string         `json:"content_type,omitempty"`
	Header      map[string]any `json:"header,omitempty"`
	Claims      map[string]any `json:"claims,omitempty"`
	KeyType     string         `json:"key_type,omitempty"`
	BodySize    int            `json:"body_size,omitempty"`
}

func (a SignedAnswer) summary() signedAnswerSummary {
	s := signedAnswerSummary{Alg: a.Alg, ContentType: a.ContentType, Header: a.Header, Claims: a.Claims, BodySize: len(a.Body)}
	if a.Key != nil {
		s.KeyType = fmt.Sprintf("%T", a.Key)
	}
	return s
}

// Format prints the algorithm, the content type, the header and the claims,
// the type of the key and the size of the body, the same for every verb;
// never the key.
func (a SignedAnswer) Format(f fmt.State, _ rune) {
	s := a.summary()
	fmt.Fprintf(f, "introspecttest.SignedAnswer{Alg: %q, ContentType: %q, Header: %v, Claims: %v, key: %s, body: %d bytes}",
		s.Alg, s.ContentType, s.Header, s.Claims, s.KeyType, s.BodySize)
}

// LogValue implements [slog.LogValuer] with the attributes Format prints.
func (a SignedAnswer) LogValue() slog.Value {
	s := a.summary()
	return slog.GroupValue(slog.String("alg", s.Alg), slog.String("content_type", s.ContentType),
		slog.Any("header", s.Header), slog.Any("claims", s.Claims), slog.String("key_type", s.KeyType),
		slog.Int("body_size", s.BodySize))
}

// MarshalJSON writes the attributes Format prints as a JSON object.
func (a SignedAnswer) MarshalJSON() ([]byte, error) { return json.Marshal(a.summary()) }
