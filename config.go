package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"catsdogs/admission"
	"catsdogs/model"
	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"catsdogs/resources"
)

// Config is every setting the service reads, all from the environment.
// settings (below) lists the same names with their defaults for --help, and
// docs/CONFIGURATION.md's table documents them.
type Config struct {
	Port       string // PORT, default 8080
	ListenAddr string // LISTEN_ADDR: host or IP to bind; default all interfaces

	ModelPath    string // MODEL_PATH, default resources.DefaultModel
	ModelSidecar string // MODEL_SPEC: JSON preprocessing overrides (default <model>.json if present)
	Precision    string // MODEL_PRECISION: auto (default), fp32 or int8
	ORTLibrary   string // ONNXRUNTIME_LIB: path to libonnxruntime.so (default: searched)
	// MODEL_LABELS, MODEL_INPUT_SIZE, ... (modelEnv): preprocessing
	// overrides, applied over the model's metadata and sidecar.
	ModelOverrides spec.Overrides

	Issuer       string        // OAUTH2_ISSUER, exact "iss" (keep Auth0's trailing slash)
	Audiences    []string      // OAUTH2_AUDIENCE, comma-separated; "aud" must contain one
	JWKSURI      string        // OAUTH2_JWKS_URI, optional: skips OIDC discovery
	Scope        string        // OAUTH2_SCOPE, default get::prediction
	AuthDisabled bool          // AUTH_DISABLED=true turns auth off (local use only)
	Leeway       time.Duration // OAUTH2_LEEWAY, default 30s: clock skew allowed on exp/nbf
	JWKSRefresh  time.Duration // OAUTH2_JWKS_MIN_REFRESH, default 30s: least time between JWKS refetches
	// OAUTH2_ALLOW_HTTP, default false: accept an http:// issuer or JWKS URI
	// on a host other than loopback (a development IdP on the LAN).
	AllowHTTPIssuer bool

	MaxUploadBytes  int64         // MAX_UPLOAD_BYTES, default 10 MiB
	MaxPixels       int           // MAX_IMAGE_PIXELS, default 50,000,000
	MaxSide         int           // MAX_IMAGE_SIDE, default 16384: longest width or height
	MaxAspect       int           // MAX_IMAGE_ASPECT, default 32: long side ÷ short side
	DecodeTimeout   time.Duration // DECODE_TIMEOUT, default 10s: one image's decode
	MemoryBudget    int64         // MEMORY_BUDGET, default 256 MiB: bodies + decodes in flight
	MaxConns        int           // MAX_CONNECTIONS, default 512: open client connections
	Workers         int           // INFERENCE_WORKERS, default = CPU quota
	IntraThreads    int           // ORT_INTRA_OP_THREADS, default = CPU quota / workers
	QueueSize       int           // INFERENCE_QUEUE, default 2 × the requests admitted at once
	BatchMaxSize    int           // BATCH_MAX_SIZE, default 8: images per ONNX Runtime run (1: batching off)
	BatchMaxDelay   time.Duration // BATCH_MAX_DELAY, default 2ms: longest an image waits for others to join its run
	PredictMaxFiles int           // PREDICT_MAX_FILES, default 32: images per /predict request
	PredictMaxBytes int64         // PREDICT_MAX_BYTES, default 32 MiB: /predict request body cap

	TrustedProxies []string // TRUSTED_PROXIES, comma-separated CIDRs/IPs; default none
	LogFormat      string   // LOG_FORMAT: text (default) or json
	// DOCS_PERSIST_AUTHORIZATION, default false: Swagger UI keeps a pasted
	// token in the browser's localStorage.
	DocsPersistAuth bool

	MetricsAddr string        // METRICS_ADDR: host:port for /metrics alone; default: on the API port
	DrainDelay  time.Duration // SHUTDOWN_DRAIN_DELAY, default 5s: /ready says 503 this long before the listener closes
	CORSOrigins []string      // CORS_ALLOWED_ORIGINS: browser origins allowed to call the API; default none

	// GRPC_ADDR: host:port of the Open Inference Protocol's gRPC service;
	// default "" (off). GRPC_TLS_CERT and GRPC_TLS_KEY, both or neither: TLS.
	GRPCAddr, GRPCTLSCert, GRPCTLSKey string
}

