// Package model serves one image classifier: it loads the ONNX model and its
// preprocessing spec, then runs each upload through decode → preprocess →
// ONNX Runtime, under the service's admission (package admission: the
// limiter it sizes to this pipeline, and the memory budget it reserves
// decodes and input tensors from). The steps live in model/decode,
// model/preprocess, model/spec and model/onnx; model/training is the Python
// pipeline that produces the model.
package model

import (
	"catsdogs/admission"
	"catsdogs/model/decode"
	"catsdogs/model/onnx"
	"catsdogs/model/preprocess"
	"catsdogs/model/spec"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure loading. Zero values pick sensible defaults.
type Options struct {
	Path        string // the .onnx file
	Library     string // ONNX Runtime shared library; "" searches onnx.LibraryCandidates
	SidecarPath string // JSON preprocessing overrides; "" uses <model>.json if present
	Overrides   spec.Overrides
	// Workers is the number of ONNX Runtime runs at once (default: the CPU
	// quota). Each gets IntraOpThreads threads inside ONNX Runtime (default
	// quota/Workers), so the two together never oversubscribe the CPU quota.
	// Decoding and preprocessing run on up to the CPU quota's goroutines at
	// once, apart from inference. (Measured on 2 cores: two single-thread
	// runs of batches beat one two-thread run per image; docs/PERFORMANCE.md.)
	Workers        int
	IntraOpThreads int
	// MaxBatch > 1 turns on dynamic batching: concurrent images share one
	// Run of up to MaxBatch images, waiting at most MaxDelay for others
	// (see batcher). Needs a model with a dynamic batch dimension.
	MaxBatch int
	MaxDelay time.Duration
	// The decode bounds, as decode.Options has them (0: none). main passes
	// the settings' values; their defaults are declared there, once.
	MaxPixels     int           // refuse images above this many pixels
	MaxSide       int           // refuse images with a side above this
	MaxAspect     int           // refuse images longer than this many times their width
	DecodeTimeout time.Duration // give up decoding one image after this
	// Admission is the process's one admission controller (required): Load
	// sizes its limiter to this pipeline, and decodes and input tensors
	// are reserved from its memory budget.
	Admission *admission.Controller
	Logger    *slog.Logger
	// Precision is MODEL_PRECISION: auto (default), fp32 or int8; see
	// precision.go for how auto decides.
	Precision string
}

// Classifier is one loaded model plus its preprocessing, safe for concurrent use.
type Classifier struct {
	spec      spec.Spec
	pre       *preprocess.Preprocessor
	sess      *onnx.Session
	adm       *admission.Controller
	budget    *admission.Budget // adm's
	cpu       chan struct{}     // decodes and preprocessing running at once
	lanes     int               // images of one ClassifyMany in flight at once
	batch     *batcher
	tensors   sync.Pool // []float32 input tensors of one image
	decode    decode.Options
	outputRaw string // "auto" decides per result when metadata does not say
	Info      Info
}

// Info describes the loaded model for /ready and /model.
type Info struct {
	Name         string    `json:"name"`
	Version      string    `json:"version"`
	File         string    `json:"file"` // base name only: /model is public
	SHA256       string    `json:"sha256,omitempty"`
	Labels       []string  `json:"labels"`
	Input        string    `json:"input"`
	Spec         spec.Spec `json:"preprocessing"`
	SpecSource   []string  `json:"spec_source"`
	Workers      int       `json:"workers"`
	IntraThreads int       `json:"intra_op_threads"`
	Admitted     int       `json:"admitted"` // images processed at once; more requests wait in the queue
	QueueSize    int       `json:"queue_size"`
	MaxBatch     int       `json:"batch_max_size"` // 1: no batching
	MaxDelayMS   float64   `json:"batch_max_delay_ms"`
	Library      string    `json:"-"` // logged at startup, not published
	Runtime      string    `json:"onnxruntime_version"`
	WarmupMS     float64   `json:"warmup_ms"`
	// Precision says whether the model or its int8 copy is served, and why.
	Precision PrecisionChoice `json:"precision"`
}

// Result of one classification. Probabilities follow Labels' order.
type Result struct {
	Label         string
	Index         int
	Probabilities []float32
	DecodeMS      float64
	PreprocessMS  float64
	InferenceMS   float64 // the Run this image was part of
	QueueMS       float64 // waiting for admission, a CPU slot and the batch
	Batch         int     // images in that Run (1 without batching)
	Width, Height int     // of the upload, upright (after EXIF orientation)
	// DecodedWidth and DecodedHeight are what was decoded: smaller than the
	// upload for a large JPEG, which libjpeg-turbo decodes at a DCT scale.
	DecodedWidth, DecodedHeight int
	Format                      string
}

// Load opens the model, derives its preprocessing, checks it is an image
// classifier and warms it up. Errors are meant for operators: say what is
// wrong and which setting fixes it.
func Load(o Options) (*Classifier, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if o.Admission == nil {
		return nil, errors.New("model.Load: no admission controller given")
	}
	return loadPreferred(o, log)
}

// load opens the one model file o.Path.
func load(o Options, log *slog.Logger) (*Classifier, error) {
	sum, err := fileSHA256(o.Path)
	if err != nil {
		return nil, fmt.Errorf("MODEL_PATH: model file: %w", err)
	}
	lib, err := onnx.InitRuntime(o.Library)
	if err != nil {
		return nil, err
	}
	sig, err := onnx.Inspect(o.Path)
	if err != nil {
		return nil, fmt.Errorf("MODEL_PATH: %w", err)
	}
	d := sig.Input.Dims
	classes := int(sig.Output.Dims[1])
	sp, sources, err := spec.Build(d, classes, spec.Sources{
		ModelPath: o.Path, Metadata: sig.Metadata, Sidecar: o.SidecarPath, Overrides: o.Overrides,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Path, err)
	}
	// The input's fixed dimensions must agree with the spec.
	want := []int64{1, 3, int64(sp.Height), int64(sp.Width)}
	if sp.Layout == spec.LayoutNHWC {
		want = []int64{1, int64(sp.Height), int64(sp.Width), 3}
	}
	for i := 1; i < 4; i++ {
		if d[i] > 0 && d[i] != want[i] {
			return nil, fmt.Errorf("%s: input shape %v does not match preprocessing %s %dx%d", o.Path, d, sp.Layout, sp.Width, sp.Height)
		}
	}

	// GOMAXPROCS follows cgroup CPU limits (Go 1.25+); ONNX Runtime's own
	// thread-pool sizing does not.
	cpus := runtime.GOMAXPROCS(0)
	maxBatch := max(1, o.MaxBatch)
	if maxBatch > 1 && d[0] > 0 {
		log.Warn("the model's batch size is fixed: dynamic batching is off (BATCH_MAX_SIZE ignored)",
			"input", fmt.Sprintf("%s %v", sig.Input.Name, d))
		maxBatch = 1
	}
	workers := cmp.Or(o.Workers, cpus)
	intra := cmp.Or(o.IntraOpThreads, max(1, cpus/workers))
	size := sizePipeline(cpus, workers, maxBatch)
	admitted, lanes := size.admitted, size.lanes
	queue := o.Admission.Size(admitted, lanes)

	sess, err := onnx.NewSession(o.Path, sig, want, workers, intra, maxBatch)
	if err != nil {
		return nil, err
	}
	pre := preprocess.New(sp)
	c := &Classifier{
		spec: sp, pre: pre, sess: sess, adm: o.Admission, budget: o.Admission.Budget,
		cpu: make(chan struct{}, cpus), lanes: lanes,
		decode: pre.DecodeOptions(o.MaxPixels), outputRaw: sp.Output,
	}
	c.decode.MaxSide, c.decode.MaxAspect, c.decode.Timeout = o.MaxSide, o.MaxAspect, o.DecodeTimeout
	name := sp.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(o.Path), filepath.Ext(o.Path))
	}
	c.Info = Info{
		Name: name, Version: sp.Version, File: filepath.Base(o.Path), SHA256: sum, Labels: sp.Labels,
		Input: fmt.Sprintf("%s %v float32", sig.Input.Name, d), Spec: sp, SpecSource: sources,
		Workers: workers, IntraThreads: intra, Admitted: admitted, QueueSize: queue,
		MaxBatch: maxBatch, MaxDelayMS: float64(o.MaxDelay.Microseconds()) / 1000,
		Library: lib, Runtime: onnx.Version(),
	}
	// Warm-up: the first Run of a batch size allocates and plans; pay that
	// before /ready says yes (size.warm).
	t0 := time.Now()
	for _, n := range size.warm {
		if err := c.sess.Run(n, clearTensor, nil); err != nil {
			c.sess.Close()
			return nil, fmt.Errorf("%s: warm-up inference (batch of %d) failed: %w", o.Path, n, err)
		}
	}
	c.Info.WarmupMS = MillisSince(t0)
	c.batch = newBatcher(sess, workers, o.MaxDelay)
	return c, nil
}

