package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Starting is the handler served while the model loads: /health is live
// (the process is up), /ready answers 503 with ready's reasons, /metrics
// works, and everything else is 503 not_ready with Retry-After, so a client
// that does not wait for /ready gets a clear answer, not a hang.
func Starting(ready func() error, m *Metrics, metricsElsewhere, authDisabled bool, log *slog.Logger) http.Handler {
	r := gin.New()
	r.Use(requestID(log), m.instrument, requestLog(log), recovery(log), securityHeaders)
	h := &handlers{d: Deps{AuthDisabled: authDisabled, Metrics: m}}
	r.GET("/health", h.health)
	r.HEAD("/health", h.health)
	notReady := func(c *gin.Context) {
		detail := "starting"
		if err := ready(); err != nil {
			detail = strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		c.Header("Retry-After", "1")
		abort(c, http.StatusServiceUnavailable, codeNotReady, detail)
	}
	r.GET("/ready", notReady)
	r.HEAD("/ready", notReady)
	if !metricsElsewhere {
		r.GET("/metrics", h.metrics)
	}
	r.NoRoute(notReady)
	return r
}
