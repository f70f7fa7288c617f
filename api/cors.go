package api

import (
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
// gets 403; same-origin requests and clients that send no Origin (curl,
// servers) are not affected.
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
	return cors.New(cfg)
}