func clearTensor(in []float32) { clear(in) }

// fileSHA256 identifies the exact model served (/model, catsdogs_model_info):
// a name and version can be reused by a retrained file, the hash cannot.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pipelineSizes are the pipeline's figures that follow from the CPU quota,
// the inference runners and the batch size, worked out in one place.
type pipelineSizes struct {
	// admitted images at once: enough to keep every CPU decoding while
	// every runner has a full batch.
	admitted int
	// lanes: images of one many-image request in flight at once (each holds
	// an input tensor): enough to fill a batch or keep every CPU busy, and
	// no more. It is also that request's weight in admission.
	lanes int
	// warm: the batch sizes run before /ready: 1 (twice: most runs are
	// small), the powers of two and the largest. Other sizes plan on first use.
	warm []int
}

func sizePipeline(cpus, workers, maxBatch int) pipelineSizes {
	warm := []int{1}
	for n := 1; n < maxBatch; n *= 2 {
		warm = append(warm, n)
	}
	return pipelineSizes{admitted: cpus + workers*maxBatch, lanes: max(maxBatch, cpus), warm: append(warm, maxBatch)}
}

// Spec returns the preprocessing in use.
func (c *Classifier) Spec() spec.Spec { return c.spec }

// Classify decodes, preprocesses and classifies one image. Its errors are
// those listed in errors.go, admission's refusals, or ctx's when the
// caller left; anything else is ours.
func (c *Classifier) Classify(ctx context.Context, data []byte) (*Result, error) {
	// Sniff and bound the header first: it costs microseconds, and refusing
	// garbage here keeps it from holding a queue slot.
	hdr, cost, err := c.inspect(data)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	release, err := c.adm.Admit(ctx, 1)
	if err != nil {
		return nil, err
	}
	defer release()
	return c.classify(ctx, data, hdr, cost, MillisSince(t0))
}

