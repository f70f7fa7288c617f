package api

import (
	"net/http"
	"slices"
	"strings"

	"catsdogs/oip"

	"github.com/gin-gonic/gin"
)

// The Open Inference Protocol's REST routes (package oip is the protocol).
// They share everything with /upload: request ids, metrics (labelled by the
// route templates below), auth and scope on infer, the body cap and memory
// reservation, admission, and describe's mapping of errors; only the error
// body takes the protocol's shape, {"error": "<detail>"} (see abort).
// Health and metadata are open, as /health, /ready and /model are.

// oipKey marks a request answered in the protocol's error shape.
const oipKey = "oip"

func oipShape(c *gin.Context) { c.Set(oipKey, true) }

// isOIPPath: a path no route takes is answered in the protocol's shape
// under /v2, as a client of the protocol expects.
func isOIPPath(path string) bool { return path == "/v2" || strings.HasPrefix(path, "/v2/") }

func registerOIP(r *gin.Engine, d Deps, guard []gin.HandlerFunc) {
	o := &oipHandlers{d: d, m: oip.New(d.Classifier, d.Model, d.PredictMaxFiles)}
	v2 := r.Group("/v2", oipShape)
	for _, p := range []string{"", "/"} { // the spec writes both "v2" and "/v2/"
		v2.GET(p, o.server)
	}
	v2.GET("/health/live", live)
	v2.HEAD("/health/live", live)
	v2.GET("/health/ready", o.ready)
	v2.HEAD("/health/ready", o.ready)
	infer := append(slices.Clip(guard), admitBody(d.Admission.Budget, d.PredictMaxBytes, d.Logger), o.infer)
	for _, m := range []string{"/models/:name", "/models/:name/versions/:version"} {
		v2.GET(m, o.metadata)
		v2.GET(m+"/ready", o.modelReady)
		v2.HEAD(m+"/ready", o.modelReady)
		v2.POST(m+"/infer", infer...)
	}
}

type oipHandlers struct {
	d Deps
	m *oip.Model
}

func (o *oipHandlers) server(c *gin.Context) {
	c.JSON(http.StatusOK, oip.ServerMetadata{Name: "catsdogs", Version: o.d.Build.Version, Extensions: []string{}})
}

// live and ready answer with the status alone, as the protocol asks.
func live(c *gin.Context) { c.Status(http.StatusOK) }

func (o *oipHandlers) ready(c *gin.Context) {
	if o.d.Ready != nil {
		if err := o.d.Ready(); err != nil {
			refuseNotReady(c, o.d.Logger, err) // the causes only to the log, as /ready
			return
		}
	}
	c.Status(http.StatusOK)
}

// found answers 404 unless the path names the served model.
func (o *oipHandlers) found(c *gin.Context) bool {
	if err := o.m.Find(c.Param("name"), c.Param("version")); err != nil {
		fail(c, o.d.Logger, err)
		return false
	}
	return true
}

func (o *oipHandlers) modelReady(c *gin.Context) {
	if o.found(c) {
		o.ready(c)
	}
}

func (o *oipHandlers) metadata(c *gin.Context) {
	if o.found(c) {
		c.JSON(http.StatusOK, o.m.Metadata())
	}
}

func (o *oipHandlers) infer(c *gin.Context) {
	if !o.found(c) {
		return
	}
	buf := bodyOf(c)
	if err := buf.readFrom(c.Request.Body); err != nil {
		fail(c, o.d.Logger, predictCap(malformed(err)))
		return
	}
	// Decoding copies the base64 text and decodes it (or parses the
	// numbers): reserved before it is made, as for /upload's JSON.
	if err := buf.reserve(2 * int64(buf.Len())); err != nil {
		fail(c, o.d.Logger, err)
		return
	}
	req, err := oip.DecodeJSON(buf.bytes())
	if err != nil {
		fail(c, o.d.Logger, err)
		return
	}
	resp, err := o.m.Infer(c.Request.Context(), req)
	if err != nil {
		fail(c, o.d.Logger, err)
		return
	}
	h := handlers{d: o.d}
	answered := make([]*PredictionResponse, len(resp.Results))
	for i, r := range resp.Results {
		answered[i] = h.prediction(r, -1)
	}
	c.Set(resultsKey, answered) // labels and timings for the metrics and the request log
	c.JSON(http.StatusOK, resp.JSON())
}
