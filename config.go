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

	"catsdogs/model"
	"catsdogs/model/spec"
	"catsdogs/resources"
)

// Config is every setting the service reads, all from the environment.
// Each field's variable, default, meaning and range are declared once, in
// settings below.
type Config struct {
	Port       string // PORT
	ListenAddr string // LISTEN_ADDR: host or IP to bind, without a port

	ModelPath    string // MODEL_PATH
	ModelSidecar string // MODEL_SPEC: JSON preprocessing overrides
	Precision    string // MODEL_PRECISION: auto, fp32 or int8
	ORTLibrary   string // ONNXRUNTIME_LIB: path to libonnxruntime.so
	// MODEL_LABELS, MODEL_INPUT_SIZE, ... (modelEnv): preprocessing
	// overrides, applied over the model's metadata and sidecar.
	ModelOverrides spec.Overrides

	Issuer          string        // OAUTH2_ISSUER, exact "iss" (keep Auth0's trailing slash)
	Audiences       []string      // OAUTH2_AUDIENCE; "aud" must contain one
	JWKSURI         string        // OAUTH2_JWKS_URI: skips OIDC discovery
	Scope           string        // OAUTH2_SCOPE
	AuthDisabled    bool          // AUTH_DISABLED (local use only)
	Leeway          time.Duration // OAUTH2_LEEWAY: clock skew allowed on exp/nbf
	JWKSRefresh     time.Duration // OAUTH2_JWKS_MIN_REFRESH: least time between JWKS refetches
	AllowHTTPIssuer bool          // OAUTH2_ALLOW_HTTP: an http issuer off loopback (development)

	MaxUploadBytes  int64         // MAX_UPLOAD_BYTES
	MaxPixels       int           // MAX_IMAGE_PIXELS
	MaxSide         int           // MAX_IMAGE_SIDE: longest width or height
	MaxAspect       int           // MAX_IMAGE_ASPECT: long side ÷ short side
	DecodeTimeout   time.Duration // DECODE_TIMEOUT: one image's decode
	MemoryBudget    int64         // MEMORY_BUDGET: bodies + decodes in flight
	MaxConns        int           // MAX_CONNECTIONS: open client connections
	Workers         int           // INFERENCE_WORKERS; 0: the CPU quota
	IntraThreads    int           // ORT_INTRA_OP_THREADS; 0: CPU quota / workers
	QueueSize       int           // INFERENCE_QUEUE; 0: 2 × the requests admitted at once
	BatchMaxSize    int           // BATCH_MAX_SIZE: images per ONNX Runtime run (1: batching off)
	BatchMaxDelay   time.Duration // BATCH_MAX_DELAY: longest an image waits for others to join its run
	PredictMaxFiles int           // PREDICT_MAX_FILES: images per /predict request
	PredictMaxBytes int64         // PREDICT_MAX_BYTES: /predict request body cap

	TrustedProxies  []string // TRUSTED_PROXIES: CIDRs/IPs
	LogFormat       string   // LOG_FORMAT: text or json
	DocsPersistAuth bool     // DOCS_PERSIST_AUTHORIZATION: Swagger UI keeps a pasted token

	MetricsAddr string        // METRICS_ADDR: host:port for /metrics alone; "": on the API port
	DrainDelay  time.Duration // SHUTDOWN_DRAIN_DELAY: /ready says 503 this long before the listener closes
	CORSOrigins []string      // CORS_ALLOWED_ORIGINS: browser origins allowed to call the API

	// GRPC_ADDR: host:port of the Open Inference Protocol's gRPC service;
	// "" is off. GRPC_TLS_CERT and GRPC_TLS_KEY, both or neither: TLS.
	GRPCAddr, GRPCTLSCert, GRPCTLSKey string
}

// threadsPerCPU bounds INFERENCE_WORKERS, ORT_INTRA_OP_THREADS and their
// product: more ONNX Runtime threads than this per CPU only contend.
const threadsPerCPU = 4