// Item is one image's outcome in ClassifyMany: a Result or an error of
// those Classify returns.
type Item struct {
	Result *Result
	Err    error
}

// ClassifyMany classifies several images of one request, answering in their
// order. The request is admitted as a whole, weighing as many images as it
// can have in flight (admission.ErrBusy, or ctx's error, for all of it);
// after that each image succeeds or fails on its own. Its images
// are prepared in parallel and share inference Runs with each other and
// with other requests when batching is on.
func (c *Classifier) ClassifyMany(ctx context.Context, images [][]byte) ([]Item, error) {
	t0 := time.Now()
	release, err := c.adm.Admit(ctx, len(images))
	if err != nil {
		return nil, err
	}
	defer release()
	admitMS := MillisSince(t0)
	out := make([]Item, len(images))
	lanes := make(chan struct{}, c.lanes)
	var wg sync.WaitGroup
	for i, data := range images {
		hdr, cost, err := c.inspect(data)
		if err != nil {
			out[i].Err = err
			continue
		}
		lanes <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-lanes; wg.Done() }()
			// Not the handler's goroutine: its panic recovery does not
			// reach here, so a panic must become this image's error.
			defer func() {
				if p := recover(); p != nil {
					out[i].Result, out[i].Err = nil, fmt.Errorf("classifying image %d: panic: %v", i, p)
				}
			}()
			// The memory budget is often full of this request's own other
			// images for a moment: retry before giving up on this one.
			out[i].Result, out[i].Err = admission.Retry(ctx, func() (*Result, error) {
				return c.classify(ctx, data, hdr, cost, admitMS)
			})
		}()
	}
	wg.Wait()
	return out, nil
}

