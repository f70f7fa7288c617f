package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Starting is the handler served while the model loads: /health is live
// (the process is up), /ready answers 503 with ready's reasons, /metrics
// works, and everything else is 503 not_ready with Retry-After, so a client
// that does not wait for /ready gets a clear answer, not a hang. Of d it
// uses Ready, Metrics, MetricsElsewhere, AuthDisabled, TrustedProxies and
// Logger.
func Starting(d Deps) http.Handler {
	ready, m, log := d.Ready, d.Metrics, d.Logger
	r := engine(d.TrustedProxies)
	r.Use(outerMiddleware(log, m)...)
	h := &handlers{d: Deps{AuthDisabled: d.AuthDisabled, Metrics: m}}
	r.GET("/health", h.health)
	r.HEAD("/health", h.health)
	notReady := func(c *gin.Context) {
		c.Header("Retry-After", "1")
		c.Set(oipKey, isOIPPath(c.Request.URL.Path))
		switch err := ready(); {
		case err == nil: // the checks pass; the router is on its way
			abort(c, http.StatusServiceUnavailable, codeNotReady, "starting")
		case c.FullPath() != "": // /ready itself
			refuseNotReady(c, log, err)
		default: // other routes would flood the log
			abort(c, http.StatusServiceUnavailable, codeNotReady, publicReasons(err))
		}
	}
	// The Open Inference Protocol's liveness, as /health's.
	r.GET("/v2/health/live", live)
	r.HEAD("/v2/health/live", live)
	r.GET("/ready", notReady)
	r.HEAD("/ready", notReady)
	if !d.MetricsElsewhere {
		r.GET("/metrics", h.metrics)
	}
	r.NoRoute(notReady)
	return r
}
