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

// BuildInfo says what is running: /version, the start log line and the
// catsdogs_build_info metric.
type BuildInfo struct {
	Version     string `json:"version" example:"v1.2.0-3-gabc1234"` // git describe, set by -ldflags
	Commit      string `json:"commit" example:"abc1234def5678"`     // VCS revision Go embedded
	Modified    bool   `json:"modified,omitempty"`                  // built from a tree with uncommitted changes
	GoVersion   string `json:"go_version" example:"go1.26.8"`
	ONNXRuntime string `json:"onnxruntime_version" example:"1.24.3"`
	Model       string `json:"model" example:"catsdogs-mobilenet"`
	ModelVer    string `json:"model_version" example:"1"`
}