// threadsPerCPU bounds INFERENCE_WORKERS, ORT_INTRA_OP_THREADS and their
// product: more ONNX Runtime threads than this per CPU only contend.
const threadsPerCPU = 4

// setting is one environment variable as --help shows it.
type setting struct{ name, def, help string }

// settings lists every variable loadConfig reads (TestSettingsListed keeps
// the two, and docs/CONFIGURATION.md's table, in step), in --help's order.
var settings = []setting{
	{"PORT", "8080", "listen port (0: any free port)"},
	{"LISTEN_ADDR", "all interfaces", "host or IP to bind, without a port"},
	{"MODEL_PATH", resources.DefaultModel, "the ONNX model to serve"},
	{"MODEL_SPEC", "<model>.json if it exists", "JSON preprocessing overrides"},
	{"MODEL_PRECISION", model.PrecisionAuto, "auto, fp32 or int8: auto serves the model's int8 copy (<model>-int8.onnx) when it kept its accuracy and is faster here"},
	{"ONNXRUNTIME_LIB", "searched (third_party/, system lib dirs)", "ONNX Runtime 1.24.x shared library"},
	{"OAUTH2_ISSUER", "(required unless AUTH_DISABLED)", "exact iss of tokens; an https URL (http only for loopback or with OAUTH2_ALLOW_HTTP)"},
	{"OAUTH2_AUDIENCE", "(required unless AUTH_DISABLED)", "API identifier(s), comma-separated; aud must contain one"},
	{"OAUTH2_JWKS_URI", "discovered from the issuer", "JWKS URL; when set, no discovery is made"},
	{"OAUTH2_SCOPE", "get::prediction", "scope required on /upload and /predict"},
	{"OAUTH2_LEEWAY", "30s", "clock-skew allowance on exp and nbf"},
	{"OAUTH2_JWKS_MIN_REFRESH", "30s", "paces JWKS fetches (refetch budget refill, back-off cap, max-age floor)"},
	{"OAUTH2_ALLOW_HTTP", "false", "accept an http issuer or JWKS URI on a non-loopback host (development only)"},
	{"AUTH_DISABLED", "false", "true serves /upload and /predict without tokens (local use only)"},
	{"MAX_UPLOAD_BYTES", "10MiB", "request body cap (bytes, or with KiB/MiB/GiB)"},
	{"MAX_IMAGE_PIXELS", "50000000", "width x height cap, checked before decoding"},
	{"MAX_IMAGE_SIDE", strconv.Itoa(decode.DefaultMaxSide), "longest width or height"},
	{"MAX_IMAGE_ASPECT", strconv.Itoa(decode.DefaultMaxAspect), "long side / short side"},
	{"DECODE_TIMEOUT", decode.DefaultDecodeTimeout.String(), "longest one image's decode may take"},
	{"MEMORY_BUDGET", "256MiB", "bytes held at once by request bodies and decodes"},
	{"MAX_CONNECTIONS", "512", "open client connections (0: no cap)"},
	{"INFERENCE_WORKERS", "CPU quota", "ONNX Runtime runs at once"},
	{"ORT_INTRA_OP_THREADS", "CPU quota / workers", "ONNX Runtime threads per run"},
	{"INFERENCE_QUEUE", "2 x admitted", "requests allowed to wait; admitted at once = CPU quota + workers x BATCH_MAX_SIZE"},
	{"BATCH_MAX_SIZE", "8", "images one ONNX Runtime run may take from concurrent requests (1: batching off)"},
	{"BATCH_MAX_DELAY", "2ms", "longest an image waits for others to join its run (none when no other is on its way)"},
	{"PREDICT_MAX_FILES", "32", "images per /predict request"},
	{"PREDICT_MAX_BYTES", "32MiB (at most MEMORY_BUDGET)", "/predict request body cap (bytes, or with KiB/MiB/GiB)"},
	{"TRUSTED_PROXIES", "none", "proxy IPs/CIDRs whose X-Forwarded-For is believed"},
	{"LOG_FORMAT", "text", "text or json"},
	{"DOCS_PERSIST_AUTHORIZATION", "false", "Swagger UI keeps a pasted token in localStorage"},
	{"METRICS_ADDR", "(on the API port)", "host:port to serve /metrics on instead, e.g. :9090"},
	{"SHUTDOWN_DRAIN_DELAY", "5s", "after SIGTERM, /ready says 503 this long while still serving, then requests in flight finish"},
	{"CORS_ALLOWED_ORIGINS", "none (CORS off)", "comma-separated origins (https://app.example) or *, allowed to call from a browser"},
	{"GRPC_ADDR", "(off)", "host:port for the Open Inference Protocol's gRPC service, e.g. 127.0.0.1:8081"},
	{"GRPC_TLS_CERT", "(none: plaintext)", "PEM certificate (chain) for gRPC TLS; with GRPC_TLS_KEY"},
	{"GRPC_TLS_KEY", "(none: plaintext)", "PEM private key for gRPC TLS; with GRPC_TLS_CERT"},
	{"MODEL_LABELS, ...", "from the model's metadata", "preprocessing overrides (docs/MODELS.md: Serving another model)"},
}