// setting is one environment variable, declared once: loadConfig parses and
// checks it, --help prints it, and TestSettingsListed holds
// docs/CONFIGURATION.md and the README to its name and default.
type setting struct {
	name string
	// def is the value taken when the variable is unset or blank, written
	// as a user would set it. "" when there is none, or when it is worked
	// out later from other settings; shown then says what it is in words.
	def, shown string
	help       string
	// min and max bound a count, size or duration (written as values of its
	// kind; "" for no bound). Past them a value is a typo or a hazard, not a
	// choice. A min above 0 refuses 0 with a message of its own: 0 would
	// read as "no limit".
	min, max string
	hint     string // what is typical, added to an out-of-range message
	// field is the Config field the value goes to; its type says how the
	// value is read: string, bool, int (a count), int64 (bytes, with an
	// optional KiB, MiB or GiB), time.Duration, []string (comma-separated).
	// nil only for the MODEL_* row, read by loadConfig from modelEnv.
	field func(*Config) any
	// check, when set, checks the field's value further (checkOf) and may
	// normalise it.
	check func(field any, bad complain)
}

// complain reports a problem with one setting; the setting's name is
// prefixed to it.
type complain func(format string, a ...any)

// defaultText is the default as --help and the docs show it.
func (s setting) defaultText() string { return cmp.Or(s.shown, s.def) }

