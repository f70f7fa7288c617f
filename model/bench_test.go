package model

import (
	"bytes"
	"context"
	"image"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"catsdogs/model/decode"
	"catsdogs/model/preprocess"
	"catsdogs/model/spec"
	"catsdogs/resources"
	"catsdogs/tests/pets"
	"catsdogs/tests/testmodel"
	"catsdogs/tests/testspec"
)

// Benchmarks of the request path. "bytes -> tensor" is Inspect and Pixels
// with the Preprocessor's DecodeOptions plus Fill into a reused buffer, i.e.
// what Classify does before ONNX Runtime runs.
//
//	go test ./model -run '^$' -bench . -benchtime 20x
//	go test ./model -tags purego -run '^$' -bench Preprocess     # Go's JPEG decoder
//	BENCH_INPUT=224 go test ./model -run '^$' -bench Preprocess   # 224x224 input
//
// The preprocessing spec is BENCH_INPUT (a size such as 224 or 224x224, centre
// crop with the shorter side at the crop size, ImageNet normalisation) if set,
// else the model's (CATSDOGS_TEST_MODEL or resources.DefaultModel),
// else 128x128 centre crop with the shorter side at 128. The inference
// benchmarks always use the model's own input size.

var bench struct {
	once         sync.Once
	small, large []byte
}

// benchImages builds the two uploads once: a real photo at 500x375 (the
// dataset's photos are ~160 px high, so the one closest to 4:3 is upscaled
// with Catmull-Rom and re-encoded at q90) and the same kind of photo at
// 4032x3024 (12 MP, q90).
func benchImages(b *testing.B) (small, large []byte) {
	b.Helper()
	var err error
	bench.once.Do(func() {
		var files []string
		files, err = filepath.Glob(filepath.Join(benchPhotoDir(), "test", "*", "*.jpg"))
		if err != nil || len(files) == 0 {
			return
		}
		sort.Strings(files)
		best, bestScore := "", math.Inf(1)
		for _, f := range files {
			fh, e := os.Open(f)
			if e != nil {
				continue
			}
			cfg, _, e := image.DecodeConfig(fh)
			fh.Close()
			if e != nil {
				continue
			}
			// Closest aspect to 4:3, then the most pixels.
			score := math.Abs(float64(cfg.Width)/float64(cfg.Height)-4.0/3)*1e9 - float64(cfg.Width*cfg.Height)
			if score < bestScore {
				best, bestScore = f, score
			}
		}
		bench.small = pets.Read(b, best)
		if cfg, _, e := image.DecodeConfig(bytes.NewReader(bench.small)); e != nil || cfg.Width != 500 || cfg.Height != 375 {
			bench.small, err = pets.Upscaled(best, 500, 375, 90)
			if err != nil {
				return
			}
		}
		bench.large, err = pets.Upscaled(best, 4032, 3024, 90)
	})
	if err != nil {
		b.Fatal(err)
	}
	if bench.small == nil {
		b.Fatalf("no photos under %s/test", benchPhotoDir())
	}
	return bench.small, bench.large
}

// benchPhotoDir is the full dataset when present (docs/PERFORMANCE.md's figures were
// measured on its photos), else the committed fixtures, so benchmarks also
// run on a bare clone.
func benchPhotoDir() string {
	if d, ok := pets.Locate(repoRoot); ok {
		return d
	}
	return pets.Fixtures(repoRoot)
}

