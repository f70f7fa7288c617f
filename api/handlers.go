package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"catsdogs/model"

	"github.com/gin-gonic/gin"
)

type handlers struct{ d Deps }

// HealthResponse is /health's body; "status" is exactly "OK" as before.
type HealthResponse struct {
	Status string `json:"status" example:"OK"`
	// Warnings lists unsafe settings, e.g. authentication turned off.
	Warnings []string `json:"warnings,omitempty"`
}

// health godoc
//
//	@Summary		Liveness
//	@ID				getHealth
//	@Description	Always 200 while the process serves HTTP. No authentication.
//	@Tags			service
//	@Produce		json
//	@Success		200	{object}	HealthResponse
//	@Router			/health [get]
func (h *handlers) health(c *gin.Context) {
	resp := HealthResponse{Status: "OK"}
	if h.d.AuthDisabled {
		resp.Warnings = append(resp.Warnings, "authentication is DISABLED (AUTH_DISABLED=true): /upload and /predict are open to anyone")
	}
	c.JSON(http.StatusOK, resp)
}

// ReadyResponse says the model is loaded and has run.
type ReadyResponse struct {
	Status string     `json:"status" example:"ready"`
	Model  model.Info `json:"model"`
}

// ready godoc
//
//	@Summary		Readiness
//	@ID				getReady
//	@Description	200 when the service should get traffic. 503 not_ready, with every reason in "detail" (separated by "; "), while the model is loading and warming up, while the identity provider's signing keys cannot be had (auth on), and from SIGTERM on (SHUTDOWN_DRAIN_DELAY, then the requests in flight finish).
//	@Tags			service
//	@Produce		json
//	@Success		200	{object}	ReadyResponse
//	@Failure		503	{object}	ErrorResponse	"starting, no signing keys, or shutting down"
//	@Router			/ready [get]
func (h *handlers) ready(c *gin.Context) {
	if h.d.Ready != nil {
		if err := h.d.Ready(); err != nil {
			refuseNotReady(c, h.d.Logger, err)
			return
		}
	}
	c.JSON(http.StatusOK, ReadyResponse{Status: "ready", Model: h.d.Model})
}

// modelInfo godoc
//
//	@Summary		Model metadata
//	@ID				getModel
//	@Description	Labels, input and preprocessing of the loaded model, and where they came from.
//	@Tags			service
//	@Produce		json
//	@Success		200	{object}	model.Info
//	@Router			/model [get]
func (h *handlers) modelInfo(c *gin.Context) { c.JSON(http.StatusOK, h.d.Model) }

// Score is one label's probability.
type Score struct {
	Label       string  `json:"label" example:"Cat"`
	Probability float32 `json:"probability" example:"0.97"`
}

// ModelRef names the model that answered.
type ModelRef struct {
	Name    string `json:"name" example:"catsdogs-mobilenet"`
	Version string `json:"version" example:"4"`
}

// ImageInfo describes the upload.
type ImageInfo struct {
	Format string `json:"format" example:"jpeg"`
	// Width and Height are the uploaded image's, upright (after EXIF orientation).
	Width  int `json:"width" example:"4032"`
	Height int `json:"height" example:"3024"`
	// DecodedWidth and DecodedHeight are what the service decoded before
	// resizing: a large JPEG is decoded at a reduced DCT scale (here 1/8).
	DecodedWidth  int `json:"decoded_width" example:"504"`
	DecodedHeight int `json:"decoded_height" example:"378"`
}

// Timings in milliseconds.
type Timings struct {
	Queue      float64 `json:"queue"`
	Decode     float64 `json:"decode"`
	Preprocess float64 `json:"preprocess"`
	Inference  float64 `json:"inference"`
	Total      float64 `json:"total"`
}

// PredictionResponse keeps the original service's "prediction" and "values"
// (probabilities in label order) and adds detail.
type PredictionResponse struct {
	Prediction string    `json:"prediction" example:"Cat"`
	Values     []float32 `json:"values" example:"0.97,0.02,0.01"`
	Labels     []string  `json:"labels" example:"Cat,Dog,Other"`
	Confidence float32   `json:"confidence" example:"0.97"`
	// Scores are sorted by descending probability.
	Scores    []Score   `json:"scores"`
	Model     ModelRef  `json:"model"`
	Image     ImageInfo `json:"image"`
	TimingsMS Timings   `json:"timings_ms"`
	// InferenceBatch is the number of images in the ONNX Runtime run this
	// one shared (dynamic batching; 1: it ran alone).
	InferenceBatch int `json:"inference_batch" example:"1"`
}

