package api

import (
	"catsdogs/model"

	"github.com/prometheus/client_golang/prometheus"
)

// What the gRPC server (oip/grpcserver) shares with the HTTP layer: the one
// mapping of errors, and the metrics.

// Answer is what an error becomes over HTTP, for another transport to derive
// its own answer from (a gRPC status from Status).
type Answer struct {
	Status     int    // HTTP status
	Code       string // our error code, e.g. corrupt_image
	Detail     string // the words for the client
	RetryAfter string // seconds, for a 503; "" otherwise
	LogAs      string // non-empty: log the error with this message (ours, not the client's)
}

// Describe maps err as fail would answer it.
func Describe(err error) Answer {
	a := describe(err)
	out := Answer{Status: a.status, Code: a.code, Detail: a.detail, LogAs: a.logAs}
	for _, h := range a.headers {
		if h[0] == "Retry-After" {
			out.RetryAfter = h[1]
		}
	}
	return out
}

// newRPCCounter is catsdogs_grpc_requests_total.
func newRPCCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "catsdogs_grpc_requests_total",
		Help: "gRPC calls answered, by method (the service's six) and status code (OK, InvalidArgument, Unauthenticated, ...)."},
		[]string{"method", "code"})
}

// CountRPC counts one gRPC call as instrument counts an HTTP request: the
// call by method and code, an auth refusal or a 503-like one by reason, and
// each classified image's label, stages and batch.
func (m *Metrics) CountRPC(method, code string, failed error, results []*model.Result) {
	m.rpcs.WithLabelValues(method, code).Inc()
	if failed != nil {
		m.countFailure(failed, Describe(failed).Status)
	}
	for _, r := range results {
		total := r.QueueMS + r.DecodeMS + r.PreprocessMS + r.InferenceMS
		m.observe(r.Label, [5]float64{r.QueueMS, r.DecodeMS, r.PreprocessMS, r.InferenceMS, total}, r.Batch)
	}
}

// observe counts one classified image.
func (m *Metrics) observe(label string, stagesMS [5]float64, batch int) {
	m.predictions.WithLabelValues(label).Inc()
	for i, v := range stagesMS {
		m.stages.WithLabelValues(Stages[i]).Observe(v / 1000)
	}
	m.batchSizes.Observe(float64(batch))
}

// SaneRequestID says whether a caller's request id is kept (see requestID).
func SaneRequestID(id string) bool { return saneRequestID(id) }
