// Package server runs an http.Handler on a TCP listener with the service's
// limits and shuts it down gracefully: New listens at once (so the address
// is known, even for port 0), Serve serves until its context ends, then
// drains. It knows nothing of routes or models; main wires it, and tests
// drive it directly.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
)

// Options for New. Zero values pick the defaults.
type Options struct {
	Addr string // host:port to listen on; port 0 picks a free one
	// MaxConns caps open client connections; further ones wait in the
	// kernel's accept queue instead of each costing a goroutine and
	// buffers here. 0: no cap.
	MaxConns int
	// DrainTimeout bounds how long requests in flight may take to finish
	// once Serve's context ends (0: DefaultDrainTimeout).
	DrainTimeout time.Duration
	// DrainDelay is how long, once Serve's context ends, the server goes on
	// serving while Ready reports ErrDraining, before it stops accepting: a
	// load balancer probing /ready stops sending new requests meanwhile,
	// instead of having connections refused. 0: stop accepting at once.
	DrainDelay time.Duration
	Logger     *slog.Logger
}

// DefaultDrainTimeout is how long requests in flight may take to finish
// after the drain delay (docs/CONFIGURATION.md: SHUTDOWN_DRAIN_DELAY).
const DefaultDrainTimeout = 20 * time.Second

// HeaderTimeout is how long a client has to send a request's headers, from
// its connection or the request's first byte: a client that holds a
// connection slot without finishing its headers (slowloris) loses it then.
const HeaderTimeout = 5 * time.Second

// Server is one listener and the HTTP server on it.
type Server struct {
	ln       net.Listener
	opt      Options
	draining atomic.Bool
	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
}

// ErrDraining is what Ready reports once shutdown has begun.
var ErrDraining = errors.New("shutting down: finishing the requests in flight")

// New listens on o.Addr.
func New(o Options) (*Server, error) {
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	if o.MaxConns > 0 {
		ln = netutil.LimitListener(ln, o.MaxConns)
	}
	return &Server{ln: scanListener{ln}, opt: o, stop: make(chan struct{})}, nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Ready is nil while the server takes requests and ErrDraining once Serve's
// context has ended: what /ready reports, so a load balancer stops sending.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return ErrDraining
	}
	return nil
}

// Serve serves h until ctx ends or the listener fails. On ctx's end it
// reports ErrDraining for DrainDelay while still serving, then stops
// accepting, lets requests in flight finish within DrainTimeout and returns
// nil; the listener is closed either way.
func (s *Server) Serve(ctx context.Context, h http.Handler) error {
	srv := &http.Server{
		Handler:           closeOnConflict(h),
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       60 * time.Second, // slow uploads end; no goroutine waits forever
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second, // PressureIdleTimeout near MaxConns
		MaxHeaderBytes:    64 << 10,
		ConnState:         newConns(s.opt.MaxConns).state,
		ConnContext:       withConn,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-s.stop:
	}
	s.draining.Store(true)
	if d := s.opt.DrainDelay; d > 0 {
		s.opt.Logger.Info("draining: /ready answers 503, still serving", "addr", s.Addr().String(), "for", d.String())
		select {
		case <-time.After(d):
		case <-s.stop:
		case err := <-errc:
			return err
		}
	}
	s.opt.Logger.Info("shutting down", "addr", s.Addr().String())
	drainCtx, cancel := context.WithTimeout(context.Background(), s.opt.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Stop ends Serve as its context ending would, without the drain delay:
// for a service that fails to start and has told no load balancer it is
// ready.
func (s *Server) Stop() { s.stopOnce.Do(func() { close(s.stop) }) }