// upload godoc
//
//	@Summary		Classify an image as Cat, Dog or Other
//	@ID				classifyImage
//	@Description	Send one image as multipart/form-data in the field "file", as the raw body (Content-Type image/jpeg, image/png, ... or application/octet-stream), or as JSON {"image": "<base64>"} (e.g. curl --data-binary @photo.jpg -H "Content-Type: image/jpeg"); the body is capped by MAX_UPLOAD_BYTES whatever its form. Swagger UI offers the form. The format (the list is on the file field) is detected from the bytes, not the name or declared type; EXIF orientation is applied and transparency is composited on white.
//	@Description	Requires a bearer token with the scope the operator configured (OAUTH2_SCOPE). In Swagger UI, click Authorize and paste the token alone: the UI sends it as "Authorization: Bearer" plus the token. For a token on your machine, see "make dev" in the README.
//	@Tags			prediction
//	@Accept			multipart/form-data
//	@Produce		json
//	@Param			file	formData	file	true	"the image"
//	@Security		BearerAuth
//	@Success		200	{object}	PredictionResponse
//	@Failure		400	{object}	ErrorResponse	"no \"file\" field (JSON: no \"image\"), empty file or body, more than one \"file\" part, malformed multipart or JSON body, or \"image\" not base64"
//	@Failure		401	{object}	ErrorResponse	"invalid_token: no token (bare WWW-Authenticate: Bearer realm=\"catsdogs\", no error code), or a malformed, expired or otherwise invalid one (error=\"invalid_token\"); invalid_request: more than one Authorization header (error=\"invalid_request\")"
//	@Failure		403	{object}	ErrorResponse	"valid token without the required scope (WWW-Authenticate: Bearer error=\"insufficient_scope\")"
//	@Failure		413	{object}	ErrorResponse	"payload_too_large: body over MAX_UPLOAD_BYTES; image_too_large: pixels, a side or the aspect ratio over the limit, or a decode that would need more than MEMORY_BUDGET or take over DECODE_TIMEOUT"
//	@Failure		415	{object}	ErrorResponse	"a Content-Type other than multipart/form-data, image/*, application/octet-stream or application/json, or the file is not a supported image"
//	@Failure		422	{object}	ErrorResponse	"a supported image format whose data is corrupt or truncated"
//	@Failure		503	{object}	ErrorResponse	"busy: inference queue full, or MEMORY_BUDGET held by other requests' bodies and decodes; auth_unavailable: identity provider unreachable and the token's key not cached. See Retry-After"
//	@Router			/upload [post]
func (h *handlers) upload(c *gin.Context) {
	start := time.Now()
	data, err := readUploadBody(c.Request, bodyOf(c))
	if err != nil {
		fail(c, h.d.Logger, err)
		return
	}
	res, err := h.d.Classifier.Classify(c.Request.Context(), data)
	if err != nil {
		fail(c, h.d.Logger, err)
		return
	}
	resp := h.prediction(res, model.MillisSince(start))
	c.Set(resultKey, resp) // label and timings for the metrics and the request log
	c.JSON(http.StatusOK, resp)
}

// prediction is the answer for one classified image. totalMS < 0: the sum
// of its stages (an image of a /predict request).
func (h *handlers) prediction(res *model.Result, totalMS float64) *PredictionResponse {
	ms := Timings{Queue: micros(res.QueueMS), Decode: micros(res.DecodeMS), Preprocess: micros(res.PreprocessMS),
		Inference: micros(res.InferenceMS), Total: micros(totalMS)}
	if totalMS < 0 {
		ms.Total = micros(res.QueueMS + res.DecodeMS + res.PreprocessMS + res.InferenceMS)
	}
	p := &PredictionResponse{
		Prediction: res.Label, Values: res.Probabilities, Labels: h.d.Model.Labels,
		Confidence: res.Probabilities[res.Index],
		Model:      ModelRef{Name: h.d.Model.Name, Version: h.d.Model.Version},
		Image: ImageInfo{Format: res.Format, Width: res.Width, Height: res.Height,
			DecodedWidth: res.DecodedWidth, DecodedHeight: res.DecodedHeight},
		TimingsMS: ms, InferenceBatch: res.Batch,
	}
	for _, i := range model.Ranked(res.Probabilities) {
		p.Scores = append(p.Scores, Score{Label: h.d.Model.Labels[i], Probability: res.Probabilities[i]})
	}
	return p
}

// micros rounds milliseconds to the microsecond the clock measured: sums of
// such values would otherwise print as 0.30000000000000004.
func micros(ms float64) float64 { return math.Round(ms*1000) / 1000 }

// malformed reports a body that could not be read as multipart, unless it
// was cut at the size cap (*http.MaxBytesError: 413) or the memory budget
// could not hold it (errUploadsFull: 503). The cause stays wrapped for
// fail, which words it: the parser's own text is not for clients.
func malformed(err error) error {
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig || errors.Is(err, errUploadsFull) {
		return err
	}
	return fmt.Errorf("%w: %w", errMalformedBody, err)
}