// settings is every variable the service reads, in --help's order.
var settings = []setting{
	{name: "PORT", def: "8080", help: "listen port (0: any free port)",
		field: func(c *Config) any { return &c.Port }, check: checkOf(checkPort)},
	{name: "LISTEN_ADDR", shown: "all interfaces", help: "host or IP to bind, without a port",
		field: func(c *Config) any { return &c.ListenAddr }, check: checkOf(checkListenAddr)},
	{name: "MODEL_PATH", def: resources.DefaultModel, help: "the ONNX model to serve",
		field: func(c *Config) any { return &c.ModelPath }, check: checkOf(fileExists("the path of an .onnx model"))},
	{name: "MODEL_SPEC", shown: "<model>.json if it exists", help: "JSON preprocessing overrides",
		field: func(c *Config) any { return &c.ModelSidecar }, check: checkOf(fileExists("a JSON preprocessing file"))},
	{name: "MODEL_PRECISION", def: model.PrecisionAuto, help: "auto, fp32 or int8: auto serves the model's int8 copy (<model>-int8.onnx) when it kept its accuracy and is faster here",
		field: func(c *Config) any { return &c.Precision }, check: checkOf(checkPrecision)},
	{name: "ONNXRUNTIME_LIB", shown: "searched (third_party/, system lib dirs)", help: "ONNX Runtime 1.24.x shared library",
		field: func(c *Config) any { return &c.ORTLibrary }, check: checkOf(fileExists("the path of libonnxruntime.so 1.24.x; `make ort` fetches it"))},
	{name: "OAUTH2_ISSUER", shown: "(required unless AUTH_DISABLED)", help: "exact iss of tokens; an https URL (http only for loopback or with OAUTH2_ALLOW_HTTP)",
		field: func(c *Config) any { return &c.Issuer }},
	{name: "OAUTH2_AUDIENCE", shown: "(required unless AUTH_DISABLED)", help: "API identifier(s), comma-separated; aud must contain one",
		field: func(c *Config) any { return &c.Audiences }},
	{name: "OAUTH2_JWKS_URI", shown: "discovered from the issuer", help: "JWKS URL; when set, no discovery is made",
		field: func(c *Config) any { return &c.JWKSURI }},
	{name: "OAUTH2_SCOPE", def: "get::prediction", help: "scope required on /upload and /predict",
		field: func(c *Config) any { return &c.Scope }},
	{name: "OAUTH2_LEEWAY", def: "30s", max: "10m", help: "clock-skew allowance on exp and nbf",
		field: func(c *Config) any { return &c.Leeway }},
	// At 1ns each forged token could make a fetch.
	{name: "OAUTH2_JWKS_MIN_REFRESH", def: "30s", min: "1s", max: "1h", help: "paces JWKS fetches (refetch budget refill, back-off cap, max-age floor)",
		field: func(c *Config) any { return &c.JWKSRefresh }},
	{name: "OAUTH2_ALLOW_HTTP", def: "false", help: "accept an http issuer or JWKS URI on a non-loopback host (development only)",
		field: func(c *Config) any { return &c.AllowHTTPIssuer }},
	{name: "AUTH_DISABLED", def: "false", help: "true serves /upload and /predict without tokens (local use only)",
		field: func(c *Config) any { return &c.AuthDisabled }},
	{name: "MAX_UPLOAD_BYTES", def: "10MiB", min: "1", help: "request body cap (bytes, or with KiB/MiB/GiB)",
		field: func(c *Config) any { return &c.MaxUploadBytes }},
	{name: "MAX_IMAGE_PIXELS", def: "50000000", min: "1", help: "width x height cap, checked before decoding",
		field: func(c *Config) any { return &c.MaxPixels }},
	// 16384 is the largest side WebP allows and above any camera; 32:1
	// admits any real panorama. Area alone lets through 1 x 10,000,000
	// strips whose scaled long side is enormous.
	{name: "MAX_IMAGE_SIDE", def: "16384", min: "1", help: "longest width or height",
		field: func(c *Config) any { return &c.MaxSide }},
	{name: "MAX_IMAGE_ASPECT", def: "32", min: "1", help: "long side / short side",
		field: func(c *Config) any { return &c.MaxAspect }},
	// Far above a real photo's decode (tens of ms; JPEGs decode at a
	// reduced DCT scale): it bounds what one upload can make a worker spend.
	{name: "DECODE_TIMEOUT", def: "10s", min: "100ms", max: "1m", help: "longest one image's decode may take",
		field: func(c *Config) any { return &c.DecodeTimeout }},
	// 256 MiB suits a 512 MB container: the model, ONNX Runtime's arenas
	// and the Go runtime take the rest (docs/OPERATING.md, Limits).
	{name: "MEMORY_BUDGET", def: "256MiB", min: "1", help: "bytes held at once by request bodies and decodes",
		field: func(c *Config) any { return &c.MemoryBudget }},
	{name: "MAX_CONNECTIONS", def: "512", max: strconv.Itoa(1 << 20), help: "open client connections (0: no cap)",
		field: func(c *Config) any { return &c.MaxConns }},
	// Every ONNX Runtime thread is an OS thread (ORT_INTRA_OP_THREADS=5000
	// hung start-up): both are bounded per CPU below, with their product.
	{name: "INFERENCE_WORKERS", shown: "CPU quota", help: "ONNX Runtime runs at once",
		field: func(c *Config) any { return &c.Workers }},
	{name: "ORT_INTRA_OP_THREADS", shown: "CPU quota / workers", help: "ONNX Runtime threads per run",
		field: func(c *Config) any { return &c.IntraThreads }},
	{name: "INFERENCE_QUEUE", shown: "2 x admitted", min: "1", max: strconv.Itoa(1 << 16), help: "requests allowed to wait; admitted at once = CPU quota + workers x BATCH_MAX_SIZE",
		field: func(c *Config) any { return &c.QueueSize }},
	// Each runner keeps buffers for a full batch, and admission grows with
	// it: past 64 that buys nothing on a CPU.
	{name: "BATCH_MAX_SIZE", def: "8", min: "1", max: "64", hint: "4 to 16 is typical", help: "images one ONNX Runtime run may take from concurrent requests (1: batching off)",
		field: func(c *Config) any { return &c.BatchMaxSize }},
	{name: "BATCH_MAX_DELAY", def: "2ms", max: "1s", hint: "a few ms is typical", help: "longest an image waits for others to join its run (none when no other is on its way)",
		field: func(c *Config) any { return &c.BatchMaxDelay }},
	{name: "PREDICT_MAX_FILES", def: "32", min: "1", max: "1024", help: "images per /predict request",
		field: func(c *Config) any { return &c.PredictMaxFiles }},
	// Unset, it shrinks to a smaller MEMORY_BUDGET (loadConfig).
	{name: "PREDICT_MAX_BYTES", def: "32MiB", shown: "32MiB (at most MEMORY_BUDGET)", min: "1", help: "/predict request body cap (bytes, or with KiB/MiB/GiB)",
		field: func(c *Config) any { return &c.PredictMaxBytes }},
	{name: "TRUSTED_PROXIES", shown: "none", help: "proxy IPs/CIDRs whose X-Forwarded-For is believed",
		field: func(c *Config) any { return &c.TrustedProxies }, check: checkOf(checkProxies)},
	{name: "LOG_FORMAT", def: "text", help: "text or json",
		field: func(c *Config) any { return &c.LogFormat }, check: checkOf(checkLogFormat)},
	{name: "DOCS_PERSIST_AUTHORIZATION", def: "false", help: "Swagger UI keeps a pasted token in localStorage",
		field: func(c *Config) any { return &c.DocsPersistAuth }},
	{name: "METRICS_ADDR", shown: "(on the API port)", help: "host:port to serve /metrics on instead, e.g. :9090",
		field: func(c *Config) any { return &c.MetricsAddr }, check: checkOf(hostPort(":9090 or 127.0.0.1:9090", ":9090"))},
	{name: "SHUTDOWN_DRAIN_DELAY", def: "5s", max: "10m", help: "after SIGTERM, /ready says 503 this long while still serving, then requests in flight finish",
		field: func(c *Config) any { return &c.DrainDelay }},
	{name: "CORS_ALLOWED_ORIGINS", shown: "none (CORS off)", help: "comma-separated origins (https://app.example) or *, allowed to call from a browser",
		field: func(c *Config) any { return &c.CORSOrigins }, check: checkOf(checkOrigins)},
	{name: "GRPC_ADDR", shown: "(off)", help: "host:port for the Open Inference Protocol's gRPC service, e.g. 127.0.0.1:8081",
		field: func(c *Config) any { return &c.GRPCAddr }, check: checkOf(hostPort("127.0.0.1:8081 or :8081", ":8081"))},
	{name: "GRPC_TLS_CERT", shown: "(none: plaintext)", help: "PEM certificate (chain) for gRPC TLS; with GRPC_TLS_KEY",
		field: func(c *Config) any { return &c.GRPCTLSCert }, check: checkOf(fileExists("a PEM file"))},
	{name: "GRPC_TLS_KEY", shown: "(none: plaintext)", help: "PEM private key for gRPC TLS; with GRPC_TLS_CERT",
		field: func(c *Config) any { return &c.GRPCTLSKey }, check: checkOf(fileExists("a PEM file"))},
	{name: "MODEL_LABELS, ...", shown: "from the model's metadata", help: "preprocessing overrides (docs/MODELS.md: Serving another model)"},
}

