// Command catsdogs serves an ONNX image classifier over HTTP.
//
//	@title						catsdogs
//	@version					1.0
//	@description				Classifies images as Cat, Dog or Other with an ONNX model. POST an image to /upload as multipart/form-data (field "file") with an OAuth2 bearer token carrying the required scope (default get::prediction).
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				An OAuth2 access token (a JWT) from your identity provider, or from "make dev" locally. In Swagger UI paste the token alone: the "Bearer" prefix is added for you. The token needs the scope get::prediction unless the operator configured another.
package main

import (
	"context"
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
	"catsdogs/model"
	"catsdogs/server"

	"github.com/gin-gonic/gin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "catsdogs:", err)
		os.Exit(1)
	}
}

// run is the whole program: args and the environment in, logs out to logs.
// It wires config → auth → model → server → router and blocks until ctx
// ends, then drains. `catsdogs healthcheck` probes a running instance.
func run(ctx context.Context, args []string, getenv func(string) string, logs io.Writer) error {
	if len(args) > 1 && args[1] == "healthcheck" {
		return healthcheck(getenv("LISTEN_ADDR"), getenv("PORT"))
	}
	started := time.Now()
	cfg, err := loadConfig(getenv)
	log := newLogger(logs, cfg.LogFormat)
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

	srv, err := server.New(server.Options{Addr: net.JoinHostPort(cfg.ListenAddr, cfg.Port), MaxConns: cfg.MaxConns, Logger: log})
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	router := api.NewRouter(api.Deps{
		Classifier: clf, Model: info, Ready: srv.Ready, Auth: authn, Scope: cfg.Scope,
		MaxUploadBytes: cfg.MaxUploadBytes, AuthDisabled: cfg.AuthDisabled, TrustedProxies: cfg.TrustedProxies,
		DocsPersistAuth: cfg.DocsPersistAuth, Logger: log,
	})
	log.Info("listening", "addr", srv.Addr().String(), "startup_ms", time.Since(started).Milliseconds(),
		"auth_disabled", cfg.AuthDisabled, "docs", "/docs")
	return srv.Serve(ctx, router)
}

// healthcheck probes /health where the server listens: LISTEN_ADDR if it
// names one interface, else loopback.
func healthcheck(host, port string) error {
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
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %s", resp.Status)
	}
	return nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
