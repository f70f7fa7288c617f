package model

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Options configure loading. Zero values pick sensible defaults.
type Options struct {
	Path        string // the .onnx file
	Library     string // ONNX Runtime shared library; "" searches LibraryCandidates
	SidecarPath string // JSON preprocessing overrides; "" uses <model>.json if present
	Overrides   Overrides
	// Workers is the number of inferences run at once (default: CPUs). Each
	// gets IntraOpThreads threads inside ONNX Runtime (default CPUs/Workers),
	// so the two together never oversubscribe the CPU quota.
	Workers        int
	IntraOpThreads int
	QueueSize      int           // requests allowed to wait for a worker (default 4*Workers)
	MaxPixels      int           // refuse images above this (default 50 MP)
	MaxSide        int           // refuse images with a side above this (default DefaultMaxSide)
	MaxAspect      int           // refuse images longer than this many times their width (default DefaultMaxAspect)
	DecodeTimeout  time.Duration // give up decoding one image after this (default DefaultDecodeTimeout)
	MemoryBudget   int64         // bytes in flight for bodies and decodes, process-wide (default DefaultMemoryBudget)
	CPUs           int           // CPU quota (default runtime.GOMAXPROCS, which follows cgroup limits)
	Logger         *slog.Logger
}

// Classifier is one loaded model plus its preprocessing, safe for concurrent use.
type Classifier struct {
	spec      Spec
	pre       *Preprocessor
	sess      *ort.DynamicAdvancedSession
	inName    string
	outName   string
	classes   int
	limiter   *Limiter
	budget    *Budget
	slots     chan *slot
	decode    DecodeOptions
	outputRaw string // "auto" decides per result when metadata does not say
	Info      Info
}

// Info describes the loaded model for /ready and /model.
type Info struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	File         string   `json:"file"` // base name only: /model is public
	SHA256       string   `json:"sha256,omitempty"`
	Labels       []string `json:"labels"`
	Input        string   `json:"input"`
	Spec         Spec     `json:"preprocessing"`
	SpecSource   []string `json:"spec_source"`
	Workers      int      `json:"workers"`
	IntraThreads int      `json:"intra_op_threads"`
	QueueSize    int      `json:"queue_size"`
	Library      string   `json:"-"` // logged at startup, not published
	WarmupMS     float64  `json:"warmup_ms"`
}

// slot holds the pre-allocated input and output tensors of one worker, so a
// request allocates no tensors and no large buffers.
type slot struct {
	in  *ort.Tensor[float32]
	out *ort.Tensor[float32]
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
		return nil, fmt.Errorf("model file: %w", err)
	}
	lib, err := InitRuntime(o.Library)
	if err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(o.Path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a loadable ONNX model: %w", o.Path, err)
	}
	if len(ins) != 1 || len(outs) < 1 {
		return nil, fmt.Errorf("%s: want exactly 1 input (an image batch), got %d inputs and %d outputs", o.Path, len(ins), len(outs))
	}
	in, out := ins[0], outs[0]
	if in.OrtValueType != ort.ONNXTypeTensor || in.DataType != ort.TensorElementDataTypeFloat || len(in.Dimensions) != 4 {
		return nil, fmt.Errorf("%s: input %s must be a float32 tensor of rank 4 (NCHW or NHWC)", o.Path, in.String())
	}
	if out.OrtValueType != ort.ONNXTypeTensor || out.DataType != ort.TensorElementDataTypeFloat || len(out.Dimensions) != 2 || out.Dimensions[1] < 2 {
		return nil, fmt.Errorf("%s: output %s must be float32 [batch, classes]", o.Path, out.String())
	}
	classes := int(out.Dimensions[1])

	spec, sources, err := buildSpec(o, in.Dimensions, classes, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Path, err)
	}
	// The input's fixed dimensions must agree with the spec.
	d := in.Dimensions
	want := ort.NewShape(1, 3, int64(spec.Height), int64(spec.Width))
	if spec.Layout == LayoutNHWC {
		want = ort.NewShape(1, int64(spec.Height), int64(spec.Width), 3)
	}
	for i := 1; i < 4; i++ {
		if d[i] > 0 && d[i] != want[i] {
			return nil, fmt.Errorf("%s: input shape %v does not match preprocessing %s %dx%d", o.Path, d, spec.Layout, spec.Width, spec.Height)
		}
	}

	cpus := o.CPUs
	if cpus <= 0 {
		cpus = defaultCPUs()
	}
	workers := o.Workers
	if workers <= 0 {
		workers = cpus
	}
	intra := o.IntraOpThreads
	if intra <= 0 {
		intra = max(1, cpus/workers)
	}
	queue := o.QueueSize
	if queue <= 0 {
		queue = 4 * workers
	}
	maxPixels := o.MaxPixels
	if maxPixels <= 0 {
		maxPixels = 50_000_000
	}

	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	// ORT sizes its pools from the host's cores, not the container's quota:
	// set both explicitly.
	if err := opts.SetIntraOpNumThreads(intra); err != nil {
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	if err := opts.SetExecutionMode(ort.ExecutionModeSequential); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return nil, err
	}
	// Busy-spinning worker threads burn the CPU other requests need.
	_ = opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
	sess, err := ort.NewDynamicAdvancedSession(o.Path, []string{in.Name}, []string{out.Name}, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: creating ONNX Runtime session: %w", o.Path, err)
	}
	c := &Classifier{
		spec: spec, pre: NewPreprocessor(spec), sess: sess, inName: in.Name, outName: out.Name,
		classes: classes, limiter: NewLimiter(workers, queue), budget: NewBudget(o.MemoryBudget), slots: make(chan *slot, workers),
		outputRaw: spec.Output,
	}
	c.decode = c.pre.DecodeOptions(maxPixels)
	c.decode.MaxSide, c.decode.MaxAspect = cmp.Or(o.MaxSide, DefaultMaxSide), cmp.Or(o.MaxAspect, DefaultMaxAspect)
	c.decode.Timeout = cmp.Or(o.DecodeTimeout, DefaultDecodeTimeout)
	for i := 0; i < workers; i++ {
		s, err := c.newSlot(want)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.slots <- s
	}
	name := spec.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(o.Path), filepath.Ext(o.Path))
	}
	c.Info = Info{
		Name: name, Version: spec.Version, File: filepath.Base(o.Path), Labels: spec.Labels,
		Input: fmt.Sprintf("%s %v float32", in.Name, in.Dimensions), Spec: spec, SpecSource: sources,
		Workers: workers, IntraThreads: intra, QueueSize: queue, Library: lib,
	}
	// Warm-up: the first Run allocates and plans; pay that before /ready says yes.
	t0 := time.Now()
	s := <-c.slots
	for i := 0; i < 2; i++ {
		if err := c.sess.Run([]ort.Value{s.in}, []ort.Value{s.out}); err != nil {
			c.slots <- s
			c.Close()
			return nil, fmt.Errorf("%s: warm-up inference failed: %w", o.Path, err)
		}
	}
	c.slots <- s
	c.Info.WarmupMS = msSince(t0)
	return c, nil
}

