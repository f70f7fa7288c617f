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
	r.Use(requestID(log), m.instrument, requestLog(log), recovery(log), securityHeaders)
	h := &handlers{d: Deps{AuthDisabled: d.AuthDisabled, Metrics: m}}
	r.GET("/health", h.health)
	r.HEAD("/health", h.health)
	notReady := func(c *gin.Context) {
		detail := "starting"
		if err := ready(); err != nil {
			detail = publicReasons(err)
			if c.FullPath() != "" { // /ready itself; other routes would flood the log
				requestLogger(c, log).Warn("not ready", "reasons", err)
			}
		}
		c.Header("Retry-After", "1")
		c.Set(oipKey, isOIPPath(c.Request.URL.Path))
		abort(c, http.StatusServiceUnavailable, codeNotReady, detail)
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
