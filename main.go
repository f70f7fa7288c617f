// Command catsdogs serves an ONNX image classifier over HTTP.
//
//	@title						catsdogs
//	@version					1.0
//	@description				Classifies images as Cat, Dog or Other with an ONNX model. POST an image to /upload as multipart/form-data (field "file") with an OAuth2 bearer token carrying the required scope (OAUTH2_SCOPE).
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				An OAuth2 access token (a JWT) from your identity provider, or from "make dev" locally. In Swagger UI paste the token alone: the "Bearer" prefix is added for you. The token needs the scope the operator configured (OAUTH2_SCOPE).
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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"catsdogs/admission"
	"catsdogs/api"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/oip"
	"catsdogs/oip/grpcserver"
	"catsdogs/server"
)

func main() {
	cmd, err := command(os.Args[1:])
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "catsdogs:", err)
		os.Exit(2)
	case cmd == cmdHelp:
		printHelp(os.Stdout)
		return
	case cmd == cmdVersion:
		fmt.Println(versionLine())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// SIGHUP's default is to exit at once, no drain: a terminal closing or a
	// habit of "reload" must not take the service down. Settings are read
	// only at start, so there is nothing to reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			slog.Warn("SIGHUP ignored: settings are read only at start; restart to change them (SIGTERM drains first)")
		}
	}()
	err = run(ctx, os.Args, os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "catsdogs:", err)
		os.Exit(1)
	}
}

// The commands: serving takes no arguments (settings are environment
// variables), and three words do something else.
const (
	cmdServe       = ""
	cmdHealthcheck = "healthcheck"
	cmdHelp        = "help"
	cmdVersion     = "version"
)

// command reads the arguments. Anything it does not know is an error, not
// ignored: `catsdogs --port 9` must not start on the default port.
func command(args []string) (string, error) {
	if len(args) == 0 {
		return cmdServe, nil
	}
	if len(args) == 1 {
		switch args[0] {
		case "healthcheck":
			return cmdHealthcheck, nil
		case "--help", "-help", "-h", "help":
			return cmdHelp, nil
		case "--version", "-version", "version":
			return cmdVersion, nil
		}
	}
	return "", fmt.Errorf("unknown arguments %q: catsdogs takes none to serve (settings are environment variables, see catsdogs --help), "+
		"or one of healthcheck, --help, --version", strings.Join(args, " "))
}