// lookup is the setting named name; it panics for a name not in settings,
// a mistake in this file.
func lookup(name string) setting {
	i := slices.IndexFunc(settings, func(s setting) bool { return s.name == name })
	if i < 0 {
		panic("config: no setting " + name)
	}
	return settings[i]
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.name, s.defaultText(), s.help)
	}
	tw.Flush()
}

// loadConfig reads and checks every setting before anything heavy starts.
// It reports all problems at once, each naming its variable and the form
// it wants, so one restart fixes them all.
func loadConfig(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	given := map[string]bool{} // set by the user, not defaulted
	for _, s := range settings {
		if s.field == nil {
			continue
		}
		v := strings.TrimSpace(getenv(s.name))
		given[s.name] = v != ""
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{s.name}, a...)...))
		}
		if s.read(&c, cmp.Or(v, s.def), bad) && s.check != nil {
			s.check(s.field(&c), bad)
		}
	}
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, a...)...))
	}

	// Rules between settings.
	if !given["PREDICT_MAX_BYTES"] && c.MemoryBudget > 0 && c.MemoryBudget < c.PredictMaxBytes {
		c.PredictMaxBytes = c.MemoryBudget
	}
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
	if (c.GRPCTLSCert == "") != (c.GRPCTLSKey == "") {
		bad("GRPC_TLS_CERT", "needs GRPC_TLS_KEY and the key needs it (set both PEM files, or neither for plaintext)")
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
		if strings.ContainsAny(c.Scope, " \t") {
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
		if v := strings.TrimSpace(getenv(name)); v != "" {
			c.ModelOverrides[key] = v
		}
	}
	return c, errors.Join(errs...)
}

