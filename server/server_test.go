package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Cancelling Serve's context drains: Ready turns to ErrDraining, a request
// in flight still gets its answer, new connections are refused, Serve
// returns nil.
func TestServeDrainsOnCancel(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, h) }()
	url := "http://" + s.Addr().String()

	if err := s.Ready(); err != nil {
		t.Fatalf("Ready before shutdown: %v", err)
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for s.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Ready(); !errors.Is(err, ErrDraining) {
		t.Errorf("Ready while draining: %v, want ErrDraining", err)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if got := <-slow; got != "done" {
		t.Errorf("request in flight during shutdown: %q", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("a new request was served after shutdown")
	}
}

// Past MaxConns, a new connection waits until one closes.
func TestMaxConns(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held, hold := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.Serve(ctx, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				close(held)
				<-hold
			}
		}))
	}()
	// One connection per request, so a finished request frees its slot.
	get := func(path string, timeout time.Duration) error {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + s.Addr().String() + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	done := make(chan error, 1)
	go func() { done <- get("/hold", 10*time.Second) }()
	<-held
	if err := get("/", 300*time.Millisecond); err == nil {
		t.Error("a second connection was served while the only one was held")
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatalf("held request: %v", err)
	}
	if err := get("/", 5*time.Second); err != nil {
		t.Errorf("after the held connection ended: %v", err)
	}
}

// serve runs a server with h until the test ends.
func serve(t *testing.T, o Options, h http.Handler) string {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, h) }()
	t.Cleanup(func() { cancel(); <-served })
	return s.Addr().String()
}

// roundTrip writes a raw request on c and reads its answer.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, req string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Issue 22: clients that each send one request and then keep their
// connection open fill every MaxConns slot; a new client still gets its
// answer, because near the cap connections idle for PressureIdleTimeout
// are closed, oldest first.
func TestIdleConnsMakeRoom(t *testing.T) {
	const maxConns = 16
	addr := serve(t, Options{MaxConns: maxConns}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	for i := range maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp := roundTrip(t, c, bufio.NewReader(c), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("holder %d: %s", i, resp.Status)
		}
	}
	// Idle ones would hold their slots for the 120 s idle timeout; this
	// client's timeout says only that it was left waiting for a slot.
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("a new client while %d idle keep-alive connections are open: %v", maxConns, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("new client: %s", resp.Status)
	}
}

// Issue 22 (RFC 9112 §6.1): a request with both Content-Length and
// Transfer-Encoding is answered and its connection closed; net/http alone
// drops the Content-Length and keeps the connection. A plain chunked
// request keeps its connection.
func TestLengthAndChunkedCloses(t *testing.T) {
	addr := serve(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	for _, tc := range []struct {
		name, headers string
		closed        bool
	}{
		{"chunked", "Transfer-Encoding: chunked\r\n", false},
		{"content-length", "Content-Length: 5\r\n", false},
		{"both", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", true},
		{"both, length last, any case", "Transfer-Encoding: chunked\r\ncOnTeNt-LeNgTh: 5\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			body := "hello"
			if strings.Contains(tc.headers, "chunked") {
				body = "5\r\nhello\r\n0\r\n\r\n"
			}
			resp := roundTrip(t, c, br, "POST /echo HTTP/1.1\r\nHost: x\r\n"+tc.headers+"\r\n"+body)
			if resp.StatusCode != 200 {
				t.Fatalf("%s", resp.Status)
			}
			// A kept connection answers a second request; a closed one
			// reads EOF at once.
			_, err = io.WriteString(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
			if err == nil {
				_, err = http.ReadResponse(br, nil)
			}
			if closed := err != nil; closed != tc.closed {
				t.Errorf("connection closed = %v (%v), want %v", closed, err, tc.closed)
			}
		})
	}
}

// The Content-Length scan finds the header across any split of the bytes.
func TestScanAcrossReads(t *testing.T) {
	msg := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-LENGTH: 5\r\n\r\n")
	for cut := range len(msg) {
		c := &scanConn{}
		if got := c.scan(msg[:cut]) || c.scan(msg[cut:]); !got {
			t.Errorf("cut at %d: not found", cut)
		}
	}
	c := &scanConn{}
	if c.scan([]byte("POST / HTTP/1.1\r\nX-Content-Length: 5\r\nContent-Lengthy: 1\r\n\r\n")) {
		t.Error("found where no line starts with Content-Length:")
	}
}