func (c *Classifier) newSlot(shape ort.Shape) (*slot, error) {
	in, err := ort.NewEmptyTensor[float32](shape)
	if err != nil {
		return nil, err
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, int64(c.classes)))
	if err != nil {
		in.Destroy()
		return nil, err
	}
	return &slot{in: in, out: out}, nil
}

// Spec returns the preprocessing in use.
func (c *Classifier) Spec() Spec { return c.spec }

// Budget is the process-wide memory budget: Classify reserves decode bytes
// from it, and the HTTP layer reserves request bodies.
func (c *Classifier) Budget() *Budget { return c.budget }

// Limiter exposes queue state for metrics.
func (c *Classifier) Limiter() *Limiter { return c.limiter }

// Classify decodes, preprocesses and classifies one image. Errors wrapping
// ErrUnsupportedFormat, ErrCorruptImage or ErrImageTooLarge are the client's;
// ErrBusy and ErrMemoryFull mean shed load; anything else is ours.
func (c *Classifier) Classify(ctx context.Context, data []byte) (*Result, error) {
	// Sniff and bound the header first: it costs microseconds, and refusing
	// garbage here keeps it from holding a queue slot.
	hdr, err := Inspect(data, c.decode)
	if err != nil {
		return nil, err
	}
	cost := decodeCost(hdr, data, c.decode)
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
	img, err := DecodeInspected(ctx, data, hdr, c.decode)
	if err != nil {
		return nil, err
	}
	r.Format, r.Width, r.Height = hdr.Format, img.W, img.H
	r.DecodeMS = msSince(t1)
	return c.run(r, img)
}

// ClassifyRGB classifies an already decoded image (tests, tools).
func (c *Classifier) ClassifyRGB(img *RGB) (*Result, error) {
	if err := c.limiter.Acquire(context.Background()); err != nil {
		return nil, err
	}
	defer c.limiter.Release()
	return c.run(&Result{Width: img.W, Height: img.H}, img)
}

func (c *Classifier) run(r *Result, img *RGB) (*Result, error) {
	s := <-c.slots // a slot is always free while we hold a limiter permit
	defer func() { c.slots <- s }()
	t2 := time.Now()
	c.pre.Fill(s.in.GetData(), img)
	r.PreprocessMS = msSince(t2)
	t3 := time.Now()
	if err := c.sess.Run([]ort.Value{s.in}, []ort.Value{s.out}); err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	r.InferenceMS = msSince(t3)
	scores := s.out.GetData()
	r.Probabilities = toProbabilities(scores, c.outputRaw)
	r.Index = argmax(r.Probabilities)
	r.Label = c.spec.Labels[r.Index]
	return r, nil
}

// Ping runs one inference on a blank input: proof the model can run.
func (c *Classifier) Ping(ctx context.Context) error {
	if err := c.limiter.Acquire(ctx); err != nil {
		return err
	}
	defer c.limiter.Release()
	s := <-c.slots
	defer func() { c.slots <- s }()
	s.in.ZeroContents()
	return c.sess.Run([]ort.Value{s.in}, []ort.Value{s.out})
}

// Close releases ONNX Runtime resources.
func (c *Classifier) Close() {
	for {
		select {
		case s := <-c.slots:
			s.in.Destroy()
			s.out.Destroy()
		default:
			if c.sess != nil {
				c.sess.Destroy()
				c.sess = nil
			}
			return
		}
	}
}

// toProbabilities applies softmax to logits. For "auto" (metadata silent),
// scores that are already a distribution are passed through.
func toProbabilities(scores []float32, kind string) []float32 {
	p := make([]float32, len(scores))
	if kind == OutputProbabilities || (kind == OutputAuto && isDistribution(scores)) {
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

// IsClientError reports whether err is the uploader's fault (bad image).
func IsClientError(err error) bool {
	return errors.Is(err, ErrUnsupportedFormat) || errors.Is(err, ErrCorruptImage) || errors.Is(err, ErrImageTooLarge)
}
