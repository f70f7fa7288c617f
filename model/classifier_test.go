package model

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"catsdogs/admission"
	"catsdogs/model/decode"
	"catsdogs/model/spec"
	"catsdogs/tests/pets"
	"catsdogs/tests/poll"
	"catsdogs/tests/testimg"
	"catsdogs/tests/testmodel"
)

// These tests need a real ONNX model: CATSDOGS_TEST_MODEL (e.g. the smoke
// export of model/training) or resources.DefaultModel; they skip
// otherwise.

func unitLoad(t *testing.T, o Options) *Classifier {
	t.Helper()
	if o.Path == "" {
		o.Path = testmodel.Require(t, repoRoot)
	}
	o.Library = testmodel.Library(t, repoRoot)
	if o.Admission == nil {
		o.Admission = testAdmission(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Precision == "" {
		o.Precision = PrecisionFP32 // the file given, as it is (precision_test.go tests auto)
	}
	c, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestLoadReadsSpecFromMetadata(t *testing.T) {
	c := unitLoad(t, Options{Workers: 2})
	s := c.Spec()
	if len(s.Labels) < 2 || s.Layout == "" || s.Width <= 0 || s.Height <= 0 || s.Std == [3]float32{} {
		t.Fatalf("incomplete spec: %+v", s)
	}
	if !slices.Contains(c.Info.SpecSource, "metadata") {
		t.Errorf("spec source %v, want metadata", c.Info.SpecSource)
	}
	if c.Info.Workers != 2 || c.Info.QueueSize != 8 || c.Info.IntraThreads < 1 {
		t.Errorf("info %+v: want 2 workers, queue 8", c.Info)
	}
	if c.Info.Name == "" || c.Info.File == "" || !strings.Contains(c.Info.Input, "float32") || c.Info.WarmupMS <= 0 {
		t.Errorf("info %+v", c.Info)
	}
	// The exact file served, for /model and catsdogs_model_info.
	raw, err := os.ReadFile(testmodel.Require(t, repoRoot))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); c.Info.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %q, want the model file's %x", c.Info.SHA256, sum)
	}
	t.Logf("spec %+v, source %v, input %s", s, c.Info.SpecSource, c.Info.Input)
	// The training pipeline's model states everything itself.
	if os.Getenv("CATSDOGS_TEST_MODEL") != "" && strings.Contains(c.Info.Name, "catsdogs") {
		if !slices.Equal(s.Labels, []string{"Cat", "Dog", "Other"}) || s.Layout != spec.LayoutNCHW || s.Output != spec.OutputLogits ||
			s.Resize != spec.ResizeCenterCrop || s.Mean != [3]float32{0.485, 0.456, 0.406} || s.Std != [3]float32{0.229, 0.224, 0.225} {
			t.Errorf("spec does not match the training metadata: %+v", s)
		}
	}
}

func checkResult(t *testing.T, c *Classifier, r *Result) {
	t.Helper()
	if len(r.Probabilities) != len(c.Spec().Labels) {
		t.Fatalf("%d probabilities for %d labels", len(r.Probabilities), len(c.Spec().Labels))
	}
	var sum float64
	for _, p := range r.Probabilities {
		if p < 0 || p > 1 || math.IsNaN(float64(p)) {
			t.Fatalf("probability %v out of range", p)
		}
		sum += float64(p)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("probabilities %v sum to %v", r.Probabilities, sum)
	}
	if r.Index != argmax(r.Probabilities) || r.Label != c.Spec().Labels[r.Index] {
		t.Errorf("label %q index %d for %v", r.Label, r.Index, r.Probabilities)
	}
}

func TestClassifyRealPhoto(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1})
	p := pets.Sample(t, repoRoot, 1)[0]
	r, err := c.Classify(context.Background(), pets.Read(t, p))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, r)
	if r.Format != "jpeg" || r.Width <= 0 || r.Height <= 0 || r.InferenceMS <= 0 {
		t.Errorf("result %+v", r)
	}
	t.Logf("%s: %s %v (decode %.2f ms, preprocess %.2f ms, inference %.2f ms)", filepath.Base(p), r.Label, r.Probabilities, r.DecodeMS, r.PreprocessMS, r.InferenceMS)

	// classifyRGB on the same decoded image gives the same scores.
	r2, err := c.classifyRGB(decodeImage(t, c, pets.Read(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Probabilities, r2.Probabilities) {
		t.Errorf("Classify %v != classifyRGB %v", r.Probabilities, r2.Probabilities)
	}
}

func TestClassifyConcurrent(t *testing.T) {
	c := unitLoad(t, Options{Workers: 2, Admission: testAdmission(64)})
	photos := pets.Sample(t, repoRoot, 2)
	want := make([][]float32, len(photos))
	datas := make([][]byte, len(photos))
	for i, p := range photos {
		datas[i] = pets.Read(t, p)
		r, err := c.Classify(context.Background(), datas[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r.Probabilities
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 4; k++ {
				i := (g + k) % len(datas)
				r, err := c.Classify(context.Background(), datas[i])
				if err != nil {
					errs <- err
					return
				}
				for j := range r.Probabilities {
					if math.Abs(float64(r.Probabilities[j]-want[i][j])) > 1e-5 {
						errs <- fmt.Errorf("photo %d: concurrent %v != sequential %v", i, r.Probabilities, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClassifyClientErrors(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1})
	for _, in := range [][]byte{[]byte("not an image"), {0xFF, 0xD8, 0xFF, 0xE0, 0, 16}} {
		_, err := c.Classify(context.Background(), in)
		if err == nil || !isClientError(err) {
			t.Errorf("%q: %v, want a client error", in, err)
		}
	}
	if isClientError(admission.ErrBusy) || isClientError(errors.New("x")) {
		t.Error("isClientError is too broad")
	}
	if c.adm.Limiter().InFlight() != 0 {
		t.Error("a failed decode leaked a limiter slot")
	}
}

// With every slot taken and the queue full, Classify sheds load at once;
// a queued request whose client leaves gets the context error.
func TestClassifyBusyAndCancelled(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, Admission: testAdmission(1)})
	data := pets.Read(t, pets.Sample(t, repoRoot, 1)[0])
	release := occupy(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := c.Classify(ctx, data)
		queued <- err
	}()
	poll.Until(t, "a queued request", func() bool { return c.adm.Limiter().Waiting() == 1 })
	if _, err := c.Classify(context.Background(), data); !errors.Is(err, admission.ErrBusy) {
		t.Fatalf("queue full: %v, want ErrBusy", err)
	}
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", err)
	}
	release()
	if _, err := c.Classify(context.Background(), data); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestLoadRejectsNonONNX(t *testing.T) {
	lib := testmodel.Library(t, repoRoot)
	dir := t.TempDir()
	bad := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(bad, []byte("this is not a protobuf"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Path: bad, Library: lib, Admission: testAdmission(0)})
	if err == nil || !strings.Contains(err.Error(), "not a loadable ONNX model") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("garbage file: %v, want 'not a loadable ONNX model' naming the file", err)
	}
	_, err = Load(Options{Path: filepath.Join(dir, "missing.onnx"), Library: lib, Admission: testAdmission(0)})
	if err == nil || !strings.Contains(err.Error(), "model file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadOverridesContradictingShapeFail(t *testing.T) {
	path := testmodel.Require(t, repoRoot)
	lib := testmodel.Library(t, repoRoot)
	probe := unitLoad(t, Options{Path: path, Workers: 1})
	s := probe.Spec()
	other := 224
	if s.Width == 224 {
		other = 128
	}
	otherLayout := spec.LayoutNHWC
	if s.Layout == spec.LayoutNHWC {
		otherLayout = spec.LayoutNCHW
	}
	for name, ov := range map[string]spec.Overrides{
		"input size":   {"input_size": fmt.Sprint(other)},
		"layout":       {"layout": otherLayout},
		"label count":  {"labels": "a,b"},
		"bad resize":   {"resize": "squash"},
		"bad number":   {"mean": "1,2"},
		"bad std zero": {"std": "0,1,1"},
	} {
		_, err := Load(Options{Path: path, Library: lib, Workers: 1, Overrides: ov, Admission: testAdmission(0)})
		if err == nil {
			t.Errorf("%s override %v: loaded, want an error", name, ov)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	// spec.Overrides that agree with the model are fine and are reported.
	renamed := make([]string, len(s.Labels))
	for i := range renamed {
		renamed[i] = fmt.Sprintf("class%d", i)
	}
	c := unitLoad(t, Options{Path: path, Workers: 1, Overrides: spec.Overrides{"labels": strings.Join(renamed, ","), "input_size": fmt.Sprintf("%dx%d", s.Width, s.Height)}})
	if !slices.Contains(c.Info.SpecSource, "env") || c.Spec().Labels[0] != "class0" {
		t.Errorf("env overrides not applied: %v %v", c.Info.SpecSource, c.Spec().Labels)
	}
}

// A <model>.json beside the model is picked up as a sidecar.
func TestLoadPicksUpSidecar(t *testing.T) {
	path := testmodel.Require(t, repoRoot)
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "m.onnx")
	if err := os.Symlink(abs, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	probe := unitLoad(t, Options{Path: path, Workers: 1})
	n := len(probe.Spec().Labels)
	labels := make([]string, n)
	for i := range labels {
		labels[i] = fmt.Sprintf(`"L%d"`, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.json"), []byte(`{"labels": [`+strings.Join(labels, ",")+`], "version": "sidecar"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := unitLoad(t, Options{Path: link, Workers: 1})
	if c.Spec().Labels[0] != "L0" || c.Info.Version != "sidecar" {
		t.Errorf("sidecar not applied: %+v", c.Info)
	}
	if !slices.ContainsFunc(c.Info.SpecSource, func(s string) bool { return strings.HasPrefix(s, "sidecar:") }) {
		t.Errorf("spec source %v lacks the sidecar", c.Info.SpecSource)
	}
	// An invalid sidecar stops the load with its name in the error.
	_ = os.WriteFile(filepath.Join(dir, "m.json"), []byte(`{`), 0o600)
	if _, err := Load(Options{Path: link, Library: testmodel.Library(t, repoRoot), Workers: 1, Admission: testAdmission(0)}); err == nil || !strings.Contains(err.Error(), "m.json") {
		t.Errorf("broken sidecar: %v", err)
	}
}

// stripMetadata copies an ONNX ModelProto without its metadata_props (field
// 14), i.e. what a plain exporter writes: no labels, no preprocessing, no
// output kind. It only walks the top-level protobuf fields.
func stripMetadata(b []byte) ([]byte, error) {
	varint := func(i int) (uint64, int, error) {
		var v uint64
		for s := 0; s < 64; s += 7 {
			if i >= len(b) {
				return 0, 0, errors.New("truncated varint")
			}
			c := b[i]
			i++
			v |= uint64(c&0x7F) << s
			if c < 0x80 {
				return v, i, nil
			}
		}
		return 0, 0, errors.New("varint too long")
	}
	var out []byte
	for i := 0; i < len(b); {
		start := i
		key, j, err := varint(i)
		if err != nil {
			return nil, err
		}
		switch key & 7 {
		case 0:
			_, j, err = varint(j)
		case 1:
			j += 8
		case 2:
			var n uint64
			n, j, err = varint(j)
			j += int(n)
		case 5:
			j += 4
		default:
			err = fmt.Errorf("wire type %d", key&7)
		}
		if err != nil || j > len(b) {
			return nil, fmt.Errorf("bad protobuf at %d: %v", start, err)
		}
		if key>>3 != 14 {
			out = append(out, b[start:j]...)
		}
		i = j
	}
	return out, nil
}

// A model without metadata (as exported by Keras or a plain torch.onnx call)
// loads on shape-derived defaults: layout and size from the input, labels
// Cat/Dog/Other for 3 outputs, and "auto" output detection.
func TestLoadModelWithoutMetadata(t *testing.T) {
	src := testmodel.Require(t, repoRoot)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := stripMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(stripped) == len(b) {
		t.Skip("the test model has no metadata to strip")
	}
	path := filepath.Join(t.TempDir(), "plain.onnx")
	if err := os.WriteFile(path, stripped, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Path: path, Library: testmodel.Library(t, repoRoot), Workers: 1, Admission: testAdmission(0)})
	if err != nil {
		t.Fatalf("metadata-less model does not load: %v", err)
	}
	defer c.Close()
	if s := c.Spec(); len(s.Labels) == 0 || s.Width == 0 || s.Layout == "" {
		t.Errorf("defaults not derived: %+v", s)
	}
	r, err := c.Classify(context.Background(), pets.Read(t, pets.Sample(t, repoRoot, 1)[0]))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c, r)
	// Same model, metadata restored through the environment: loads as well.
	if _, err := Load(Options{Path: path, Library: testmodel.Library(t, repoRoot), Workers: 1, Overrides: spec.Overrides{"output": "logits"}, Admission: testAdmission(0)}); err != nil {
		t.Errorf("with MODEL_OUTPUT=logits: %v", err)
	}
}

func TestToProbabilities(t *testing.T) {
	near := func(a []float32, b ...float64) bool {
		for i := range a {
			if math.Abs(float64(a[i])-b[i]) > 1e-6 {
				return false
			}
		}
		return true
	}
	if p := toProbabilities([]float32{0, 0, 0}, spec.OutputLogits); !near(p, 1.0/3, 1.0/3, 1.0/3) {
		t.Errorf("uniform logits: %v", p)
	}
	if p := toProbabilities([]float32{1000, 0, -1000}, spec.OutputLogits); !near(p, 1, 0, 0) {
		t.Errorf("huge logits: %v (overflow?)", p)
	}
	e := math.Exp(1)
	if p := toProbabilities([]float32{1, 0}, spec.OutputLogits); !near(p, e/(e+1), 1/(e+1)) {
		t.Errorf("softmax: %v", p)
	}
	// Probabilities pass through, even if they would look like logits.
	if p := toProbabilities([]float32{0.2, 0.3, 0.5}, spec.OutputProbabilities); !near(p, 0.2, 0.3, 0.5) {
		t.Errorf("probabilities: %v", p)
	}
	// auto: a distribution passes, anything else is softmaxed.
	if p := toProbabilities([]float32{0.2, 0.3, 0.5}, "auto"); !near(p, 0.2, 0.3, 0.5) {
		t.Errorf("auto distribution: %v", p)
	}
	if p := toProbabilities([]float32{2, -1, 0.5}, "auto"); math.Abs(float64(p[0]+p[1]+p[2])-1) > 1e-6 || p[0] < p[2] {
		t.Errorf("auto logits: %v", p)
	}
	in := []float32{3, 1}
	_ = toProbabilities(in, spec.OutputLogits)
	if in[0] != 3 {
		t.Error("toProbabilities modified its input")
	}
}

func TestRankedAndArgmax(t *testing.T) {
	if got := Ranked([]float32{0.1, 0.7, 0.2}); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("Ranked = %v", got)
	}
	if got := Ranked([]float32{0.5, 0.25, 0.25}); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("ties must keep label order: %v", got)
	}
	if argmax([]float32{0.3, 0.3, 0.4}) != 2 || argmax([]float32{0.5, 0.5}) != 0 {
		t.Error("argmax")
	}
}

// Load must not take long enough to look hung (warm-up included).
func TestLoadIsQuick(t *testing.T) {
	t0 := time.Now()
	unitLoad(t, Options{Workers: 1})
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("Load took %v", d)
	}
}

// The result reports the upload's size, upright; a large JPEG is decoded at
// a DCT scale, and that smaller size is reported apart.
func TestClassifyReportsUploadSize(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testimg.PatternImage(4000, 3000), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Classify(context.Background(), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.Width != 4000 || r.Height != 3000 {
		t.Errorf("size %dx%d, want the upload's 4000x3000", r.Width, r.Height)
	}
	if decode.LibjpegTurbo && (r.DecodedWidth >= 4000 || r.DecodedWidth*3 != r.DecodedHeight*4) {
		t.Errorf("decoded %dx%d, want a DCT-scaled 4:3 size", r.DecodedWidth, r.DecodedHeight)
	}
}

// ClassifyTensor on the tensors preprocessing makes gives Classify's scores,
// several images in one call; a length that is not whole images is refused.
func TestClassifyTensorMatchesClassify(t *testing.T) {
	c := unitLoad(t, Options{Workers: 1, MaxBatch: 4})
	photos := pets.Sample(t, repoRoot, 3)
	var in []float32
	var want [][]float32
	for _, p := range photos {
		r, err := c.Classify(context.Background(), pets.Read(t, p))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.Probabilities)
		img := decodeImage(t, c, pets.Read(t, p))
		tensor := make([]float32, c.ImageSize())
		c.pre.Fill(tensor, img)
		in = append(in, tensor...)
	}
	items, err := c.ClassifyTensor(context.Background(), in)
	if err != nil || len(items) != len(photos) {
		t.Fatalf("%d items, %v", len(items), err)
	}
	for i, it := range items {
		if it.Err != nil {
			t.Fatalf("image %d: %v", i, it.Err)
		}
		checkResult(t, c, it.Result)
		for k := range want[i] {
			// Batched runs may differ from a lone run in the last bits.
			if d := math.Abs(float64(it.Result.Probabilities[k] - want[i][k])); d > 1e-5 {
				t.Errorf("image %d: ClassifyTensor %v, Classify %v", i, it.Result.Probabilities, want[i])
				break
			}
		}
	}
	if _, err := c.ClassifyTensor(context.Background(), in[:len(in)-1]); err == nil {
		t.Error("a partial image was accepted")
	}
	if c.budget.InUse() != 0 {
		t.Errorf("%d bytes of the budget still held", c.budget.InUse())
	}
}
