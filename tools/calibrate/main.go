// Command calibrate measures the activation ranges of a model for static int8
// quantization (model/training/quantize.py; `make quantize` runs both). It
// feeds photos preprocessed by the service's own code (decode, resize,
// normalise from the model's metadata) to a probe copy of the model whose
// extra outputs are the tensors to quantize, and writes, per tensor, the range
// that keeps all but a -percentile share of the values seen:
//
//	go run ./tools/calibrate -probe build/quant/probe.onnx -out build/quant/ranges.json \
//	  -images ../shared/datasets/pets/train/cat,../shared/datasets/pets/train/dog,... -per-dir 100
//
// Two passes over the photos: the first finds each tensor's extremes, the
// second fills a histogram between them (a tensor's values from hundreds of
// photos do not fit in memory), from which the percentile range is read.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"catsdogs/model/decode"
	"catsdogs/model/onnx"
	"catsdogs/model/preprocess"
	"catsdogs/model/spec"
)

const bins = 4096

func main() {
	probe := flag.String("probe", "", "the model with the tensors to calibrate as extra outputs (quantize.py probe)")
	out := flag.String("out", "", "the JSON ranges file to write")
	dirs := flag.String("images", "", "comma-separated folders of photos")
	perDir := flag.Int("per-dir", 100, "photos taken from each folder, evenly spaced in name order")
	pct := flag.Float64("percentile", 99.999, "share of each tensor's values (per cent) its range keeps; 100 = min/max")
	lib := flag.String("ort", "", "the ONNX Runtime library (default: where `make ort` puts it)")
	flag.Parse()
	if *probe == "" || *out == "" || *dirs == "" {
		flag.Usage()
		os.Exit(2)
	}
	if _, err := onnx.InitRuntime(*lib); err != nil {
		log.Fatal(err)
	}
	sig, err := onnx.Inspect(*probe)
	if err != nil {
		log.Fatal(err)
	}
	outs, err := extraOutputs(*probe)
	if err != nil {
		log.Fatal(err)
	}
	sp, _, err := spec.Build(sig.Input.Dims, int(sig.Output.Dims[1]), spec.Sources{ModelPath: *probe, Metadata: sig.Metadata}, slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	shape := []int64{1, 3, int64(sp.Height), int64(sp.Width)}
	if sp.Layout == spec.LayoutNHWC {
		shape = []int64{1, int64(sp.Height), int64(sp.Width), 3}
	}
	names := append([]string{sig.Input.Name}, outs...)
	p, err := onnx.NewProbe(*probe, sig.Input.Name, outs, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	photos, err := pick(strings.Split(*dirs, ","), *perDir)
	if err != nil {
		log.Fatal(err)
	}
	pre := preprocess.New(sp)
	opt := pre.DecodeOptions(0) // the dataset's own photos: no size limit
	// Preprocessed inputs are small (432 KB at 192x192): keep them for the
	// second pass instead of decoding twice.
	var inputs [][]float32
	for _, f := range photos {
		data, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		h, err := decode.Inspect(data, opt)
		if err != nil {
			log.Printf("%s: skipped: %v", f, err)
			continue
		}
		img, err := decode.Pixels(context.Background(), data, h, opt)
		if err != nil {
			log.Printf("%s: skipped: %v", f, err)
			continue
		}
		in := make([]float32, pre.TensorLen())
		pre.Fill(in, img)
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		log.Fatalf("no photo could be decoded from %s", *dirs)
	}
	lo, hi := make([]float64, len(names)), make([]float64, len(names))
	for i := range lo {
		lo[i], hi[i] = math.Inf(1), math.Inf(-1)
	}
	each := func(visit func(i int, v []float32)) {
		for _, in := range inputs {
			res, err := p.Run(shape, in)
			if err != nil {
				log.Fatal(err)
			}
			visit(0, in)
			for i, v := range res {
				visit(i+1, v)
			}
		}
	}
	each(func(i int, v []float32) {
		for _, x := range v {
			lo[i], hi[i] = math.Min(lo[i], float64(x)), math.Max(hi[i], float64(x))
		}
	})
	hist := make([][]float64, len(names))
	for i := range hist {
		hist[i] = make([]float64, bins)
	}
	each(func(i int, v []float32) {
		w := (hi[i] - lo[i]) / bins
		for _, x := range v {
			b := 0
			if w > 0 {
				b = min(bins-1, int((float64(x)-lo[i])/w))
			}
			hist[i][b]++
		}
	})
	ranges := map[string][2]float64{}
	for i, n := range names {
		ranges[n] = keep(hist[i], lo[i], hi[i], *pct)
	}
	b, err := json.MarshalIndent(struct {
		Probe      string                `json:"probe"`
		Photos     int                   `json:"photos"`
		Percentile float64               `json:"percentile"`
		Tensors    map[string][2]float64 `json:"tensors"`
	}{filepath.Base(*probe), len(inputs), *pct, ranges}, "", " ")
	if err != nil {
		log.Fatal(err) // a range of ±Inf: a tensor no photo reached
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: ranges of %d tensors from %d photos (%.3f%% of values kept)\n", *out, len(names), len(inputs), *pct)
}

// keep returns the narrowest [lo', hi'] inside [lo, hi] that drops at most
// (100-pct)/2 per cent of the histogram's mass at each end.
func keep(h []float64, lo, hi, pct float64) [2]float64 {
	if pct >= 100 {
		return [2]float64{lo, hi}
	}
	total := 0.0
	for _, c := range h {
		total += c
	}
	cut := total * (100 - pct) / 200
	w := (hi - lo) / float64(len(h))
	a, s := 0, 0.0
	for a < len(h)-1 && s+h[a] <= cut {
		s += h[a]
		a++
	}
	b, s := len(h)-1, 0.0
	for b > a && s+h[b] <= cut {
		s += h[b]
		b--
	}
	return [2]float64{lo + float64(a)*w, lo + float64(b+1)*w}
}

// pick takes n photos from each folder, evenly spaced in name order, so the
// choice is reproducible and spans the folder.
func pick(dirs []string, n int) ([]string, error) {
	var all []string
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(d, "*.jpg"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no .jpg photos", d)
		}
		sort.Strings(files)
		step := max(1, len(files)/n)
		for i := 0; i < len(files) && i/step < n; i += step {
			all = append(all, files[i])
		}
	}
	return all, nil
}

// extraOutputs lists the probe's outputs after the first (the classifier's).
func extraOutputs(path string) ([]string, error) {
	names, err := onnx.OutputNames(path)
	if err != nil {
		return nil, err
	}
	return names[1:], nil
}
