// Package spec says how the model wants its input: size, layout, resize,
// normalisation, labels and how to read the output. A Spec is built from the
// model's ONNX metadata (written by model/training), a JSON sidecar and
// MODEL_* overrides, in that order; model/preprocess turns images into
// tensors from it. It knows nothing of ONNX Runtime or HTTP.
package spec

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Spec says how to turn an image into the model's input tensor and how to read
// its output. It comes from the model's ONNX metadata_props (written by
// model/training), optionally overridden by a JSON sidecar or environment
// variables so models exported elsewhere (Keras, PyTorch) serve unchanged.
type Spec struct {
	Name    string   `json:"name,omitempty"`
	Version string   `json:"version,omitempty"`
	Labels  []string `json:"labels,omitempty"`
	// Layout is NCHW (PyTorch) or NHWC (Keras/TensorFlow).
	Layout string `json:"layout,omitempty"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	// Resize: "shorter_side_center_crop" (shorter side to ResizeShorter, then a
	// centred Width x Height crop) or "stretch" (straight to Width x Height).
	Resize        string `json:"resize,omitempty"`
	ResizeShorter int    `json:"resize_shorter,omitempty"`
	// ChannelOrder is RGB or BGR. Per channel, in that order:
	// value = (pixel * PixelScale - Mean[c]) / Std[c].
	ChannelOrder string     `json:"channel_order,omitempty"`
	PixelScale   float32    `json:"pixel_scale,omitempty"`
	Mean         [3]float32 `json:"mean"`
	Std          [3]float32 `json:"std"`
	// Output is "logits" (softmax applied here) or "probabilities".
	Output string `json:"output,omitempty"`
}

// Keys of the metadata_props the training pipeline writes
// (model/training/train.py); sidecars and overrides use the same keys.
const (
	KeyName, KeyVersion, KeyLabels                   = "name", "version", "labels"
	KeyLayout, KeyInputSize, KeyResize               = "layout", "input_size", "resize"
	KeyResizeShorter, KeyChannelOrder, KeyPixelScale = "resize_shorter", "channel_order", "pixel_scale"
	KeyMean, KeyStd, KeyOutput                       = "mean", "std", "output"
)

// Values of Spec fields.
const (
	ResizeCenterCrop, ResizeStretch   = "shorter_side_center_crop", "stretch"
	OutputLogits, OutputProbabilities = "logits", "probabilities"
	// OutputAuto (metadata silent): scores that already form a distribution
	// are taken as probabilities, anything else gets a softmax.
	OutputAuto                                 = "auto"
	LayoutNCHW, LayoutNHWC, OrderRGB, OrderBGR = "NCHW", "NHWC", "RGB", "BGR"
)

// Overrides are applied last, key by key: the MODEL_* settings, which
// config.go reads (MODEL_LABELS sets KeyLabels, and so on).
type Overrides map[string]string

// DefaultSidecar is the JSON file read for the model at modelPath when
// MODEL_SPEC is unset: <model>.json beside it, or "" when there is none.
func DefaultSidecar(modelPath string) string {
	if p := strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".json"; fileExists(p) {
		return p
	}
	return ""
}

// SidecarOverrides reads a JSON object of the same keys (e.g. model.json next
// to model.onnx). Values may be strings, numbers or arrays.
func SidecarOverrides(path string) (Overrides, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	o := Overrides{}
	for k, v := range raw {
		switch t := v.(type) {
		case string:
			o[k] = t
		case []any:
			if k == KeyLabels {
				j, _ := json.Marshal(t)
				o[k] = string(j)
				continue
			}
			parts := make([]string, len(t))
			for i, e := range t {
				parts[i] = fmt.Sprint(e)
			}
			o[k] = strings.Join(parts, ",")
		default:
			o[k] = fmt.Sprint(t)
		}
	}
	return o, nil
}

// apply sets spec fields from key/value pairs (metadata or overrides).
func (s *Spec) apply(kv map[string]string) error {
	for k, v := range kv {
		var err error
		switch k {
		case KeyName:
			s.Name = v
		case KeyVersion:
			s.Version = v
		case KeyLabels:
			s.Labels, err = parseLabels(v)
		case KeyLayout:
			s.Layout = strings.ToUpper(v)
		case KeyInputSize:
			s.Width, s.Height, err = ParseSize(v)
		case KeyResize:
			s.Resize = v
		case KeyResizeShorter:
			s.ResizeShorter, err = strconv.Atoi(v)
		case KeyChannelOrder:
			s.ChannelOrder = strings.ToUpper(v)
		case KeyPixelScale:
			var f float64
			f, err = parseFloat(v)
			s.PixelScale = float32(f)
		case KeyMean:
			s.Mean, err = parse3(v)
		case KeyStd:
			s.Std, err = parse3(v)
		case KeyOutput:
			s.Output = v
		default:
			continue // other metadata (accuracy, provenance) is informational
		}
		if err != nil {
			return fmt.Errorf("preprocessing key %q=%q: %w", k, v, err)
		}
	}
	return nil
}

// validate checks the spec is complete and consistent with the label count.
func (s *Spec) validate(classes int) error {
	switch {
	case s.Layout != LayoutNCHW && s.Layout != LayoutNHWC:
		return fmt.Errorf("layout must be NCHW or NHWC, got %q", s.Layout)
	case s.Width <= 0 || s.Height <= 0:
		return fmt.Errorf("input size unknown: set MODEL_INPUT_SIZE (e.g. 224x224)")
	case s.Resize != ResizeCenterCrop && s.Resize != ResizeStretch:
		return fmt.Errorf("resize must be %q or %q, got %q", ResizeCenterCrop, ResizeStretch, s.Resize)
	case s.ChannelOrder != OrderRGB && s.ChannelOrder != OrderBGR:
		return fmt.Errorf("channel_order must be RGB or BGR, got %q", s.ChannelOrder)
	case s.Output != OutputLogits && s.Output != OutputProbabilities && s.Output != OutputAuto:
		return fmt.Errorf("output must be logits or probabilities, got %q", s.Output)
	case len(s.Labels) != classes:
		return fmt.Errorf("model outputs %d scores but %d labels are configured (%v): set MODEL_LABELS", classes, len(s.Labels), s.Labels)
	}
	for c := 0; c < 3; c++ {
		if s.Std[c] == 0 {
			return fmt.Errorf("std[%d] is zero", c)
		}
	}
	if s.Resize == ResizeCenterCrop && s.ResizeShorter < max(s.Width, s.Height) {
		s.ResizeShorter = max(s.Width, s.Height)
	}
	return nil
}

func parseLabels(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") {
		var l []string
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return nil, err
		}
		return l, nil
	}
	var l []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l = append(l, p)
		}
	}
	return l, nil
}

// ParseSize reads an input size: WIDTHxHEIGHT, or one number for a square.
func ParseSize(v string) (w, h int, err error) {
	parts := strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == 'x' || r == ',' || r == ' ' })
	if len(parts) == 1 {
		parts = append(parts, parts[0])
	}
	if len(parts) != 2 {
		return 0, 0, fmt.Errorf("want WIDTHxHEIGHT or SIZE")
	}
	if w, err = strconv.Atoi(parts[0]); err == nil {
		h, err = strconv.Atoi(parts[1])
	}
	if err == nil && (w <= 0 || h <= 0 || w > 4096 || h > 4096) {
		err = fmt.Errorf("size out of range")
	}
	return w, h, err
}

// parseFloat accepts plain numbers and fractions such as "1/255".
func parseFloat(v string) (float64, error) {
	if a, b, ok := strings.Cut(v, "/"); ok {
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 != nil || err2 != nil || y == 0 {
			return 0, fmt.Errorf("bad fraction")
		}
		return x / y, nil
	}
	return strconv.ParseFloat(strings.TrimSpace(v), 64)
}

func parse3(v string) ([3]float32, error) {
	var out [3]float32
	parts := strings.FieldsFunc(strings.Trim(v, "[]() "), func(r rune) bool { return r == ',' || r == ' ' })
	if len(parts) != 3 {
		return out, fmt.Errorf("want 3 comma-separated numbers")
	}
	for i, p := range parts {
		f, err := parseFloat(p)
		if err != nil {
			return out, err
		}
		out[i] = float32(f)
	}
	return out, nil
}

// guessed are the keys whose built-in defaults are a guess about how the
// model was trained (Build's first layer), in the order a warning lists them.
var guessed = []string{KeyMean, KeyStd, KeyPixelScale, KeyChannelOrder, KeyResize}

// undeclared lists the guessed keys that no layer set.
func (s Spec) undeclared(layers ...map[string]string) []string {
	var out []string
	for _, k := range guessed {
		set := false
		for _, l := range layers {
			_, ok := l[k]
			set = set || ok
		}
		if !set {
			out = append(out, k)
		}
	}
	return out
}

// describe words the values of keys, e.g. "mean 0,0,0; std 1,1,1".
func (s Spec) describe(keys []string) string {
	three := func(v [3]float32) string { return fmt.Sprintf("%g,%g,%g", v[0], v[1], v[2]) }
	var parts []string
	for _, k := range keys {
		v := map[string]string{KeyMean: three(s.Mean), KeyStd: three(s.Std), KeyPixelScale: fmt.Sprintf("%g", s.PixelScale),
			KeyChannelOrder: s.ChannelOrder, KeyResize: s.Resize}[k]
		parts = append(parts, k+" "+v)
	}
	return strings.Join(parts, "; ")
}

// Sources are what a Spec is built from, besides the model's input shape.
type Sources struct {
	ModelPath string            // the .onnx file; its <name>.json is the default sidecar
	Metadata  map[string]string // the model's metadata_props
	Sidecar   string            // JSON overrides (MODEL_SPEC); "" uses <model>.json if present
	Overrides Overrides         // MODEL_* settings
}

// Build layers, lowest first: what the input shape (dims, NCHW or NHWC)
// implies, built-in defaults, the model's metadata, a JSON sidecar, the
// overrides. It returns the spec and where it came from, for /model.
func Build(dims []int64, classes int, src Sources, log *slog.Logger) (Spec, []string, error) {
	s := Spec{Resize: ResizeCenterCrop, ChannelOrder: OrderRGB, PixelScale: 1.0 / 255,
		Std: [3]float32{1, 1, 1}, Output: OutputAuto}
	switch {
	case dims[1] == 3:
		s.Layout = LayoutNCHW
		s.Height, s.Width = int(dims[2]), int(dims[3])
	case dims[3] == 3:
		s.Layout = LayoutNHWC
		s.Height, s.Width = int(dims[1]), int(dims[2])
	}
	s.Width, s.Height = max(s.Width, 0), max(s.Height, 0) // -1 means dynamic
	var sources []string

	if len(src.Metadata) > 0 {
		if err := s.apply(src.Metadata); err != nil {
			return s, nil, fmt.Errorf("model metadata: %w", err)
		}
		sources = append(sources, "metadata")
	}
	if _, ok := src.Metadata[KeyResizeShorter]; !ok {
		s.ResizeShorter = 0 // derived from the size in validate
	}

	sidecar := cmp.Or(src.Sidecar, DefaultSidecar(src.ModelPath))
	var sidecarKeys Overrides
	if sidecar != "" {
		ov, err := SidecarOverrides(sidecar)
		if err != nil {
			return s, nil, fmt.Errorf("preprocessing sidecar: %w", err)
		}
		sidecarKeys = ov
		if err := s.apply(ov); err != nil {
			return s, nil, fmt.Errorf("sidecar %s: %w", sidecar, err)
		}
		sources = append(sources, "sidecar:"+sidecar)
	}
	if len(src.Overrides) > 0 {
		if err := s.apply(src.Overrides); err != nil {
			return s, nil, fmt.Errorf("environment: %w", err)
		}
		sources = append(sources, "env")
	}
	if len(s.Labels) == 0 && classes == 3 {
		s.Labels = []string{"Cat", "Dog", "Other"}
		log.Warn("THE MODEL DECLARES NO LABELS: its 3 scores are served as Cat, Dog, Other; "+
			"if it was trained on other classes, set MODEL_LABELS (or labels in a sidecar, docs/MODELS.md)", "assumed_labels", s.Labels)
		sources = append(sources, "default-labels")
	}
	// Normalisation nobody declared is a guess, and a wrong one serves
	// confident nonsense: say what was assumed.
	if assumed := s.undeclared(src.Metadata, sidecarKeys, src.Overrides); len(assumed) > 0 {
		log.Warn("THE MODEL DECLARES NO PREPROCESSING for "+strings.Join(assumed, ", ")+
			": built-in defaults are used; if it was trained otherwise, set MODEL_MEAN, MODEL_STD, ... (or a sidecar, docs/MODELS.md)",
			"assumed", s.describe(assumed))
	}
	if s.Layout == "" {
		return s, nil, fmt.Errorf("cannot tell NCHW from NHWC from input shape %v: set MODEL_LAYOUT", dims)
	}
	if err := s.validate(classes); err != nil {
		return s, nil, err
	}
	return s, sources, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