// run is the whole program: args and the environment in, logs out to logs.
// It checks the configuration, listens (so a bad port fails before the
// model loads), serves /health and a not-ready /ready while the model
// loads, then the API; when ctx ends it drains. `catsdogs healthcheck`
// probes a running instance.
func run(ctx context.Context, args []string, getenv func(string) string, logs io.Writer) error {
	if len(args) > 1 && args[1] == cmdHealthcheck {
		return healthcheck(listenAddr(getenv))
	}
	started := time.Now()
	cfg, err := loadConfig(getenv)
	log := newLogger(logs, cfg.LogFormat)
	slog.SetDefault(log)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	setMemoryLimit(getenv, log)
	metrics := api.NewMetrics()

	srv, err := server.New(server.Options{Addr: net.JoinHostPort(cfg.ListenAddr, cfg.Port), MaxConns: cfg.MaxConns,
		DrainDelay: cfg.DrainDelay, Logger: log})
	if err != nil {
		return fmt.Errorf("PORT, LISTEN_ADDR: %w", err)
	}
	servers := []*server.Server{srv}
	var metricsSrv *server.Server
	if cfg.MetricsAddr != "" {
		if metricsSrv, err = server.New(server.Options{Addr: cfg.MetricsAddr, DrainDelay: cfg.DrainDelay, Logger: log}); err != nil {
			srv.Stop()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		servers = append(servers, metricsSrv)
	}

	// The gRPC listener is bound now too, so a bad GRPC_ADDR fails as fast.
	var grpcLis net.Listener
	if cfg.GRPCAddr != "" {
		if grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			for _, s := range servers {
				s.Stop()
			}
			return fmt.Errorf("GRPC_ADDR: %w", err)
		}
		defer grpcLis.Close()
	}

	// Readiness: every check must pass; /ready lists those that do not.
	var loaded atomic.Bool
	ready := readiness{srv.Ready, func() error {
		if !loaded.Load() {
			return errors.New("the model is loading and warming up")
		}
		return nil
	}}
	var authn auth.Authenticator
	if cfg.AuthDisabled {
		msg := "AUTHENTICATION IS DISABLED (AUTH_DISABLED=true): /upload and /predict accept requests without a token. Never do this in production."
		if cfg.Issuer != "" || len(cfg.Audiences) > 0 {
			// A leftover AUTH_DISABLED must not pass for a working issuer setup.
			msg += " OAUTH2_ISSUER and OAUTH2_AUDIENCE are set but IGNORED."
		}
		log.Warn(msg)
	} else {
		v, err := auth.NewVerifier(auth.Config{Issuer: cfg.Issuer, Audiences: cfg.Audiences, JWKSURI: cfg.JWKSURI, Leeway: cfg.Leeway, MinRefresh: cfg.JWKSRefresh})
		if err != nil {
			return err
		}
		authn = v
		ready = append(ready, func() error {
			if err := v.KeysReady(); err != nil {
				return &api.NotReady{Reason: "no signing keys from the identity provider (OAUTH2_ISSUER) yet", Err: err}
			}
			return nil
		})
		log.Info("auth", "issuer", cfg.Issuer, "audience", cfg.Audiences, "jwks_uri", cfg.JWKSURI, "scope", cfg.Scope)
		go fetchKeys(ctx, v, cfg.Issuer, log)
	}

	handler := &swapHandler{}
	handler.set(api.Starting(api.Deps{Ready: ready.check, Metrics: metrics, MetricsElsewhere: metricsSrv != nil,
		AuthDisabled: cfg.AuthDisabled, TrustedProxies: cfg.TrustedProxies, Logger: log}))
	errc := make(chan error, len(servers))
	go func() { errc <- srv.Serve(ctx, handler) }()
	if metricsSrv != nil {
		go func() { errc <- metricsSrv.Serve(ctx, metrics.Handler()) }()
	}
	// stopAll ends the servers without the drain delay and waits for them.
	stopAll := func(cause error) error {
		for _, s := range servers {
			s.Stop()
		}
		for range servers {
			<-errc
		}
		return cause
	}

	// One admission for the process: the model sizes its limiter and
	// reserves decodes from its budget, the API reserves request bodies.
	adm := admission.New(admission.Config{MemoryBudget: cfg.MemoryBudget, QueueSize: cfg.QueueSize})
	clf, err := model.Load(model.Options{
		Path: cfg.ModelPath, Library: cfg.ORTLibrary, SidecarPath: cfg.ModelSidecar,
		Overrides: cfg.ModelOverrides, Workers: cfg.Workers, IntraOpThreads: cfg.IntraThreads,
		MaxPixels: cfg.MaxPixels, MaxSide: cfg.MaxSide, MaxAspect: cfg.MaxAspect,
		DecodeTimeout: cfg.DecodeTimeout, Admission: adm, Logger: log,
		MaxBatch: cfg.BatchMaxSize, MaxDelay: cfg.BatchMaxDelay, Precision: cfg.Precision,
	})
	if err != nil {
		return stopAll(fmt.Errorf("loading model: %w", err))
	}
	defer clf.Close()
	info := clf.Info
	log.Info("model ready", "name", info.Name, "version", info.Version, "labels", info.Labels, "input", info.Input,
		"spec_source", info.SpecSource, "workers", info.Workers, "intra_op_threads", info.IntraThreads,
		"batch_max_size", info.MaxBatch, "batch_max_delay_ms", info.MaxDelayMS,
		"queue", info.QueueSize, "warmup_ms", info.WarmupMS, "onnxruntime", info.Library)

	build := buildInfo(info)
	metrics.SetBuild(build)
	handler.set(api.NewRouter(api.Deps{
		Classifier: clf, Model: info, Admission: adm, Ready: ready.check, Auth: authn, Scope: cfg.Scope,
		MaxUploadBytes: cfg.MaxUploadBytes, PredictMaxFiles: cfg.PredictMaxFiles, PredictMaxBytes: cfg.PredictMaxBytes,
		AuthDisabled: cfg.AuthDisabled, TrustedProxies: cfg.TrustedProxies,
		DocsPersistAuth: cfg.DocsPersistAuth, Logger: log, Metrics: metrics, MetricsElsewhere: metricsSrv != nil,
		Build: build, CORSOrigins: cfg.CORSOrigins,
	}))
	if grpcLis != nil {
		gs, err := grpcserver.New(grpcserver.Options{Model: oip.New(clf, info, cfg.PredictMaxFiles), Auth: authn, Scope: cfg.Scope,
			Budget: adm.Budget, Ready: ready.check, MaxMessageBytes: int(cfg.PredictMaxBytes),
			TLSCert: cfg.GRPCTLSCert, TLSKey: cfg.GRPCTLSKey, Version: build.Version, Metrics: metrics, Logger: log})
		if err != nil {
			return stopAll(err)
		}
		done := make(chan error, 1)
		go func() { done <- gs.Serve(ctx, grpcLis, cfg.DrainDelay, server.DefaultDrainTimeout) }() // the HTTP server's grace
		defer func() {
			if ctx.Err() == nil { // the HTTP side failed: no drain
				gs.Stop()
			}
			<-done
		}()
	}
	loaded.Store(true)
	attrs := []any{"addr", srv.Addr().String(), "startup_ms", time.Since(started).Milliseconds(),
		"auth_disabled", cfg.AuthDisabled, "docs", "/docs", "version", build.Version, "commit", build.Commit,
		"go", build.GoVersion, "onnxruntime_version", build.ONNXRuntime, "model", build.Model, "model_version", build.ModelVer}
	if metricsSrv != nil {
		attrs = append(attrs, "metrics_addr", metricsSrv.Addr().String())
	}
	if grpcLis != nil {
		attrs = append(attrs, "grpc_addr", grpcLis.Addr().String(), "grpc_tls", cfg.GRPCTLSCert != "")
	}
	log.Info("listening", attrs...)
	var first error
	for range servers {
		if err := <-errc; err != nil && first == nil {
			first = err
			for _, s := range servers { // one failed: end the others too
				s.Stop()
			}
		}
	}
	return first
}

// fetchKeys gets the issuer's signing keys at start, so the first token
// needs no fetch and /ready knows whether tokens can be checked. A few
// quick tries; if the IdP does not answer, a loud warning (it may come up
// later, so no crash) and background retries until it does.
func fetchKeys(ctx context.Context, v *auth.Verifier, issuer string, log *slog.Logger) {
	const attempts, within = 3, 10 * time.Second
	tctx, cancel := context.WithTimeout(ctx, within)
	err := v.FetchKeys(tctx, attempts)
	cancel()
	if err != nil {
		log.Warn("IDENTITY PROVIDER UNREACHABLE: no signing keys after "+strconv.Itoa(attempts)+" tries; "+
			"/ready answers 503 and /upload 503 auth_unavailable until they can be fetched (retrying in the background)",
			"issuer", issuer, "err", err)
		if err = v.FetchKeys(ctx, 0); err != nil {
			return // ctx ended
		}
	}
	log.Info("auth keys fetched", "issuer", issuer)
}

// healthcheck probes /health where the server listens: LISTEN_ADDR if it
// names one interface, else loopback.
func healthcheck(host, port string) error {
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