// read parses v (the variable's value, or its default) into s's field and
// applies its bounds. It reports whether v was well formed and in range.
func (s setting) read(c *Config, v string, bad complain) bool {
	ok := true
	switch f := s.field(c).(type) {
	case *string:
		*f = v
	case *[]string:
		*f = list(v)
	case *bool:
		switch strings.ToLower(v) {
		case "1", "true":
			*f = true
		case "0", "false":
			*f = false
		default:
			bad("%q is not a boolean (want true, false, 1 or 0)", v)
			ok = false
		}
	case *int:
		var n int64
		n, ok = s.number(counts, v, bad)
		*f = int(n)
	case *int64:
		*f, ok = s.number(sizes, v, bad)
	case *time.Duration:
		var n int64
		n, ok = s.number(durations, v, bad)
		*f = time.Duration(n)
	default:
		panic(fmt.Sprintf("config: %s: no reader for a field of type %T", s.name, f))
	}
	return ok
}

// numberKind is how one kind of number setting is read, shown and refused.
type numberKind struct {
	parse     func(string) (int64, error)
	show      func(int64) string
	malformed string // the complaint about a value that does not parse
	// tooFar words a value past the bounds, before the hint and ")".
	tooFar func(n, lo, hi string) string
}

var (
	counts = numberKind{
		parse: func(v string) (int64, error) {
			n, err := strconv.Atoi(v)
			if n < 0 {
				err = errors.New("negative")
			}
			return int64(n), err
		},
		show:      func(n int64) string { return strconv.FormatInt(n, 10) },
		malformed: "%q is not a whole number >= 0",
		tooFar:    func(n, _, hi string) string { return n + " is too large (want at most " + hi },
	}
	sizes = numberKind{
		parse:     parseBytes,
		show:      counts.show,
		malformed: "%q is not a size (want bytes, e.g. 10485760, or with KiB, MiB, GiB: 10MiB)",
		tooFar:    counts.tooFar,
	}
	durations = numberKind{
		parse: func(v string) (int64, error) {
			d, err := time.ParseDuration(v)
			if d < 0 {
				err = errors.New("negative")
			}
			return int64(d), err
		},
		show:      func(n int64) string { return time.Duration(n).String() },
		malformed: "%q is not a duration (want e.g. 500ms, 30s, 2m)",
		tooFar:    func(n, lo, hi string) string { return n + " is out of range (want " + lo + " to " + hi },
	}
)

// number reads v as a number of kind k within s's bounds. "" (no default:
// one worked out later) reads as 0. A 0 under a positive min is refused on
// its own terms: it would read as "no limit", which it is not.
func (s setting) number(k numberKind, v string, bad complain) (int64, bool) {
	if v == "" {
		return 0, true
	}
	n, err := k.parse(v)
	if err != nil {
		bad(k.malformed, v)
		return 0, false
	}
	lo, hi := s.bound(k, s.min), s.bound(k, s.max)
	switch {
	case n == 0 && lo > 0:
		bad("%q is not allowed (want more than 0; leave it unset for the default, %s)", v, s.defaultText())
	case n > 0 && (n < lo || (s.max != "" && n > hi)):
		hint := ""
		if s.hint != "" {
			hint = "; " + s.hint
		}
		bad("%s%s)", k.tooFar(k.show(n), k.show(lo), k.show(hi)), hint)
	default:
		return n, true
	}
	return n, false
}