// printHelp writes every setting with its default.
func printHelp(w io.Writer) {
	fmt.Fprint(w, "catsdogs classifies images as Cat, Dog or Other over HTTP.\n\n"+
		"Usage: catsdogs              serve (configured by the environment variables below)\n"+
		"       catsdogs healthcheck  probe a running instance's /health (for container health checks)\n"+
		"       catsdogs --version    the version, commit and Go version\n"+
		"       catsdogs --help       this text\n\nSettings:\n")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, s := range settings {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.name, s.def, s.help)
	}
	tw.Flush()
}

// loadConfig reads and checks every setting before anything heavy starts.
// It reports all problems at once, each naming its variable and the form
// it wants, so one restart fixes them all.
func loadConfig(getenv func(string) string) (Config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, a...)...))
	}
	boolean := func(name string) bool {
		v := env(name, "false")
		switch strings.ToLower(v) {
		case "1", "true":
			return true
		case "0", "false":
			return false
		}
		bad(name, "%q is not a boolean (want true, false, 1 or 0)", v)
		return false
	}
	// Where 0 would read as "no limit" but the code below it would take
	// 0 as "the default", an explicit 0 is refused (zeroOK false).
	zero := func(name, v string) {
		for _, s := range settings {
			if s.name == name {
				bad(name, "%q is not allowed (want more than 0; leave it unset for the default, %s)", v, s.def)
			}
		}
	}
	duration := func(name, def string, zeroOK bool) time.Duration {
		v := env(name, def)
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(name, "%q is not a duration (want e.g. 500ms, 30s, 2m)", v)
		} else if d == 0 && !zeroOK {
			zero(name, v)
		}
		return d
	}
	// number: def "" is a default computed later (0 here).
	number := func(name, def string, zeroOK bool) int {
		v := env(name, def)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad(name, "%q is not a whole number >= 0", v)
		} else if n == 0 && !zeroOK {
			zero(name, v)
		}
		return n
	}
	size := func(name, def string) int64 { // 0 is never allowed
		v := env(name, def)
		n, err := parseBytes(v)
		if err != nil {
			bad(name, "%q is not a size (want bytes, e.g. 10485760, or with KiB, MiB, GiB: 10MiB)", v)
		} else if n == 0 {
			zero(name, v)
		}
		return n
	}

	c := Config{
		ModelPath:      env("MODEL_PATH", resources.DefaultModel),
		ModelSidecar:   env("MODEL_SPEC", ""),
		Precision:      env("MODEL_PRECISION", model.PrecisionAuto),
		ORTLibrary:     env("ONNXRUNTIME_LIB", ""),
		Issuer:         env("OAUTH2_ISSUER", ""),
		Audiences:      list(env("OAUTH2_AUDIENCE", "")),
		JWKSURI:        env("OAUTH2_JWKS_URI", ""),
		Scope:          env("OAUTH2_SCOPE", "get::prediction"),
		LogFormat:      env("LOG_FORMAT", "text"),
		TrustedProxies: list(env("TRUSTED_PROXIES", "")),
		MetricsAddr:    env("METRICS_ADDR", ""),
		CORSOrigins:    list(env("CORS_ALLOWED_ORIGINS", "")),
		GRPCAddr:       env("GRPC_ADDR", ""),
		GRPCTLSCert:    env("GRPC_TLS_CERT", ""),
		GRPCTLSKey:     env("GRPC_TLS_KEY", ""),
	}
	c.ListenAddr, c.Port = listenAddr(getenv)
	c.AuthDisabled = boolean("AUTH_DISABLED")
	c.AllowHTTPIssuer = boolean("OAUTH2_ALLOW_HTTP")
	c.DocsPersistAuth = boolean("DOCS_PERSIST_AUTHORIZATION")
	c.Leeway = duration("OAUTH2_LEEWAY", "30s", true)
	c.JWKSRefresh = duration("OAUTH2_JWKS_MIN_REFRESH", "30s", false)
	c.DecodeTimeout = duration("DECODE_TIMEOUT", decode.DefaultDecodeTimeout.String(), false)
	c.DrainDelay = duration("SHUTDOWN_DRAIN_DELAY", "5s", true)
	c.MaxUploadBytes = size("MAX_UPLOAD_BYTES", strconv.Itoa(10<<20))
	c.MemoryBudget = size("MEMORY_BUDGET", strconv.Itoa(admission.DefaultMemoryBudget))
	c.MaxPixels = number("MAX_IMAGE_PIXELS", "50000000", false)
	c.MaxSide = number("MAX_IMAGE_SIDE", strconv.Itoa(decode.DefaultMaxSide), false)
	c.MaxAspect = number("MAX_IMAGE_ASPECT", strconv.Itoa(decode.DefaultMaxAspect), false)
	c.MaxConns = number("MAX_CONNECTIONS", "512", true)       // 0: no cap
	c.Workers = number("INFERENCE_WORKERS", "", true)         // 0: the CPU quota
	c.IntraThreads = number("ORT_INTRA_OP_THREADS", "", true) // 0: CPU quota / workers
	c.QueueSize = number("INFERENCE_QUEUE", "", false)
	c.BatchMaxSize = number("BATCH_MAX_SIZE", "8", false)
	c.BatchMaxDelay = duration("BATCH_MAX_DELAY", "2ms", true)
	c.PredictMaxFiles = number("PREDICT_MAX_FILES", "32", false)
	// Unset: 32 MiB, or the whole memory budget when that is smaller.
	predictMaxSet := env("PREDICT_MAX_BYTES", "") != ""
	c.PredictMaxBytes = size("PREDICT_MAX_BYTES", strconv.Itoa(32<<20))
	if !predictMaxSet && c.MemoryBudget > 0 && c.MemoryBudget < c.PredictMaxBytes {
		c.PredictMaxBytes = c.MemoryBudget
	}
	// Each runner keeps buffers for a full batch, and admission grows with
	// it: past 64 that buys nothing on a CPU.
	if c.BatchMaxSize > 64 {
		bad("BATCH_MAX_SIZE", "%d is too large (want 1 to 64; 4 to 16 is typical)", c.BatchMaxSize)
	}
	if c.BatchMaxDelay > time.Second {
		bad("BATCH_MAX_DELAY", "%s is too long (want at most 1s; a few ms is typical)", c.BatchMaxDelay)
	}
	// Past these a value is a typo or a hazard, not a choice: every ONNX
	// Runtime thread is an OS thread (ORT_INTRA_OP_THREADS=5000 hung
	// start-up), and a JWKS_MIN_REFRESH of 1ns let each forged token fetch.
	cpus := runtime.GOMAXPROCS(0)
	maxThreads := threadsPerCPU * cpus
	if c.Workers > maxThreads {
		bad("INFERENCE_WORKERS", "%d is too many for %d CPUs (want at most %d; unset: one per CPU)", c.Workers, cpus, maxThreads)
	}
	if c.IntraThreads > maxThreads {
		bad("ORT_INTRA_OP_THREADS", "%d is too many for %d CPUs (want at most %d; unset: CPUs / INFERENCE_WORKERS)", c.IntraThreads, cpus, maxThreads)
	} else if n := cmp.Or(c.Workers, cpus) * c.IntraThreads; n > maxThreads {
		bad("ORT_INTRA_OP_THREADS", "%d per run times %d runners (INFERENCE_WORKERS) is %d ONNX Runtime threads, too many for %d CPUs (want at most %d in all)",
			c.IntraThreads, cmp.Or(c.Workers, cpus), n, cpus, maxThreads)
	}
	for _, r := range []struct {
		name   string
		n, max int
	}{
		{"MAX_CONNECTIONS", c.MaxConns, 1 << 20},
		{"INFERENCE_QUEUE", c.QueueSize, 1 << 16},
		{"PREDICT_MAX_FILES", c.PredictMaxFiles, 1024},
	} {
		if r.n > r.max {
			bad(r.name, "%d is too large (want at most %d)", r.n, r.max)
		}
	}
	for _, r := range []struct {
		name     string
		d        time.Duration
		min, max time.Duration
	}{
		{"OAUTH2_JWKS_MIN_REFRESH", c.JWKSRefresh, time.Second, time.Hour},
		{"OAUTH2_LEEWAY", c.Leeway, 0, 10 * time.Minute},
		{"DECODE_TIMEOUT", c.DecodeTimeout, 100 * time.Millisecond, time.Minute},
		{"SHUTDOWN_DRAIN_DELAY", c.DrainDelay, 0, 10 * time.Minute},
	} {
		if r.d > 0 && (r.d < r.min || r.d > r.max) { // 0: refused or meant above
			bad(r.name, "%s is out of range (want %s to %s)", r.d, r.min, r.max)
		}
	}

	if p, err := strconv.Atoi(c.Port); err != nil || p < 0 || p > 65535 {
		bad("PORT", "%q is not a port (want a number from 0 to 65535)", c.Port)
	}
	// A port in LISTEN_ADDR would compete with PORT: take the host only.
	if _, _, err := net.SplitHostPort(c.ListenAddr); err == nil {
		bad("LISTEN_ADDR", "%q has a port; give only the host or IP and set PORT", c.ListenAddr)
	}
	if c.MetricsAddr != "" {
		if _, p, err := net.SplitHostPort(c.MetricsAddr); err != nil || p == "" {
			bad("METRICS_ADDR", "%q is not host:port (want e.g. :9090 or 127.0.0.1:9090)", c.MetricsAddr)
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("METRICS_ADDR", "%q has no valid port (want e.g. :9090)", c.MetricsAddr)
		}
	}
	if c.GRPCAddr != "" {
		if _, p, err := net.SplitHostPort(c.GRPCAddr); err != nil || p == "" {
			bad("GRPC_ADDR", "%q is not host:port (want e.g. 127.0.0.1:8081 or :8081)", c.GRPCAddr)
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("GRPC_ADDR", "%q has no valid port (want e.g. :8081)", c.GRPCAddr)
		}
	}
	if (c.GRPCTLSCert == "") != (c.GRPCTLSKey == "") {
		bad("GRPC_TLS_CERT", "needs GRPC_TLS_KEY and the key needs it (set both PEM files, or neither for plaintext)")
	}
	for name, f := range map[string]string{"GRPC_TLS_CERT": c.GRPCTLSCert, "GRPC_TLS_KEY": c.GRPCTLSKey} {
		if fi, err := os.Stat(f); f != "" && (err != nil || fi.IsDir()) {
			bad(name, "%s: no such file (want a PEM file)", f)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("LOG_FORMAT", "%q is not a log format (want text or json)", c.LogFormat)
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("TRUSTED_PROXIES", "%q is not an IP or CIDR (want e.g. 10.0.0.1 or 10.0.0.0/8, comma-separated)", p)
		}
	}
	for i, o := range c.CORSOrigins {
		var err error
		if c.CORSOrigins[i], err = origin(o); err != nil {
			bad("CORS_ALLOWED_ORIGINS", "%q %v (want * or origins like https://app.example, comma-separated)", o, err)
		}
	}

	// Files: cheap to check now, slow to discover after loading the runtime.
	if fi, err := os.Stat(c.ModelPath); err != nil || fi.IsDir() {
		bad("MODEL_PATH", "%s: no such file (want the path of an .onnx model)", c.ModelPath)
	}
	if c.ORTLibrary != "" {
		if fi, err := os.Stat(c.ORTLibrary); err != nil || fi.IsDir() {
			bad("ONNXRUNTIME_LIB", "%s: no such file (want the path of libonnxruntime.so 1.24.x; `make ort` fetches it)", c.ORTLibrary)
		}
	}
	if !slices.Contains(model.Precisions, c.Precision) {
		bad("MODEL_PRECISION", "%q is not a precision (want %s)", c.Precision, strings.Join(model.Precisions, ", "))
	}
	if c.ModelSidecar != "" {
		if fi, err := os.Stat(c.ModelSidecar); err != nil || fi.IsDir() {
			bad("MODEL_SPEC", "%s: no such file (want a JSON preprocessing file)", c.ModelSidecar)
		}
	}

	// Fail closed: without an issuer and audience there is no way to check a
	// token, so refuse to start rather than serve /upload openly.
	if !c.AuthDisabled {
		if c.Issuer == "" {
			bad("OAUTH2_ISSUER", "not set (want your identity provider's issuer URL, e.g. https://TENANT.auth0.com/; or AUTH_DISABLED=true for local use without one)")
		} else if err := checkIssuerURL(c.Issuer, c.AllowHTTPIssuer); err != nil {
			bad("OAUTH2_ISSUER", "%q %v", c.Issuer, err)
		}
		if len(c.Audiences) == 0 {
			bad("OAUTH2_AUDIENCE", "not set (want the API identifier tokens carry in aud, e.g. https://catsdogs-api; or AUTH_DISABLED=true)")
		}
		if c.JWKSURI != "" {
			if err := checkIssuerURL(c.JWKSURI, c.AllowHTTPIssuer); err != nil {
				bad("OAUTH2_JWKS_URI", "%q %v", c.JWKSURI, err)
			}
		}
		if strings.ContainsAny(c.Scope, " \t") { // empty: unset, the default
			bad("OAUTH2_SCOPE", "%q is not one scope (want a single scope without spaces, e.g. get::prediction)", c.Scope)
		}
	}
	if c.MemoryBudget > 0 && c.MemoryBudget < c.MaxUploadBytes {
		bad("MEMORY_BUDGET", "%d must be at least MAX_UPLOAD_BYTES (%d): no upload could ever be admitted", c.MemoryBudget, c.MaxUploadBytes)
	}
	if c.MemoryBudget > 0 && c.MemoryBudget < c.PredictMaxBytes {
		bad("MEMORY_BUDGET", "%d must be at least PREDICT_MAX_BYTES (%d): no full /predict request could ever be admitted", c.MemoryBudget, c.PredictMaxBytes)
	}
	c.ModelOverrides = spec.Overrides{}
	for name, key := range modelEnv {
		if v := env(name, ""); v != "" {
			c.ModelOverrides[key] = v
		}
	}
	return c, errors.Join(errs...)
}

