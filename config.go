package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"catsdogs/model"
	"catsdogs/model/decode"
	"catsdogs/model/spec"
)

// Config is every setting the service reads, all from the environment.
// README.md's "Configuration" table documents the same names and defaults.
type Config struct {
	Port       string // PORT, default 8080
	ListenAddr string // LISTEN_ADDR: host or IP to bind; default all interfaces

	ModelPath    string // MODEL_PATH, default resources/catsdogs-resnet.onnx
	ModelSidecar string // MODEL_SPEC: JSON preprocessing overrides (default <model>.json if present)
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

	MaxUploadBytes int64         // MAX_UPLOAD_BYTES, default 10 MiB
	MaxPixels      int           // MAX_IMAGE_PIXELS, default 50,000,000
	MaxSide        int           // MAX_IMAGE_SIDE, default 16384: longest width or height
	MaxAspect      int           // MAX_IMAGE_ASPECT, default 32: long side ÷ short side
	DecodeTimeout  time.Duration // DECODE_TIMEOUT, default 10s: one image's decode
	MemoryBudget   int64         // MEMORY_BUDGET, default 256 MiB: bodies + decodes in flight
	MaxConns       int           // MAX_CONNECTIONS, default 512: open client connections
	Workers        int           // INFERENCE_WORKERS, default = CPU quota
	IntraThreads   int           // ORT_INTRA_OP_THREADS, default = CPU quota / workers
	QueueSize      int           // INFERENCE_QUEUE, default 4 × workers

	TrustedProxies []string // TRUSTED_PROXIES, comma-separated CIDRs/IPs; default none
	LogFormat      string   // LOG_FORMAT: text (default) or json
	// DOCS_PERSIST_AUTHORIZATION, default false: Swagger UI keeps a pasted
	// token in the browser's localStorage.
	DocsPersistAuth bool
}

const defaultModel = "resources/catsdogs-resnet.onnx"

func loadConfig(getenv func(string) string) (Config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Port:         env("PORT", "8080"),
		ListenAddr:   strings.Trim(env("LISTEN_ADDR", ""), "[]"),
		ModelPath:    env("MODEL_PATH", defaultModel),
		ModelSidecar: env("MODEL_SPEC", ""),
		ORTLibrary:   env("ONNXRUNTIME_LIB", ""),
		Issuer:       env("OAUTH2_ISSUER", ""),
		Audiences:    list(env("OAUTH2_AUDIENCE", "")),
		JWKSURI:      env("OAUTH2_JWKS_URI", ""),
		Scope:        env("OAUTH2_SCOPE", "get::prediction"),
		LogFormat:    env("LOG_FORMAT", "text"),
	}
	var errs []error
	var err error
	if c.AuthDisabled, err = parseBool(env("AUTH_DISABLED", "false")); err != nil {
		errs = append(errs, fmt.Errorf("AUTH_DISABLED: %w", err))
	}
	c.Leeway, err = time.ParseDuration(env("OAUTH2_LEEWAY", "30s"))
	errs = append(errs, wrap("OAUTH2_LEEWAY", err))
	c.JWKSRefresh, err = time.ParseDuration(env("OAUTH2_JWKS_MIN_REFRESH", "30s"))
	errs = append(errs, wrap("OAUTH2_JWKS_MIN_REFRESH", err))
	var mb int
	mb, err = atoi(env("MAX_UPLOAD_BYTES", strconv.Itoa(10<<20)))
	c.MaxUploadBytes = int64(mb)
	errs = append(errs, wrap("MAX_UPLOAD_BYTES", err))
	c.MaxPixels, err = atoi(env("MAX_IMAGE_PIXELS", "50000000"))
	errs = append(errs, wrap("MAX_IMAGE_PIXELS", err))
	c.MaxSide, err = atoi(env("MAX_IMAGE_SIDE", strconv.Itoa(decode.DefaultMaxSide)))
	errs = append(errs, wrap("MAX_IMAGE_SIDE", err))
	c.MaxAspect, err = atoi(env("MAX_IMAGE_ASPECT", strconv.Itoa(decode.DefaultMaxAspect)))
	errs = append(errs, wrap("MAX_IMAGE_ASPECT", err))
	c.DecodeTimeout, err = time.ParseDuration(env("DECODE_TIMEOUT", decode.DefaultDecodeTimeout.String()))
	errs = append(errs, wrap("DECODE_TIMEOUT", err))
	var budget int
	budget, err = atoi(env("MEMORY_BUDGET", strconv.Itoa(model.DefaultMemoryBudget)))
	c.MemoryBudget = int64(budget)
	errs = append(errs, wrap("MEMORY_BUDGET", err))
	c.MaxConns, err = atoi(env("MAX_CONNECTIONS", "512"))
	errs = append(errs, wrap("MAX_CONNECTIONS", err))
	c.Workers, err = atoi(env("INFERENCE_WORKERS", "0"))
	errs = append(errs, wrap("INFERENCE_WORKERS", err))
	c.IntraThreads, err = atoi(env("ORT_INTRA_OP_THREADS", "0"))
	errs = append(errs, wrap("ORT_INTRA_OP_THREADS", err))
	c.QueueSize, err = atoi(env("INFERENCE_QUEUE", "0"))
	errs = append(errs, wrap("INFERENCE_QUEUE", err))
	c.TrustedProxies = list(env("TRUSTED_PROXIES", ""))
	if c.DocsPersistAuth, err = parseBool(env("DOCS_PERSIST_AUTHORIZATION", "false")); err != nil {
		errs = append(errs, fmt.Errorf("DOCS_PERSIST_AUTHORIZATION: %w", err))
	}
	// A port in LISTEN_ADDR would compete with PORT: take the host only.
	if _, _, err := net.SplitHostPort(c.ListenAddr); err == nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR: %q has a port; give only the host or IP and set PORT", c.ListenAddr))
	}

	// Fail closed: without an issuer and audience there is no way to check a
	// token, so refuse to start rather than serve /upload openly.
	if !c.AuthDisabled && (c.Issuer == "" || len(c.Audiences) == 0) {
		errs = append(errs, errors.New("OAUTH2_ISSUER and OAUTH2_AUDIENCE must be set (or AUTH_DISABLED=true for local use without an identity provider)"))
	}
	if c.MemoryBudget > 0 && c.MemoryBudget < c.MaxUploadBytes {
		errs = append(errs, fmt.Errorf("MEMORY_BUDGET (%d) must be at least MAX_UPLOAD_BYTES (%d): no upload could ever be admitted", c.MemoryBudget, c.MaxUploadBytes))
	}
	c.ModelOverrides = spec.Overrides{}
	for name, key := range modelEnv {
		if v := env(name, ""); v != "" {
			c.ModelOverrides[key] = v
		}
	}
	return c, errors.Join(errs...)
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

// parseBool accepts only clear spellings: a typo must not silently flip auth.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

func atoi(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err == nil && n < 0 {
		err = errors.New("must not be negative")
	}
	return n, err
}

func wrap(name string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
