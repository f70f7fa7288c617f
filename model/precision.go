package model

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/cpu"

	"catsdogs/model/onnx"
	"catsdogs/model/spec"
)

// Precisions a model is served in (MODEL_PRECISION). Auto serves a model's
// int8 copy when it lies beside the model, kept its accuracy and is faster
// on this CPU; fp32 and int8 force one.
const (
	PrecisionAuto = "auto"
	PrecisionFP32 = "fp32"
	PrecisionInt8 = "int8"
)

// Precisions lists the settings MODEL_PRECISION accepts.
var Precisions = []string{PrecisionAuto, PrecisionFP32, PrecisionInt8}

// The accuracy an int8 copy may give up on val/ and still be served by
// default: its macro accuracy within 0.3 points of the fp32 model's, and
// every class within 0.5 (make quantize measures both through this package
// and writes them into the copy's metadata).
const (
	maxMacroDrop = 0.003
	maxClassDrop = 0.005
)

// int8MaxRatio: in auto, int8 must run at most this share of fp32's time per
// image in the start-up benchmark. The margin keeps a CPU where the two are
// close (no VNNI: int8 convolutions on plain AVX2) on the fp32 model, whose
// accuracy is the reference, and absorbs the benchmark's noise.
const int8MaxRatio = 0.85

// benchRounds of one fp32 and one int8 inference each, interleaved so a
// busy moment touches both; medians are compared.
const benchRounds = 15

// Int8Path is where the int8 copy of the model at path lies: beside it,
// "-int8" before the extension (what make quantize writes).
func Int8Path(path string) string {
	ext := ".onnx"
	if !strings.HasSuffix(path, ext) {
		ext = ""
	}
	return strings.TrimSuffix(path, ext) + "-int8" + ext
}

// PrecisionChoice says what was served and why (/model, the start-up log).
type PrecisionChoice struct {
	Setting string `json:"setting"` // MODEL_PRECISION
	Served  string `json:"served"`  // fp32 or int8
	Reason  string `json:"reason"`
	// The start-up benchmark, when one ran: median ms per image at batch 1
	// on one inference worker's ONNX Runtime threads.
	FP32MS float64 `json:"fp32_ms,omitempty"`
	Int8MS float64 `json:"int8_ms,omitempty"`
	// CPU features ONNX Runtime's int8 kernels use (x86), for the log.
	CPU string `json:"cpu_int8_features,omitempty"`
}

// loadPreferred is Load with o.Precision applied.
func loadPreferred(o Options, log *slog.Logger) (*Classifier, error) {
	setting := o.Precision
	if setting == "" {
		setting = PrecisionAuto
	}
	if !slices.Contains(Precisions, setting) {
		return nil, fmt.Errorf("MODEL_PRECISION=%q: want one of %s", setting, strings.Join(Precisions, ", "))
	}
	choice := PrecisionChoice{Setting: setting, Served: PrecisionFP32, CPU: cpuInt8Features()}
	done := func(c *Classifier, served, reason string) (*Classifier, error) {
		choice.Served, choice.Reason = served, reason
		c.Info.Precision = choice
		log.Info("precision", "served", served, "setting", setting, "reason", reason, "file", c.Info.File,
			"fp32_ms", choice.FP32MS, "int8_ms", choice.Int8MS, "cpu", choice.CPU)
		return c, nil
	}
	if _, err := onnx.InitRuntime(o.Library); err != nil {
		return nil, err
	}
	if sig, err := onnx.Inspect(o.Path); err == nil && sig.Metadata["precision"] == PrecisionInt8 {
		c, err := load(o, log)
		if err != nil {
			return nil, err
		}
		return done(c, PrecisionInt8, "MODEL_PATH is an int8 model")
	}
	if setting == PrecisionFP32 {
		c, err := load(o, log)
		if err != nil {
			return nil, err
		}
		return done(c, PrecisionFP32, "MODEL_PRECISION=fp32")
	}

	// The copy is served as the model: with its sidecar (<model>.json, not
	// <model>-int8.json) and, when its metadata names none, its name.
	o8 := o
	o8.Path = Int8Path(o.Path)
	o8.SidecarPath = cmp.Or(o.SidecarPath, spec.DefaultSidecar(o.Path))
	load8 := func() (*Classifier, error) {
		c, err := load(o8, log)
		if err == nil && c.spec.Name == "" {
			c.Info.Name = strings.TrimSuffix(filepath.Base(o.Path), filepath.Ext(o.Path))
		}
		return c, err
	}
	verdict := int8Verdict(o8.Path, o.Path)
	switch {
	case setting == PrecisionInt8 && errors.Is(verdict, os.ErrNotExist):
		return nil, fmt.Errorf("MODEL_PRECISION=int8: no int8 copy of %s at %s (make quantize writes it)", o.Path, o8.Path)
	case setting == PrecisionInt8:
		if verdict != nil {
			log.Warn("MODEL_PRECISION=int8 serves an int8 copy that would not be served by default", "file", o8.Path, "why", verdict.Error())
		}
		c, err := load8()
		if err != nil {
			return nil, err
		}
		return done(c, PrecisionInt8, "MODEL_PRECISION=int8")
	case verdict != nil:
		c, err := load(o, log)
		if err != nil {
			return nil, err
		}
		return done(c, PrecisionFP32, "int8 copy not used: "+verdict.Error())
	}

	// Auto with an eligible copy: load both, time both, keep the faster.
	c32, err := load(o, log)
	if err != nil {
		return nil, err
	}
	// The copy is optional in auto: if it cannot be loaded or run, the
	// model is served and the log says why.
	c8, err := load8()
	if err != nil {
		return done(c32, PrecisionFP32, "int8 copy not used: "+err.Error())
	}
	choice.FP32MS, choice.Int8MS, err = raceInference(c32, c8)
	if err != nil {
		c8.Close()
		choice.FP32MS, choice.Int8MS = 0, 0
		return done(c32, PrecisionFP32, "int8 copy not used: "+err.Error())
	}
	served, reason := chooseByTime(choice.FP32MS, choice.Int8MS)
	if served == PrecisionInt8 {
		c32.Close()
		return done(c8, served, reason)
	}
	c8.Close()
	return done(c32, served, reason)
}

