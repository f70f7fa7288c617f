// Package model serves one image classifier: it loads the ONNX model and its
// preprocessing spec, then runs each upload through decode → preprocess →
// ONNX Runtime under two admission controls, the inference Limiter (workers
// and queue) and the memory Budget. The steps live in model/decode,
// model/preprocess, model/spec and model/onnx; model/training is the Python
// pipeline that produces the model.
package model

import (
	"catsdogs/model/decode"
	"catsdogs/model/onnx"
	"catsdogs/model/preprocess"
	"catsdogs/model/spec"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Options configure loading. Zero values pick sensible defaults.
type Options struct {
	Path        string // the .onnx file
	Library     string // ONNX Runtime shared library; "" searches onnx.LibraryCandidates
	SidecarPath string // JSON preprocessing overrides; "" uses <model>.json if present
	Overrides   spec.Overrides
	// Workers is the number of inferences run at once (default: the CPU
	// quota). Each gets IntraOpThreads threads inside ONNX Runtime (default
	// quota/Workers), so the two together never oversubscribe the CPU quota.
	Workers        int
	IntraOpThreads int
	QueueSize      int           // requests allowed to wait for a worker (default 4*Workers)
	MaxPixels      int           // refuse images above this (default 50 MP)
	MaxSide        int           // refuse images with a side above this (default decode.DefaultMaxSide)
	MaxAspect      int           // refuse images longer than this many times their width (default decode.DefaultMaxAspect)
	DecodeTimeout  time.Duration // give up decoding one image after this (default decode.DefaultDecodeTimeout)
	MemoryBudget   int64         // bytes in flight for bodies and decodes, process-wide (default DefaultMemoryBudget)
	Logger         *slog.Logger
}

// Classifier is one loaded model plus its preprocessing, safe for concurrent use.
type Classifier struct {
	spec      spec.Spec
	pre       *preprocess.Preprocessor
	sess      *onnx.Session
	limiter   *Limiter
	budget    *Budget
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
	QueueSize    int       `json:"queue_size"`
	Library      string    `json:"-"` // logged at startup, not published
	Runtime      string    `json:"onnxruntime_version"`
	WarmupMS     float64   `json:"warmup_ms"`
}

// Result of one classification. Probabilities follow Labels' order.
type Result struct {
	Label         string
	Index         int
	Probabilities []float32
	DecodeMS      float64
	PreprocessMS  float64
	InferenceMS   float64
	QueueMS       float64
	Width, Height int // of the decoded, upright image
	Format        string
}

// Load opens the model, derives its preprocessing, checks it is an image
// classifier and warms it up. Errors are meant for operators: say what is
// wrong and which setting fixes it.
func Load(o Options) (*Classifier, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if _, err := os.Stat(o.Path); err != nil {
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
	workers := cmp.Or(o.Workers, cpus)
	intra := cmp.Or(o.IntraOpThreads, max(1, cpus/workers))
	queue := cmp.Or(o.QueueSize, 4*workers)

	sess, err := onnx.NewSession(o.Path, sig, want, workers, intra)
	if err != nil {
		return nil, err
	}
	pre := preprocess.New(sp)
	c := &Classifier{
		spec: sp, pre: pre, sess: sess, limiter: NewLimiter(workers, queue), budget: NewBudget(o.MemoryBudget),
		decode: pre.DecodeOptions(cmp.Or(o.MaxPixels, 50_000_000)), outputRaw: sp.Output,
	}
	c.decode.MaxSide = cmp.Or(o.MaxSide, decode.DefaultMaxSide)
	c.decode.MaxAspect = cmp.Or(o.MaxAspect, decode.DefaultMaxAspect)
	c.decode.Timeout = cmp.Or(o.DecodeTimeout, decode.DefaultDecodeTimeout)
	name := sp.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(o.Path), filepath.Ext(o.Path))
	}
	c.Info = Info{
		Name: name, Version: sp.Version, File: filepath.Base(o.Path), Labels: sp.Labels,
		Input: fmt.Sprintf("%s %v float32", sig.Input.Name, d), Spec: sp, SpecSource: sources,
		Workers: workers, IntraThreads: intra, QueueSize: queue, Library: lib, Runtime: onnx.Version(),
	}
	// Warm-up: the first Run allocates and plans; pay that before /ready says yes.
	t0 := time.Now()
	for i := 0; i < 2; i++ {
		if err := c.sess.Run(clearTensor, nil); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: warm-up inference failed: %w", o.Path, err)
		}
	}
	c.Info.WarmupMS = msSince(t0)
	return c, nil
}

func clearTensor(in []float32) { clear(in) }

// Spec returns the preprocessing in use.
func (c *Classifier) Spec() spec.Spec { return c.spec }

// Budget is the process-wide memory budget: Classify reserves decode bytes
// from it, and the HTTP layer reserves request bodies.
func (c *Classifier) Budget() *Budget { return c.budget }

// Limiter exposes queue state for metrics.
func (c *Classifier) Limiter() *Limiter { return c.limiter }

// Classify decodes, preprocesses and classifies one image. Its errors are
// those listed in errors.go, or ctx's when the caller left; anything else
// is ours.
func (c *Classifier) Classify(ctx context.Context, data []byte) (*Result, error) {
	// Sniff and bound the header first: it costs microseconds, and refusing
	// garbage here keeps it from holding a queue slot.
	hdr, err := decode.Inspect(data, c.decode)
	if err != nil {
		return nil, err
	}
	cost := decode.Cost(hdr, data, c.decode)
	if err := c.budget.fits(cost, "decoding this image"); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := c.limiter.Acquire(ctx); err != nil {
		return nil, err
	}
	defer c.limiter.Release()
	// Reserved once a worker is ours: only running decodes hold memory.
	release, err := c.budget.reserve(cost, "decoding this image")
	if err != nil {
		return nil, err
	}
	defer release()
	r := &Result{QueueMS: msSince(t0)}
	t1 := time.Now()
	img, err := decode.Pixels(ctx, data, hdr, c.decode)
	if err != nil {
		return nil, err
	}
	r.Format, r.Width, r.Height = hdr.Format, img.W, img.H
	r.DecodeMS = msSince(t1)
	return c.run(r, img)
}

// ClassifyRGB classifies an already decoded image, skipping the decode and
// its bounds; only tests use it (to compare with Classify).
func (c *Classifier) ClassifyRGB(img *decode.RGB) (*Result, error) {
	if err := c.limiter.Acquire(context.Background()); err != nil {
		return nil, err
	}
	defer c.limiter.Release()
	return c.run(&Result{Width: img.W, Height: img.H}, img)
}

// run needs a limiter permit: the session has a tensor slot per permit.
func (c *Classifier) run(r *Result, img *decode.RGB) (*Result, error) {
	var ran time.Time
	fill := func(in []float32) {
		t := time.Now()
		c.pre.Fill(in, img)
		r.PreprocessMS = msSince(t)
		ran = time.Now()
	}
	read := func(scores []float32) {
		r.InferenceMS = msSince(ran)
		r.Probabilities = toProbabilities(scores, c.outputRaw)
	}
	if err := c.sess.Run(fill, read); err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	r.Index = argmax(r.Probabilities)
	r.Label = c.spec.Labels[r.Index]
	return r, nil
}

// Close releases ONNX Runtime resources.
func (c *Classifier) Close() { c.sess.Close() }

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

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
