// Package api is the HTTP layer: routes, handlers, middleware and the one
// mapping of errors to answers (errors.go). Who may call is decided in
// api/auth and inference happens in package model; this package only
// translates between them and HTTP.
package api

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"
	"catsdogs/oip"

	"github.com/gin-gonic/gin"
)

// Classifier is what the handlers need from the model package: Classify
// (/upload), ClassifyMany (/predict) and ClassifyTensor, which the Open
// Inference Protocol's routes use besides the other two.
type Classifier = oip.Classifier

// Deps are everything the router needs; tests swap any of them.
type Deps struct {
	Classifier Classifier
	Model      model.Info
	// Admission is the process's admission (required by NewRouter): request
	// bodies are reserved from its memory budget before they are read, and
	// the gauges read its queue and budget.
	Admission *admission.Controller
	// Ready reports whether to take traffic (nil) or not, and why; /ready
	// answers 503 while it says no. nil: always ready.
	Ready func() error
	// Auth finds out who calls /upload; nil only with AuthDisabled.
	Auth auth.Authenticator
	// Scope the caller must hold on /upload (and anything else that runs the model).
	Scope string
	// MaxUploadBytes caps /upload's request body (413 beyond); required by
	// NewRouter, like the two below.
	MaxUploadBytes int64
	// PredictMaxFiles and PredictMaxBytes cap /predict's images and body.
	PredictMaxFiles int
	PredictMaxBytes int64
	// AuthDisabled serves /upload to anyone, and says so loudly on /health.
	AuthDisabled   bool
	TrustedProxies []string
	// DocsPersistAuth lets Swagger UI keep a pasted token in the browser's
	// localStorage across reloads; off, since any script on the origin (or
	// anyone at the browser) could read it there.
	DocsPersistAuth bool
	Logger          *slog.Logger
	// Metrics are counted on every request; nil: a fresh set. /metrics
	// serves them unless MetricsElsewhere (METRICS_ADDR: main serves them
	// on their own listener).
	Metrics          *Metrics
	MetricsElsewhere bool
	// Build is what /version reports.
	Build BuildInfo
	// CORSOrigins may call the API from a browser (CORS_ALLOWED_ORIGINS);
	// none: no CORS headers, cross-origin browser calls fail.
	CORSOrigins []string
}

// gin's debug mode (routes listed on stderr, warnings) is for gin's own
// development; the service always runs in release mode. Tests set TestMode.
func init() { gin.SetMode(gin.ReleaseMode) }

// engine is a bare gin engine that believes X-Forwarded-For (ClientIP) only
// from proxies, IPs or CIDRs; none: from nobody. main has checked them
// (TRUSTED_PROXIES), so a bad one here is a programming error.
func engine(proxies []string) *gin.Engine {
	r := gin.New()
	if err := r.SetTrustedProxies(proxies); err != nil {
		panic("api: TrustedProxies: " + err.Error())
	}
	return r
}

// NewRouter wires every route in one place.
func NewRouter(d Deps) *gin.Engine {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	// The limits come from the settings, whose defaults main declares: a
	// zero here is a wiring mistake, not "use a default".
	if d.Admission == nil || d.MaxUploadBytes <= 0 || d.PredictMaxFiles <= 0 || d.PredictMaxBytes <= 0 {
		panic("api: NewRouter needs Admission, MaxUploadBytes, PredictMaxFiles and PredictMaxBytes")
	}
	r := engine(d.TrustedProxies)
	r.HandleMethodNotAllowed = true
	// gin's own trailing-slash redirect answers before any middleware:
	// no request id, no security headers. NoRoute redirects instead.
	r.RedirectTrailingSlash = false
	routes := map[string]bool{} // "METHOD /path" of every route without parameters
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	d.Metrics.watch(d.Model, d.Admission, d.Ready)
	r.Use(outerMiddleware(d.Logger, d.Metrics)...)
	if len(d.CORSOrigins) > 0 {
		r.Use(corsFor(d.CORSOrigins))
	}
	r.Use(opaqueBody)
	r.NoRoute(func(c *gin.Context) {
		c.Set(oipKey, isOIPPath(c.Request.URL.Path))
		if to := otherSlash(c.Request.URL.Path); routes[c.Request.Method+" "+to] {
			redirectSlash(c, to)
			return
		}
		abort(c, http.StatusNotFound, codeNotFound, "no such route; see /docs")
	})
	r.NoMethod(func(c *gin.Context) {
		c.Set(oipKey, isOIPPath(c.Request.URL.Path))
		abort(c, http.StatusMethodNotAllowed, codeMethodNotAllowed, clip(c.Request.Method, maxLoggedMethod)+" is not allowed here; see /docs")
	})

	h := &handlers{d: d}
	r.GET("/health", h.health)
	r.HEAD("/health", h.health) // load balancers and uptime probes often use HEAD
	r.GET("/ready", h.ready)
	r.HEAD("/ready", h.ready)
	r.GET("/model", h.modelInfo)
	r.GET("/version", h.version)
	if !d.MetricsElsewhere {
		r.GET("/metrics", h.metrics)
	}
	// Everything that runs the model needs the scope.
	var guard []gin.HandlerFunc
	if !d.AuthDisabled {
		if d.Auth == nil {
			panic("api: no Authenticator given and auth not disabled")
		}
		guard = []gin.HandlerFunc{authenticate(d.Auth, d.Logger), requireScope(d.Scope, d.Logger)}
	}
	// Then the body is capped and its memory reserved from the budget as
	// it arrives: bytes → auth → admit → decode → ... in a straight line.
	budget := d.Admission.Budget
	r.POST("/upload", append(slices.Clip(guard), admitBody(budget, d.MaxUploadBytes, d.Logger), h.upload)...)
	r.POST("/predict", append(slices.Clip(guard), admitBody(budget, d.PredictMaxBytes, d.Logger), h.predict)...)

	// The Open Inference Protocol's REST routes (oip.go).
	registerOIP(r, d, guard)

	// The OpenAPI document, Swagger UI, ReDoc and the drop-an-image page (web.go).
	registerWeb(r, d)
	for _, rt := range r.Routes() {
		if !strings.ContainsAny(rt.Path, ":*") {
			routes[rt.Method+" "+rt.Path] = true
		}
	}
	return r
}

// otherSlash is path with its trailing slash removed, or with one added.
func otherSlash(path string) string {
	if p, ok := strings.CutSuffix(path, "/"); ok && p != "" {
		return p
	}
	return path + "/"
}

// redirectSlash sends the client to the route's own spelling, as gin would:
// 301 for GET and HEAD, 308 (method and body kept) for the rest. to is a
// registered path, never the client's bytes, so it cannot point off-site.
func redirectSlash(c *gin.Context, to string) {
	status := http.StatusPermanentRedirect
	if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		status = http.StatusMovedPermanently
	}
	if q := c.Request.URL.RawQuery; q != "" {
		to += "?" + q
	}
	c.Redirect(status, to)
	c.Abort()
}
