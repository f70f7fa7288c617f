package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
)

// CORSMaxAge is how long a browser may cache a preflight answer: one
// preflight per origin and route every 10 minutes instead of one per upload.
const CORSMaxAge = 10 * time.Minute

// corsFor lets browser apps on origins call the API (CORS_ALLOWED_ORIGINS;
// "*" means any). Tokens travel in Authorization, never in cookies, so
// credentials are not allowed. A request or preflight from any other origin
// gets 403 cors_origin_not_allowed, with a body that says so (the
// middleware's own 403 has none); same-origin requests and clients that
// send no Origin (curl, servers) are not affected.
func corsFor(origins []string) gin.HandlerFunc {
	cfg := cors.Config{
		AllowMethods:  []string{"GET", "HEAD", "POST"},
		AllowHeaders:  []string{"Authorization", "Content-Type", RequestIDHeader},
		ExposeHeaders: []string{RequestIDHeader, "Retry-After", "WWW-Authenticate"},
		MaxAge:        CORSMaxAge,
	}
	if slices.Contains(origins, "*") {
		cfg.AllowAllOrigins = true
	} else {
		cfg.AllowOrigins = origins
	}
	allow := cors.New(cfg)
	return func(c *gin.Context) {
		// The middleware's test, as it applies it: exact origins (main
		// refuses wildcards), and same-origin requests pass.
		o, host := c.Request.Header.Get("Origin"), c.Request.Host
		if o != "" && !cfg.AllowAllOrigins && o != "http://"+host && o != "https://"+host && !slices.Contains(origins, o) {
			abort(c, http.StatusForbidden, codeOriginNotAllowed,
				"origin "+clip(o, 256)+" may not call this API from a browser (CORS_ALLOWED_ORIGINS)")
			return
		}
		allow(c)
	}
}