// benchClassifier loads the model once (nil when there is none).
func benchClassifier(b *testing.B) *Classifier {
	b.Helper()
	path := testmodel.Path(repoRoot)
	if path == "" {
		return nil
	}
	c, err := benchLoadOnce(path, testmodel.Library(b, repoRoot))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

var (
	benchLoadMu sync.Mutex
	benchLoaded *Classifier
)

func benchLoadOnce(path, lib string) (*Classifier, error) {
	benchLoadMu.Lock()
	defer benchLoadMu.Unlock()
	if benchLoaded != nil {
		return benchLoaded, nil
	}
	// One worker with one ORT thread: ns/op is then CPU time per image, which
	// is what the capacity floor (cores ÷ CPU time per image) needs.
	// Precision fp32: the file given, as it is (an int8 file stays int8).
	c, err := Load(Options{Path: path, Library: lib, Workers: 1, IntraOpThreads: 1, Precision: PrecisionFP32, Admission: testAdmission(0), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	benchLoaded = c
	return c, nil
}

// benchSpec picks the preprocessing spec (see the file comment).
func benchSpec(b *testing.B) spec.Spec {
	b.Helper()
	if v := os.Getenv("BENCH_INPUT"); v != "" {
		w, h, err := spec.ParseSize(v)
		if err != nil {
			b.Fatalf("BENCH_INPUT=%q: %v", v, err)
		}
		s := testspec.ImageNet(w)
		s.Width, s.Height, s.ResizeShorter = w, h, max(w, h)
		return s
	}
	if c := benchClassifier(b); c != nil {
		return c.Spec()
	}
	return testspec.ImageNet(128)
}

// benchBytesToTensor decodes with libjpeg-turbo, or with Go's decoders
// when built with -tags purego (make bench runs both builds).
func benchBytesToTensor(b *testing.B, data []byte) {
	spec := benchSpec(b)
	p := preprocess.New(spec)
	opt := p.DecodeOptions(0) // no pixel bound: these photos are known
	dst := make([]float32, p.TensorLen())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, err := decode.Inspect(data, opt)
		if err != nil {
			b.Fatal(err)
		}
		img, err := decode.Pixels(context.Background(), data, h, opt)
		if err != nil {
			b.Fatal(err)
		}
		p.Fill(dst, img)
	}
	b.StopTimer()
	b.ReportMetric(float64(spec.Width), "input_px")
}

func BenchmarkPreprocessSmall(b *testing.B) {
	small, _ := benchImages(b)
	benchBytesToTensor(b, small)
}

func BenchmarkPreprocessLarge12MP(b *testing.B) {
	_, large := benchImages(b)
	benchBytesToTensor(b, large)
}

// BenchmarkInference is one bare ONNX Runtime Run at batch 1 through the
// Classifier's session, on a tensor filled once from a real decoded photo
// (each Run copies it into the slot: microseconds).
func BenchmarkInference(b *testing.B) {
	c := benchClassifier(b)
	if c == nil {
		b.Skip("no ONNX model: set CATSDOGS_TEST_MODEL or put one at " + resources.DefaultModel)
	}
	small, _ := benchImages(b)
	img := decodeImage(b, c, small)
	tensor := make([]float32, c.pre.TensorLen())
	c.pre.Fill(tensor, img)
	fill := func(in []float32) { copy(in, tensor) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.sess.Run(1, fill, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClassifyEndToEnd is Classify: bytes in, probabilities out.
func BenchmarkClassifyEndToEnd(b *testing.B) {
	c := benchClassifier(b)
	if c == nil {
		b.Skip("no ONNX model: set CATSDOGS_TEST_MODEL or put one at " + resources.DefaultModel)
	}
	small, _ := benchImages(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Classify(ctx, small); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClassifyAllCores is Classify from every core at once, as the
// service runs by default (one single-threaded ONNX Runtime worker per core;
// batches of up to 8 waiting up to 2 ms, BATCH_MAX_SIZE's and
// BATCH_MAX_DELAY's defaults in config.go): ns/op is wall time per image with the machine busy, so 1e9/ns_op is
// how many images per second the cores classify without HTTP. The floor
// make bench computes from one core's figures leaves out what busy cores
// cost each other (shared L3 and memory bandwidth: an int8 inference took
// 1.11-1.14x as long with another running beside it on the dev machine).
func BenchmarkClassifyAllCores(b *testing.B) {
	path := testmodel.Path(repoRoot)
	if path == "" {
		b.Skip("no ONNX model: set CATSDOGS_TEST_MODEL or put one at " + resources.DefaultModel)
	}
	cores := runtime.GOMAXPROCS(0)
	c, err := Load(Options{Path: path, Library: testmodel.Library(b, repoRoot), Workers: cores, IntraOpThreads: 1,
		MaxBatch: 8, MaxDelay: 2 * time.Millisecond, Precision: PrecisionFP32,
		Admission: testAdmission(0), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	small, _ := benchImages(b)
	ctx := context.Background()
	// Every worker's first runs allocate ONNX Runtime's buffers: not timed.
	var wg sync.WaitGroup
	errs := make(chan error, 4*cores)
	for range 4 * cores {
		wg.Go(func() {
			_, err := c.Classify(ctx, small)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(4) // four callers per core, as c=8 on two cores: decodes overlap inference
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Classify(ctx, small); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
