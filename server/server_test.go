package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
