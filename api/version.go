package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// version godoc
//
//	@Summary		Build information
//	@ID				getVersion
//	@Description	The running build: version (git describe), commit, Go and ONNX Runtime versions, and the model served. No authentication.
//	@Tags			service
//	@Produce		json
//	@Success		200	{object}	BuildInfo
//	@Router			/version [get]
func (h *handlers) version(c *gin.Context) { c.JSON(http.StatusOK, h.d.Build) }

// metrics godoc
//
//	@Summary		Prometheus metrics
//	@ID				getMetrics
//	@Description	Requests, latency per stage, queue, rejections, auth failures, predictions, model and build info, Go and process metrics, in Prometheus' text format (docs/OPERATING.md). No authentication; absent here when METRICS_ADDR serves them on a separate listener.
//	@Tags			service
//	@Produce		plain
//	@Success		200	{string}	string	"Prometheus text exposition format"
//	@Router			/metrics [get]
func (h *handlers) metrics(c *gin.Context) { h.d.Metrics.Handler().ServeHTTP(c.Writer, c.Request) }
