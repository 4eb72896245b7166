package introspecttest

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is a misbehaviour of the server, set with [Server.SetFault].
type Fault struct {
	name string
	// before runs ahead of the normal handling; true means it answered.
	before func(s *Server, w http.ResponseWriter, r *http.Request) bool
	// answer replaces the normal answer of an authenticated request; true
	// means it answered.
	answer func(w http.ResponseWriter, active bool) bool
}

// String names the fault, for test tables.
func (f Fault) String() string { return f.name }

// Latency delays every answer by d (or until the server closes), then answers
// normally.
func Latency(d time.Duration) Fault {
	return Fault{name: "latency " + d.String(), before: func(s *Server, _ http.ResponseWriter, r *http.Request) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.done:
		}
		return false
	}}
}

// Block holds every request until release is closed (or the server closes),
// then answers normally. Tests use it to make requests pile up
// deterministically.
func Block(release <-chan struct{}) Fault {
	return Fault{name: "block", before: func(s *Server, _ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		case <-s.done:
			return true
		}
	}}
}

// Respond answers every request with status, content type and body, plus the
// given header lines ("Retry-After: 3").
func Respond(status int, contentType, body string, header ...string) Fault {
	return Fault{name: "respond " + strconv.Itoa(status), before: func(_ *Server, w http.ResponseWriter, _ *http.Request) bool {
		for _, h := range header {
			if k, v, ok := strings.Cut(h, ":"); ok {
				w.Header().Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return true
	}}
}

// Answer authenticates the client as usual, then answers every request with
// a 200 application/json body, whatever the token.
func Answer(body string) Fault {
	return Fault{name: "answer", answer: func(w http.ResponseWriter, _ bool) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
		return true
	}}
}

// InvalidTokenError makes the server answer an unknown, revoked or expired
// token with 400 {"error":"invalid_token"} instead of {"active":false}, as
// some security token services do.
func InvalidTokenError() Fault {
	return Fault{name: "400 invalid_token for inactive tokens", answer: func(w http.ResponseWriter, active bool) bool {
		if active {
			return false
		}
		oauthError(w, http.StatusBadRequest, "invalid_token")
		return true
	}}
}

// Hang never answers: the request waits until the client gives up or the
// server closes.
func Hang() Fault {
	return Fault{name: "hang", before: func(s *Server, _ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return true
	}}
}

// Trickle sends a 200 header, then one byte of a JSON body every interval,
// forever (until the client gives up or the server closes).
func Trickle(interval time.Duration) Fault {
	return Fault{name: "trickle", before: func(s *Server, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"active":true,"x":"`))
		fl, _ := w.(http.Flusher)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if fl != nil {
				fl.Flush()
			}
			select {
			case <-t.C:
				if _, err := w.Write([]byte("a")); err != nil {
					return true
				}
			case <-r.Context().Done():
				return true
			case <-s.done:
				return true
			}
		}
	}}
}

// Oversized answers 200 application/json with a body of n bytes, streamed.
func Oversized(n int64) Fault {
	return Fault{name: "oversized " + strconv.FormatInt(n, 10), before: func(_ *Server, w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		prefix, suffix := `{"active":true,"x":"`, `"}`
		_, _ = w.Write([]byte(prefix))
		chunk := []byte(strings.Repeat("a", 32<<10))
		left := n - int64(len(prefix)+len(suffix))
		for left > 0 {
			c := chunk
			if int64(len(c)) > left {
				c = c[:left]
			}
			if _, err := w.Write(c); err != nil {
				return true
			}
			left -= int64(len(c))
		}
		_, _ = w.Write([]byte(suffix))
		return true
	}}
}

// Reset answers with a status line, headers and part of a body, then resets
// the connection (TCP RST).
func Reset() Fault {
	return Fault{name: "reset", before: func(_ *Server, w http.ResponseWriter, _ *http.Request) bool {
		hj, ok := w.(http.Hijacker)
		if !ok {
			return true // HTTP/2: the handler's return ends the stream unanswered
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return true
		}
		writePartial(buf)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
		return true
	}}
}

func writePartial(buf *bufio.ReadWriter) {
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"active\":tr")
	_ = buf.Flush()
}

// Redirect answers 307 to location, which a careful client must not follow
// (its credentials would travel there).
func Redirect(location string) Fault {
	return Fault{name: "redirect to " + hostOf(location), before: func(_ *Server, w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, location, http.StatusTemporaryRedirect)
		return true
	}}
}
