// Command catsdogs serves an ONNX image classifier over HTTP.
//
//	@title						catsdogs
//	@version					1.0
//	@description				Classifies images as Cat, Dog or Other with an ONNX model. POST an image to /upload as multipart/form-data (field "file") with an OAuth2 bearer token carrying the required scope (default get::prediction).
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				Paste "Bearer <access token>" (a bare token also works). The token needs the scope get::prediction unless the operator configured another.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"catsdogs/api"
	"catsdogs/api/auth"
	_ "catsdogs/docs" // generated Swagger spec, served at /docs
	"catsdogs/model"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/netutil"
)

func main() {
	// `catsdogs healthcheck` lets a container HEALTHCHECK probe /health
	// without shipping curl in the image.
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv("LISTEN_ADDR"), os.Getenv("PORT")))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "catsdogs:", err)
		os.Exit(1)
	}
}

// run wires config → model → router → server and blocks until ctx ends.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	started := time.Now()
	cfg, err := loadConfig(getenv)
	log := newLogger(logOut, cfg.LogFormat)
	slog.SetDefault(log)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}

	var authn auth.Authenticator
	if cfg.AuthDisabled {
		log.Warn("AUTHENTICATION IS DISABLED (AUTH_DISABLED=true): /upload accepts requests without a token. Never do this in production.")
	} else {
		v, err := auth.NewVerifier(auth.Config{Issuer: cfg.Issuer, Audiences: cfg.Audiences, JWKSURI: cfg.JWKSURI, Leeway: cfg.Leeway, MinRefresh: cfg.JWKSRefresh})
		if err != nil {
			return err
		}
		authn = v
		log.Info("auth", "issuer", cfg.Issuer, "audience", cfg.Audiences, "jwks_uri", cfg.JWKSURI, "scope", cfg.Scope)
	}

	clf, err := model.Load(model.Options{
		Path: cfg.ModelPath, Library: cfg.ORTLibrary, SidecarPath: cfg.ModelSidecar,
		Overrides: cfg.ModelOverrides, Workers: cfg.Workers, IntraOpThreads: cfg.IntraThreads,
		QueueSize: cfg.QueueSize, MaxPixels: cfg.MaxPixels, MaxSide: cfg.MaxSide, MaxAspect: cfg.MaxAspect,
		DecodeTimeout: cfg.DecodeTimeout, MemoryBudget: cfg.MemoryBudget, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("loading model: %w", err)
	}
	defer clf.Close()
	info := clf.Info
	log.Info("model ready", "name", info.Name, "version", info.Version, "labels", info.Labels, "input", info.Input,
		"spec_source", info.SpecSource, "workers", info.Workers, "intra_op_threads", info.IntraThreads,
		"queue", info.QueueSize, "warmup_ms", info.WarmupMS, "onnxruntime", info.Library)

	gin.SetMode(gin.ReleaseMode)
	router := api.NewRouter(api.Deps{
		Classifier: clf, Model: info, Auth: authn, Scope: cfg.Scope, MaxUploadBytes: cfg.MaxUploadBytes,
		AuthDisabled: cfg.AuthDisabled, TrustedProxies: cfg.TrustedProxies,
		DocsPersistAuth: cfg.DocsPersistAuth, Logger: log,
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenAddr, cfg.Port))
	if err != nil {
		return err
	}
	// Past MAX_CONNECTIONS, new connections wait in the kernel's accept
	// queue instead of each costing a goroutine and buffers here.
	if cfg.MaxConns > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConns)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second, // slow uploads end; no goroutine waits forever
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("listening", "addr", ln.Addr().String(), "startup_ms", time.Since(started).Milliseconds(),
		"auth_disabled", cfg.AuthDisabled, "docs", "/docs")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// healthcheck probes /health where the server listens: LISTEN_ADDR if it
// names one interface, else loopback.
func healthcheck(host, port string) int {
	if port == "" {
		port = "8080"
	}
	host = strings.Trim(strings.TrimSpace(host), "[]")
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: status", resp.Status)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
