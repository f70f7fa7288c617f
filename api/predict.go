package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"catsdogs/model"

	"github.com/gin-gonic/gin"
)

// PredictItem is one image's answer in a /predict response: the fields of
// /upload's answer when it was classified, or error, detail and status when
// it was not.
type PredictItem struct {
	// Index of the "file" part in the request, from 0.
	Index int `json:"index" example:"0"`
	// Filename as the client sent it, if it did.
	Filename string `json:"filename,omitempty" example:"cat.jpg"`
	*PredictionResponse
	// Error is the code /upload would answer for this image alone, e.g.
	// unsupported_image; absent when it was classified.
	Error  string `json:"error,omitempty" example:"unsupported_image"`
	Detail string `json:"detail,omitempty" example:"this \"file\" part is empty"`
	// Status is the HTTP status /upload would answer for this image alone.
	Status int `json:"status,omitempty" example:"415"`
	// RetryAfter is the seconds /upload's Retry-After would say for this
	// image (busy, 503): send it again then. The answer's own Retry-After
	// header carries the largest.
	RetryAfter int `json:"retry_after,omitempty" example:"1"`
}

// PredictResponse answers /predict: one item per "file" part, in order.
type PredictResponse struct {
	Results []PredictItem `json:"results"`
	// Count of images; Failed of those with an error.
	Count     int          `json:"count" example:"2"`
	Failed    int          `json:"failed" example:"0"`
	Model     ModelRef     `json:"model"`
	TimingsMS TotalTimings `json:"timings_ms"`
}

// TotalTimings is the whole request's time in milliseconds.
type TotalTimings struct {
	Total float64 `json:"total"`
}

// predict godoc
//
//	@Summary		Classify several images in one request
//	@ID				classifyImages
//	@Description	Send up to PREDICT_MAX_FILES images as multipart/form-data, each in a part named "file", or as JSON {"images": ["<base64>", ...]} (a raw image body is one image); the whole body is capped by PREDICT_MAX_BYTES (both set by the operator; their defaults are in docs/CONFIGURATION.md). Answers 200 with one result per part, in order: each is /upload's answer for that image, or its own error (error, detail and the status /upload would have answered), so one bad image does not fail the others. The images are decoded in parallel and share ONNX Runtime runs (dynamic batching, BATCH_MAX_SIZE).
//	@Description	Same token and scope as /upload.
//	@Tags			prediction
//	@Accept			multipart/form-data
//	@Produce		json
//	@Param			file	formData	[]file	true	"the images: repeat the part for each image"	collectionFormat(multi)
//	@Security		BearerAuth
//	@Success		200	{object}	PredictResponse
//	@Failure		400	{object}	ErrorResponse	"no \"file\" part (JSON: no \"images\"), or a malformed multipart or JSON body"
//	@Failure		401	{object}	ErrorResponse	"no token, or an invalid one (as /upload)"
//	@Failure		403	{object}	ErrorResponse	"valid token without the required scope"
//	@Failure		413	{object}	ErrorResponse	"payload_too_large: body over PREDICT_MAX_BYTES; too_many_files: more than PREDICT_MAX_FILES parts"
//	@Failure		415	{object}	ErrorResponse	"a Content-Type other than multipart/form-data, image/*, application/octet-stream or application/json"
//	@Failure		503	{object}	ErrorResponse	"busy: inference queue full or memory budget in use (the request as a whole); auth_unavailable. See Retry-After"
//	@Router			/predict [post]
func (h *handlers) predict(c *gin.Context) {
	start := time.Now()
	parts, err := readPredictBody(c.Request, bodyOf(c), h.d.PredictMaxFiles)
	if err != nil {
		fail(c, h.d.Logger, predictCap(err))
		return
	}
	// Empty parts get their error here; the rest go to the model together.
	var images [][]byte
	var at []int
	items := make([]PredictItem, len(parts))
	for i, p := range parts {
		items[i] = PredictItem{Index: i, Filename: p.filename}
		if p.err != nil {
			h.itemError(c, &items[i], p.err)
			continue
		}
		if len(p.data) == 0 {
			h.itemError(c, &items[i], detailed{errFileEmpty, "this \"file\" part is empty"})
			continue
		}
		images = append(images, p.data)
		at = append(at, i)
	}
	results, err := h.d.Classifier.ClassifyMany(c.Request.Context(), images)
	if err != nil {
		fail(c, h.d.Logger, err)
		return
	}
	resp := PredictResponse{Count: len(items), Model: ModelRef{Name: h.d.Model.Name, Version: h.d.Model.Version}}
	var answered []*PredictionResponse
	for k, r := range results {
		it := &items[at[k]]
		if r.Err != nil {
			h.itemError(c, it, r.Err)
			continue
		}
		it.PredictionResponse = h.prediction(r.Result, -1)
		answered = append(answered, it.PredictionResponse)
	}
	retry := 0
	for _, it := range items {
		if it.Error != "" {
			resp.Failed++
		}
		retry = max(retry, it.RetryAfter)
	}
	if retry > 0 { // some images met a busy service: say when to send them again
		c.Header("Retry-After", strconv.Itoa(retry))
	}
	resp.Results = items
	resp.TimingsMS.Total = model.MillisSince(start)
	c.Set(resultsKey, answered) // labels and timings for the metrics and the request log
	c.JSON(http.StatusOK, resp)
}

// predictCap marks a body over PREDICT_MAX_BYTES so the answer names that
// setting; the cap may be hit inside the multipart reader, which wraps it.
func predictCap(err error) error {
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return fmt.Errorf("%w: %w", errPredictBody, err)
	}
	return err
}

// itemError words one image's error as /upload would answer it.
func (h *handlers) itemError(c *gin.Context, it *PredictItem, err error) {
	a := describe(err)
	if a.logAs != "" {
		requestLogger(c, h.d.Logger).Error(a.logAs, "err", err, "index", it.Index)
	}
	it.Error, it.Detail, it.Status = a.code, a.detail, a.status
	for _, h := range a.headers {
		if h[0] == "Retry-After" {
			it.RetryAfter, _ = strconv.Atoi(h[1])
		}
	}
}

type filePart struct {
	filename string
	data     []byte
	err      error // this image's own (a JSON item that is not base64)
}

// clip shortens s to at most n bytes, on a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