// inspect reads and bounds the image header and prices its decode.
func (c *Classifier) inspect(data []byte) (decode.Header, int64, error) {
	hdr, err := decode.Inspect(data, c.decode)
	if err != nil {
		return hdr, 0, err
	}
	cost := decode.Cost(hdr, c.decode)
	if n := cost + c.tensorBytes(); !c.budget.Fits(n) {
		return hdr, 0, decode.OverLimit("decoding this image needs about %d MiB, over the %d MiB memory budget (MEMORY_BUDGET)",
			n>>20, c.budget.Total()>>20)
	}
	return hdr, cost, nil
}

func (c *Classifier) tensorBytes() int64 { return int64(c.sess.ImageSize()) * 4 }

// classify runs one admitted image through decode → preprocess → batcher.
func (c *Classifier) classify(ctx context.Context, data []byte, hdr decode.Header, cost int64, queuedMS float64) (*Result, error) {
	r := &Result{QueueMS: queuedMS, Format: hdr.Format}
	r.Width, r.Height = hdr.Upright()
	c.batch.expect()
	in, err := c.prepare(ctx, data, hdr, cost, r)
	if err != nil {
		c.batch.abandon()
		return nil, err
	}
	defer c.putTensor(in)
	return c.infer(r, in)
}

// prepare decodes and preprocesses on a CPU slot. The input tensor it
// returns is held against the memory budget until putTensor.
func (c *Classifier) prepare(ctx context.Context, data []byte, hdr decode.Header, cost int64, r *Result) ([]float32, error) {
	t0 := time.Now()
	select {
	case c.cpu <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.cpu }()
	r.QueueMS += MillisSince(t0)
	// Reserved once a CPU slot is ours: only running decodes hold memory.
	releaseDecode, err := c.budget.Reserve(cost)
	if err != nil {
		return nil, err
	}
	defer releaseDecode()
	t1 := time.Now()
	img, err := decode.Pixels(ctx, data, hdr, c.decode)
	if err != nil {
		return nil, err
	}
	r.DecodedWidth, r.DecodedHeight = img.W, img.H
	r.DecodeMS = MillisSince(t1)
	return c.preprocess(r, img)
}

func (c *Classifier) preprocess(r *Result, img *decode.RGB) ([]float32, error) {
	in, err := c.getTensor()
	if err != nil {
		return nil, err
	}
	t := time.Now()
	c.pre.Fill(in, img)
	r.PreprocessMS = MillisSince(t)
	return in, nil
}

// infer hands a prepared tensor, announced with batch.expect, to the batcher.
func (c *Classifier) infer(r *Result, in []float32) (*Result, error) {
	j := c.batch.submit(in)
	if j.err != nil {
		return nil, fmt.Errorf("inference: %w", j.err)
	}
	r.QueueMS += j.waitMS
	r.InferenceMS, r.Batch = j.runMS, j.batch
	r.Probabilities = toProbabilities(j.scores, c.outputRaw)
	r.Index = argmax(r.Probabilities)
	r.Label = c.spec.Labels[r.Index]
	return r, nil
}

