package onnx

import (
	"catsdogs/tests/testmodel"
	"fmt"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// BenchmarkORTConfig answers two tuning questions on the machine at hand,
// reporting CPU-wall time per image:
//
//   - batching: does one Run over N images beat N Runs of one (the case for
//     micro-batching concurrent requests)?
//
//   - threads: two concurrent single-threaded Runs vs one Run with two
//     intra-op threads.
//
//     go test ./model/onnx -run '^$' -bench ORTConfig -benchtime 50x
func BenchmarkORTConfig(b *testing.B) {
	path := testmodel.Require(b, "../..")
	if _, err := InitRuntime(testmodel.Library(b, "../..")); err != nil {
		b.Fatal(err)
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		b.Fatal(err)
	}
	dims := ins[0].Dimensions
	newSession := func(b *testing.B, intra int) *ort.DynamicAdvancedSession {
		opts, err := ort.NewSessionOptions()
		if err != nil {
			b.Fatal(err)
		}
		defer opts.Destroy()
		_ = opts.SetIntraOpNumThreads(intra)
		_ = opts.SetInterOpNumThreads(1)
		_ = opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
		s, err := ort.NewDynamicAdvancedSession(path, []string{ins[0].Name}, []string{outs[0].Name}, opts)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	tensors := func(b *testing.B, n int) (*ort.Tensor[float32], *ort.Tensor[float32]) {
		in, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), dims[1], dims[2], dims[3]))
		if err != nil {
			b.Fatal(err)
		}
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), outs[0].Dimensions[1]))
		if err != nil {
			b.Fatal(err)
		}
		return in, out
	}
	for _, intra := range []int{1, 2} {
		for _, batch := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("serial/intra=%d/batch=%d", intra, batch), func(b *testing.B) {
				s := newSession(b, intra)
				defer s.Destroy()
				in, out := tensors(b, batch)
				defer in.Destroy()
				defer out.Destroy()
				_ = s.Run([]ort.Value{in}, []ort.Value{out})
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1e6, "ms/image")
			})
		}
	}
	// Two goroutines, each running batch-1 inferences on one shared session.
	for _, intra := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallel2/intra=%d/batch=1", intra), func(b *testing.B) {
			s := newSession(b, intra)
			defer s.Destroy()
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func(n int) {
					defer wg.Done()
					in, out := tensors(b, 1)
					defer in.Destroy()
					defer out.Destroy()
					for i := 0; i < n; i++ {
						_ = s.Run([]ort.Value{in}, []ort.Value{out})
					}
				}((b.N + 1) / 2)
			}
			wg.Wait()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/image")
		})
	}
}