// bound reads a min or max of the table ("" is 0); one that does not parse
// is a mistake in the table, which TestSettingsParse catches.
func (s setting) bound(k numberKind, b string) int64 {
	if b == "" {
		return 0
	}
	n, err := k.parse(b)
	if err != nil {
		panic(fmt.Sprintf("config: %s: bound %q: %v", s.name, b, err))
	}
	return n
}

// checkOf adapts a check of one field type to the table's check.
func checkOf[T any](check func(v *T, bad complain)) func(any, complain) {
	return func(v any, bad complain) { check(v.(*T), bad) }
}

func checkPrecision(p *string, bad complain) {
	if !slices.Contains(model.Precisions, *p) {
		bad("%q is not a precision (want %s)", *p, strings.Join(model.Precisions, ", "))
	}
}

func checkPort(port *string, bad complain) {
	if p, err := strconv.Atoi(*port); err != nil || p < 0 || p > 65535 {
		bad("%q is not a port (want a number from 0 to 65535)", *port)
	}
}

// checkListenAddr takes the host alone: a port would compete with PORT.
func checkListenAddr(host *string, bad complain) {
	*host = bareHost(*host)
	if _, _, err := net.SplitHostPort(*host); err == nil {
		bad("%q has a port; give only the host or IP and set PORT", *host)
	}
}

// bareHost is a host with the brackets of an IPv6 address removed.
func bareHost(s string) string { return strings.Trim(s, "[]") }

// fileExists checks, when a path is given, that it names a file: cheap to
// check now, slow to discover after loading the runtime.
func fileExists(want string) func(*string, complain) {
	return func(path *string, bad complain) {
		if fi, err := os.Stat(*path); *path != "" && (err != nil || fi.IsDir()) {
			bad("%s: no such file (want %s)", *path, want)
		}
	}
}

// hostPort checks, when an address is given, that it is host:port; the
// complaints suggest addrs or, for a bad port, port.
func hostPort(addrs, port string) func(*string, complain) {
	return func(addr *string, bad complain) {
		if *addr == "" {
			return
		}
		if _, p, err := net.SplitHostPort(*addr); err != nil || p == "" {
			bad("%q is not host:port (want e.g. %s)", *addr, addrs)
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("%q has no valid port (want e.g. %s)", *addr, port)
		}
	}
}

func checkLogFormat(format *string, bad complain) {
	if *format != "text" && *format != "json" {
		bad("%q is not a log format (want text or json)", *format)
	}
}

func checkProxies(proxies *[]string, bad complain) {
	for _, p := range *proxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("%q is not an IP or CIDR (want e.g. 10.0.0.1 or 10.0.0.0/8, comma-separated)", p)
		}
	}
}

// checkOrigins keeps each origin as a browser sends it (origin).
func checkOrigins(origins *[]string, bad complain) {
	for i, o := range *origins {
		var err error
		if (*origins)[i], err = origin(o); err != nil {
			bad("%q %v (want * or origins like https://app.example, comma-separated)", o, err)
		}
	}
}

// listenAddr is LISTEN_ADDR (brackets of an IPv6 address removed) and
// PORT: all that the healthcheck subcommand reads.
func listenAddr(getenv func(string) string) (host, port string) {
	port = cmp.Or(strings.TrimSpace(getenv("PORT")), lookup("PORT").def)
	return bareHost(strings.TrimSpace(getenv("LISTEN_ADDR"))), port
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
