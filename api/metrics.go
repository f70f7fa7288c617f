package api

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"catsdogs/admission"
	"catsdogs/api/auth"
	"catsdogs/model"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the service's Prometheus metrics, in a registry of their own
// (not the global one) so that each router in a test starts from zero.
// Every label takes values from a fixed set: routes as registered (or
// "unmatched"), status codes, stage names, the model's labels and the
// reasons listed here and in auth.Reasons; never anything a caller sends.
type Metrics struct {
	reg          *prometheus.Registry
	handler      http.Handler
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	stages       *prometheus.HistogramVec
	rejected     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	predictions  *prometheus.CounterVec
	batchSizes   prometheus.Histogram
	modelInfo    *prometheus.GaugeVec
	buildInfo    *prometheus.GaugeVec
	rpcs         *prometheus.CounterVec // catsdogs_grpc_requests_total (rpc.go)
	source       atomic.Pointer[metricSource]
}

// metricSource is what the gauges read at scrape time.
type metricSource struct {
	limiter *admission.Limiter // nil without admission (Starting)
	budget  *admission.Budget
	ready   func() error // nil: always ready
}

// Stages of a classified image, as timed in the response's timings_ms.
var Stages = []string{"queue", "decode", "preprocess", "inference", "total"}

// Reasons for a 503, as the catsdogs_rejected_total label.
const (
	rejectQueueFull       = "queue_full"       // workers busy and the queue full
	rejectMemory          = "memory_budget"    // MEMORY_BUDGET held by other requests
	rejectAuthUnavailable = "auth_unavailable" // keys for the token could not be had
	rejectNotReady        = "not_ready"        // starting or draining
	rejectClientGone      = "client_gone"      // the client left while queued
)

// NewMetrics registers every metric, the Go runtime's and the process's.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catsdogs_http_requests_total",
		Help: "HTTP requests answered, by route (as registered; unmatched for 404s), method and status (499: client left)."},
		[]string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "catsdogs_http_request_duration_seconds",
		Help:    "Time from the request's arrival at the router to its answer, by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "catsdogs_http_requests_in_flight",
		Help: "HTTP requests being handled now."})
	m.stages = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "catsdogs_image_stage_seconds",
		Help:    "Time per stage of each classified image (/upload, each image of /predict, /v2 and gRPC inferences): queue (admission, a CPU slot, the batch), decode, preprocess, inference (its run), total (/upload: the handler, body read included; /predict: the stages' sum).",
		Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"stage"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catsdogs_rejected_total",
		Help: "503 answers (other than /ready's), by reason: queue_full, memory_budget, auth_unavailable, not_ready, client_gone."},
		[]string{"reason"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catsdogs_auth_failures_total",
		Help: "Requests refused by authentication (401, 503) or authorisation (403), by reason."}, []string{"reason"})
	m.predictions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catsdogs_predictions_total",
		Help: "Successful classifications, by predicted label."}, []string{"label"})
	m.batchSizes = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "catsdogs_inference_batch_images",
		Help:    "Classified images, by the number of images in the ONNX Runtime run each shared (dynamic batching; 1: alone).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64}})
	m.modelInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "catsdogs_model_info",
		Help: "The model being served (always 1)."}, []string{"name", "version", "file", "sha256", "input"})
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "catsdogs_build_info",
		Help: "The running build (always 1)."}, []string{"version", "commit", "go_version", "onnxruntime_version"})
	m.rpcs = newRPCCounter()
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.stages, m.rejected,
		m.authFailures, m.predictions, m.batchSizes, m.modelInfo, m.buildInfo, m.rpcs} {
		f(c)
	}
	src := func(get func(*metricSource) float64) func() float64 {
		return func() float64 {
			if s := m.source.Load(); s != nil {
				return get(s)
			}
			return 0
		}
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catsdogs_inference_in_flight",
		Help: "Images admitted now (a /predict request counts its weight): being decoded, queued for or in an inference run."},
		src(func(s *metricSource) float64 { return float64(orZero(s.limiter, (*admission.Limiter).InFlight)) })))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catsdogs_inference_queued",
		Help: "Requests waiting for admission now (at most INFERENCE_QUEUE)."},
		src(func(s *metricSource) float64 { return float64(orZero(s.limiter, (*admission.Limiter).Waiting)) })))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catsdogs_memory_budget_used_bytes",
		Help: "Bytes of request bodies and decodes held now, out of MEMORY_BUDGET."},
		src(func(s *metricSource) float64 { return float64(orZero(s.budget, (*admission.Budget).InUse)) })))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catsdogs_memory_budget_bytes",
		Help: "MEMORY_BUDGET."}, src(func(s *metricSource) float64 { return float64(orZero(s.budget, (*admission.Budget).Total)) })))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "catsdogs_ready",
		Help: "1 while /ready would answer 200, else 0 (starting, no JWKS keys, draining)."},
		src(func(s *metricSource) float64 {
			if s.ready != nil && s.ready() != nil {
				return 0
			}
			return 1
		})))
	for _, s := range Stages {
		m.stages.WithLabelValues(s)
	}
	for _, r := range []string{rejectQueueFull, rejectMemory, rejectAuthUnavailable, rejectNotReady, rejectClientGone} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range auth.Reasons {
		m.authFailures.WithLabelValues(r)
	}
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// SetBuild publishes b as catsdogs_build_info.
func (m *Metrics) SetBuild(b BuildInfo) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(b.Version, b.Commit, b.GoVersion, b.ONNXRuntime).Set(1)
}