// chooseByTime is auto's last step, once the int8 copy's accuracy is known
// to be within bounds: int8 only if clearly faster here.
func chooseByTime(fp32MS, int8MS float64) (served, reason string) {
	ratio := int8MS / fp32MS
	if fp32MS > 0 && int8MS > 0 && ratio <= int8MaxRatio {
		return PrecisionInt8, fmt.Sprintf("int8 is %.2fx fp32's time per image on this CPU (%.2f vs %.2f ms; at most %.2fx wanted) and within the accuracy bounds",
			ratio, int8MS, fp32MS, int8MaxRatio)
	}
	return PrecisionFP32, fmt.Sprintf("int8 is not clearly faster on this CPU: %.2fx fp32's time per image (%.2f vs %.2f ms; at most %.2fx wanted)",
		ratio, int8MS, fp32MS, int8MaxRatio)
}

// raceInference returns the median ms per image of each classifier's
// session at batch 1, in interleaved runs.
func raceInference(a, b *Classifier) (aMS, bMS float64, err error) {
	var ta, tb []float64
	for range benchRounds {
		for _, s := range []struct {
			c *Classifier
			t *[]float64
		}{{a, &ta}, {b, &tb}} {
			t0 := time.Now()
			if err := s.c.sess.Run(1, clearTensor, nil); err != nil {
				return 0, 0, fmt.Errorf("%s: start-up benchmark: %w", s.c.Info.File, err)
			}
			*s.t = append(*s.t, MillisSince(t0))
		}
	}
	return medianOf(ta), medianOf(tb), nil
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// int8Verdict says why the int8 copy at path may not be served by default
// for the fp32 model at fp32Path, or nil if it may: it must exist, have
// been made from that very file, and have kept its accuracy on val/.
func int8Verdict(path, fp32Path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no int8 copy at %s: %w", path, os.ErrNotExist)
	}
	sig, err := onnx.Inspect(path)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(fp32Path)
	if err != nil {
		return err
	}
	return int8Eligible(sig.Metadata, sum)
}

// int8Eligible checks an int8 copy's metadata (written by make quantize)
// against the fp32 model's sha256 and the accuracy bounds.
func int8Eligible(meta map[string]string, fp32SHA string) error {
	if meta["precision"] != PrecisionInt8 {
		return errors.New("its metadata does not say precision=int8")
	}
	if meta["quantized_from_sha256"] != fp32SHA {
		return errors.New("it was quantized from another file than MODEL_PATH (rerun make quantize)")
	}
	macro, err1 := strconv.ParseFloat(meta["val_macro_accuracy"], 64)
	macro32, err2 := strconv.ParseFloat(meta["val_macro_accuracy_fp32"], 64)
	var per, per32 []float64
	err3 := json.Unmarshal([]byte(meta["val_per_class_accuracy"]), &per)
	err4 := json.Unmarshal([]byte(meta["val_per_class_accuracy_fp32"]), &per32)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("its metadata lacks the measured val/ accuracy (rerun make quantize): %v", err)
	}
	if len(per) == 0 || len(per) != len(per32) {
		return fmt.Errorf("its metadata lacks the measured val/ accuracy (rerun make quantize): %d classes for int8, %d for fp32", len(per), len(per32))
	}
	// Written as "not within" so a NaN in the metadata fails too.
	if d := macro32 - macro; !(d <= maxMacroDrop+1e-9) {
		return fmt.Errorf("its val/ macro accuracy %.4f is %.2f points below fp32's %.4f (at most %.1f allowed)",
			macro, 100*d, macro32, 100*maxMacroDrop)
	}
	var labels []string
	_ = json.Unmarshal([]byte(meta["labels"]), &labels)
	for i := range per {
		if d := per32[i] - per[i]; !(d <= maxClassDrop+1e-9) {
			class := strconv.Itoa(i)
			if i < len(labels) {
				class = labels[i]
			}
			return fmt.Errorf("its val/ accuracy on %s is %.4f, %.2f points below fp32's %.4f (at most %.1f allowed)",
				class, per[i], 100*d, per32[i], 100*maxClassDrop)
		}
	}
	return nil
}

// cpuInt8Features names the x86 features ONNX Runtime's int8 kernels use.
func cpuInt8Features() string {
	if !cpu.X86.HasAVX2 {
		return ""
	}
	f := []string{"avx2"}
	if cpu.X86.HasAVXVNNI {
		f = append(f, "avx-vnni")
	}
	if cpu.X86.HasAVX512VNNI {
		f = append(f, "avx512-vnni")
	}
	return strings.Join(f, ",")
}