// Input tensors come from a pool; each one in use is counted in the memory
// budget, so a crowd of /predict requests cannot pile them up.
func (c *Classifier) getTensor() ([]float32, error) {
	// Given back by putTensor, not by the func reserve returns.
	if !c.budget.TryAcquire(c.tensorBytes()) {
		return nil, admission.ErrMemoryFull
	}
	if p, ok := c.tensors.Get().(*[]float32); ok {
		return *p, nil
	}
	return make([]float32, c.sess.ImageSize()), nil
}

func (c *Classifier) putTensor(in []float32) {
	c.budget.Release(c.tensorBytes())
	c.tensors.Put(&in)
}

// ImageSize is the number of float32s of one image's input tensor, in the
// spec's layout (3 × height × width).
func (c *Classifier) ImageSize() int { return c.sess.ImageSize() }

// ClassifyTensor classifies images already preprocessed into the model's
// input layout, ImageSize() float32s each, back to back: for callers that
// preprocess themselves (the Open Inference Protocol's FP32 input). It skips
// decode and preprocessing, and is admitted and batched like ClassifyMany.
func (c *Classifier) ClassifyTensor(ctx context.Context, in []float32) ([]Item, error) {
	size := c.sess.ImageSize()
	if len(in) == 0 || len(in)%size != 0 {
		return nil, fmt.Errorf("model: ClassifyTensor needs a multiple of %d values, got %d", size, len(in))
	}
	n := len(in) / size
	t0 := time.Now()
	release, err := c.adm.Admit(ctx, n)
	if err != nil {
		return nil, err
	}
	defer release()
	admitMS := MillisSince(t0)
	out := make([]Item, n)
	lanes := make(chan struct{}, c.lanes) // as ClassifyMany: tensors in flight
	var wg sync.WaitGroup
	for i := range n {
		lanes <- struct{}{}
		wg.Go(func() {
			defer func() { <-lanes }()
			out[i].Result, out[i].Err = admission.Retry(ctx, func() (*Result, error) {
				r := &Result{QueueMS: admitMS}
				c.batch.expect()
				t, err := c.getTensor()
				if err != nil {
					c.batch.abandon()
					return nil, err
				}
				defer c.putTensor(t)
				copy(t, in[i*size:(i+1)*size])
				return c.infer(r, t)
			})
		})
	}
	wg.Wait()
	return out, nil
}

// Close releases ONNX Runtime resources.
func (c *Classifier) Close() {
	c.batch.stop()
	c.sess.Close()
}

// toProbabilities applies softmax to logits. For "auto" (metadata silent),
// scores that are already a distribution are passed through.
func toProbabilities(scores []float32, kind string) []float32 {
	p := make([]float32, len(scores))
	if kind == spec.OutputProbabilities || (kind == spec.OutputAuto && isDistribution(scores)) {
		copy(p, scores)
		return p
	}
	m := scores[0]
	for _, v := range scores {
		m = max(m, v)
	}
	var sum float64
	for i, v := range scores {
		e := math.Exp(float64(v - m))
		p[i] = float32(e)
		sum += e
	}
	for i := range p {
		p[i] = float32(float64(p[i]) / sum)
	}
	return p
}

func isDistribution(s []float32) bool {
	var sum float64
	for _, v := range s {
		if v < 0 || v > 1 {
			return false
		}
		sum += float64(v)
	}
	return math.Abs(sum-1) < 1e-3
}

func argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// Ranked returns label indexes sorted by descending probability.
func Ranked(p []float32) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	return idx
}

// MillisSince is the time since t in milliseconds, to the microsecond: the
// unit of every timing in a Result, and of the API's timings_ms.
func MillisSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