// watch publishes the model's info, zeroes its labels' prediction counts
// (so a rate() of a label never seen is 0, not absent) and reads the
// admission's queue and memory budget at scrape time.
func (m *Metrics) watch(info model.Info, adm *admission.Controller, ready func() error) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(info.Name, info.Version, info.File, info.SHA256, info.Input).Set(1)
	for _, l := range info.Labels {
		m.predictions.WithLabelValues(l)
	}
	src := &metricSource{ready: ready}
	if adm != nil {
		src.limiter, src.budget = adm.Limiter(), adm.Budget
	}
	m.source.Store(src)
}

// routeLabel is the route a request matched, or "unmatched" (404s, 405s):
// never the raw path, or scanners would mint series. The request log says
// the same.
func routeLabel(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// orZero is get(v), or 0 when v is nil.
func orZero[T any, N int | int64](v *T, get func(*T) N) N {
	if v == nil {
		return 0
	}
	return get(v)
}

// failedKey is where fail leaves the error it answered, for the metrics
// and the request log.
const failedKey = "failed"

// resultKey is where upload leaves its response, and resultsKey where
// predict leaves those of its classified images, for the same.
const (
	resultKey  = "result"
	resultsKey = "results"
)

// answered lists the classified images of a request: one for /upload,
// any number for /predict.
func answered(c *gin.Context) []*PredictionResponse {
	if v, ok := c.Get(resultKey); ok {
		return []*PredictionResponse{v.(*PredictionResponse)}
	}
	v, _ := c.Get(resultsKey)
	list, _ := v.([]*PredictionResponse)
	return list
}

// methods are the method label's values besides "other": Go accepts any
// token as a method (up to the header limit), so a raw one would let each
// request mint a series.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// methodLabel is method if it is a standard verb, else "other".
func methodLabel(method string) string {
	if slices.Contains(methods, method) {
		return method
	}
	return "other"
}

// instrument counts and times every request; it runs inside requestLog, so
// both see the same status.
func (m *Metrics) instrument(c *gin.Context) {
	t := time.Now()
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	c.Next()
	route := routeLabel(c)
	written := c.Writer.Status() // what fail answered; nobody reads it if the client left
	status := written
	if c.Request.Context().Err() != nil {
		status = statusClientGone
	}
	m.requests.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(t).Seconds())

	err, _ := c.Get(failedKey)
	failed, _ := err.(error)
	if route != "/ready" {
		m.countFailure(failed, written)
	}
	for _, p := range answered(c) {
		ms := p.TimingsMS
		m.observe(p.Prediction, [5]float64{ms.Queue, ms.Decode, ms.Preprocess, ms.Inference, ms.Total}, p.InferenceBatch)
	}
}

// countFailure counts an auth refusal by reason, and a 503 (a 499 too:
// client_gone) by its reason.
func (m *Metrics) countFailure(failed error, status int) {
	if r := auth.Reason(failed); r != "" {
		m.authFailures.WithLabelValues(r).Inc()
	}
	if status == http.StatusServiceUnavailable {
		reason := rejectNotReady // Starting's 503s answer no error
		if failed != nil {
			reason = describe(failed).reason
		}
		m.rejected.WithLabelValues(reason).Inc()
	}
}

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
