// Package grpcserver serves the Open Inference Protocol's gRPC service,
// inference.GRPCInferenceService (oip/inferencepb), on a listener of its own
// (GRPC_ADDR). It is the only importer of grpc. Everything else is shared
// with the HTTP API: the protocol (package oip), the bearer-token verifier
// and scope (api/auth), the memory budget and admission, api.Describe's
// mapping of errors (a gRPC code derived from the HTTP status) and the
// metrics; request ids travel in the x-request-id metadata.
package grpcserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"catsdogs/admission"
	"catsdogs/api"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/oip"
	pb "catsdogs/oip/inferencepb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Options configure the server.
type Options struct {
	Model *oip.Model
	// Auth checks bearer tokens (metadata "authorization") on ModelInfer;
	// nil: auth is disabled.
	Auth  auth.Authenticator
	Scope string
	// Budget holds each ModelInfer request's bytes while it runs.
	Budget *admission.Budget
	// Ready reports whether to take traffic (nil: ServerReady and
	// ModelReady say true).
	Ready func() error
	// MaxMessageBytes caps a request message (PREDICT_MAX_BYTES, as infer's
	// REST body).
	MaxMessageBytes int
	// TLSCert and TLSKey, both or neither: PEM files to serve TLS with.
	TLSCert, TLSKey string
	// Version is what ServerMetadata reports.
	Version string
	Metrics *api.Metrics
	Logger  *slog.Logger
}

// Server is the gRPC service.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer
	o    Options
	grpc *grpc.Server
}

// New builds the server; Serve runs it.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{o: o}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(o.MaxMessageBytes), grpc.ChainUnaryInterceptor(s.intercept)}
	if o.TLSCert != "" || o.TLSKey != "" {
		creds, err := credentials.NewServerTLSFromFile(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("GRPC_TLS_CERT, GRPC_TLS_KEY: %w", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	s.grpc = grpc.NewServer(opts...)
	pb.RegisterGRPCInferenceServiceServer(s.grpc, s)
	return s, nil
}

// Serve answers calls on lis until ctx ends; then, as the HTTP server does,
// it keeps serving for drainDelay (while ServerReady says false), lets the
// calls in flight finish within grace, and returns.
func (s *Server) Serve(ctx context.Context, lis net.Listener, drainDelay, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	time.Sleep(drainDelay)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		s.grpc.Stop() // what is still running is cut off
	}
	<-errc
	return nil
}

// Stop ends the server at once.
func (s *Server) Stop() { s.grpc.Stop() }

type callKey struct{}

// call is what the interceptor learns of one call, for the log and metrics.
type call struct {
	results []*model.Result
}

// intercept gives every call a request id, logs it, counts it and turns its
// error into a status, in one place.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	t := time.Now()
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) == 1 && api.SaneRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
	log := s.o.Logger.With("request_id", id)
	c := &call{}
	resp, err := handler(context.WithValue(ctx, callKey{}, c), req)
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	code := codes.OK
	attrs := []any{"rpc", method}
	if err != nil {
		var st *status.Status
		st, err = s.status(ctx, err, log)
		code = st.Code()
		attrs = append(attrs, "error", st.Message())
		if r := auth.Reason(errOf(err)); r != "" {
			attrs = append(attrs, "auth_reason", r)
		}
	}
	if s.o.Metrics != nil {
		s.o.Metrics.CountRPC(method, code.String(), errOf(err), c.results)
	}
	if len(c.results) > 0 {
		attrs = append(attrs, "classified", len(c.results), "label", c.results[0].Label)
	}
	attrs = append(attrs, "code", code.String(), "ms", float64(time.Since(t).Microseconds())/1000)
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, "client_ip", hostOf(p.Addr))
	}
	log.Info("grpc request", attrs...)
	return resp, err
}

// mapped is a status made from an error of ours, which it keeps for metrics.
type mapped struct {
	st  *status.Status
	err error
}

func (m mapped) Error() string              { return m.st.Message() }
func (m mapped) GRPCStatus() *status.Status { return m.st }
func (m mapped) Unwrap() error              { return m.err }

func errOf(err error) error {
	var m mapped
	if errors.As(err, &m) {
		return m.err
	}
	return err
}

// status maps err through api.Describe: the HTTP status it would get picks
// the gRPC code, its detail is the message, Retry-After becomes metadata.
func (s *Server) status(ctx context.Context, err error, log *slog.Logger) (*status.Status, error) {
	if st, ok := status.FromError(err); ok && !isMapped(err) {
		return st, err // grpc's own (a message over the cap, ...)
	}
	a := api.Describe(err)
	if a.LogAs != "" {
		log.Error(a.LogAs, "err", err)
	}
	if a.RetryAfter != "" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("retry-after", a.RetryAfter))
	}
	code := codeFor(a.Status)
	if errors.Is(err, context.Canceled) {
		code = codes.Canceled
	}
	st := status.New(code, a.Detail)
	return st, mapped{st, err}
}

func isMapped(err error) bool { var m mapped; return errors.As(err, &m) }

// codeFor is the gRPC code for an HTTP status, as the gRPC and Google API
// guides pair them.
func codeFor(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

// authorize checks the call's bearer token and scope, as /upload's
// middlewares do, and names the client for admission's fairness.
func (s *Server) authorize(ctx context.Context) (context.Context, error) {
	client := ""
	if p, ok := peer.FromContext(ctx); ok {
		client = "ip:" + hostOf(p.Addr)
	}
	if s.o.Auth != nil {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/", nil)
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get("authorization") {
			r.Header.Add("Authorization", v)
		}
		p, err := s.o.Auth.Authenticate(r)
		if err != nil {
			if !auth.Known(err) {
				err = fmt.Errorf("%w: token could not be verified", auth.ErrInvalidToken)
			}
			return ctx, err
		}
		if err := p.Require(s.o.Scope); err != nil {
			return ctx, err
		}
		if p.Subject != "" {
			client = "sub:" + p.Subject
		}
	}
	return admission.WithClient(ctx, client), nil
}

func hostOf(a net.Addr) string {
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}