// listenAddr is LISTEN_ADDR (brackets of an IPv6 address removed) and
// PORT: all that the healthcheck subcommand reads.
func listenAddr(getenv func(string) string) (host, port string) {
	port = cmp.Or(strings.TrimSpace(getenv("PORT")), "8080")
	return strings.Trim(strings.TrimSpace(getenv("LISTEN_ADDR")), "[]"), port
}

// checkIssuerURL wants an absolute https URL; http only for a loopback host
// (a local IdP) or with OAUTH2_ALLOW_HTTP, since keys fetched over plain
// HTTP could be swapped by anyone on the path.
func checkIssuerURL(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("is not an absolute URL (want e.g. https://TENANT.auth0.com/)")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("uses http on a non-loopback host (want https; OAUTH2_ALLOW_HTTP=true allows it for development)")
	}
	return fmt.Errorf("has scheme %q (want https)", u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// origin accepts "*" or a bare origin (scheme, host, optional port) and
// returns it as a browser sends it in Origin, which the CORS middleware
// compares byte for byte: scheme and host in lower case, no default port.
// Anything it would never match (a wildcard host, a Unicode one) or would
// refuse at start-up (an upper-case scheme: a panic) is an error here.
func origin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Host == "":
		return o, errors.New("is not an origin")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "":
		return o, errors.New("has more than scheme://host[:port]")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	switch {
	case scheme != "http" && scheme != "https":
		return o, errors.New("has no http or https scheme")
	case strings.Contains(host, "*"):
		return o, errors.New("has a wildcard (not supported: list each origin)")
	case strings.ContainsFunc(host, func(r rune) bool { return r > unicode.MaxASCII }):
		return o, errors.New("has a non-ASCII host (want its punycode form, xn--..., as browsers send it)")
	case strings.HasSuffix(u.Host, ":") && port == "":
		return o, errors.New("has an empty port")
	}
	if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
		return o, errors.New("has no valid port")
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = "" // browsers leave the default port out
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// parseBytes reads a byte count, optionally with a KiB, MiB or GiB suffix.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(v), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New("not a size")
	}
	return n * mult, nil
}

// modelEnv maps each MODEL_* preprocessing setting to its spec key.
var modelEnv = map[string]string{
	"MODEL_NAME": spec.KeyName, "MODEL_VERSION": spec.KeyVersion, "MODEL_LABELS": spec.KeyLabels,
	"MODEL_LAYOUT": spec.KeyLayout, "MODEL_INPUT_SIZE": spec.KeyInputSize, "MODEL_RESIZE": spec.KeyResize,
	"MODEL_RESIZE_SHORTER": spec.KeyResizeShorter, "MODEL_CHANNEL_ORDER": spec.KeyChannelOrder,
	"MODEL_PIXEL_SCALE": spec.KeyPixelScale, "MODEL_MEAN": spec.KeyMean, "MODEL_STD": spec.KeyStd,
	"MODEL_OUTPUT": spec.KeyOutput,
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// settingNames is every variable named in settings, MODEL_* overrides
// included.
func settingNames() []string {
	var out []string
	for _, s := range settings {
		if strings.HasPrefix(s.name, "MODEL_LABELS,") {
			for k := range modelEnv {
				out = append(out, k)
			}
			continue
		}
		out = append(out, s.name)
	}
	slices.Sort(out)
	return out
}
