package spec

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		w, h int
	}{
		{"224", 224, 224}, {"224x224", 224, 224}, {"224,224", 224, 224}, {"320x240", 320, 240},
		{" 299 X 299 ", 299, 299}, {"160 128", 160, 128}, {"4096", 4096, 4096}, {"1", 1, 1},
	} {
		w, h, err := ParseSize(c.in)
		if err != nil || w != c.w || h != c.h {
			t.Errorf("ParseSize(%q) = %d, %d, %v; want %d, %d", c.in, w, h, err, c.w, c.h)
		}
	}
	for _, in := range []string{"", "x", "0", "-1", "224x0", "abc", "224x224x3", "4097", "1e3", "224.5"} {
		if w, h, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, %d, want an error", in, w, h)
		}
	}
}

func TestParseLabels(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`["Cat", "Dog", "Other"]`, []string{"Cat", "Dog", "Other"}},
		{` ["a,b", "c"] `, []string{"a,b", "c"}}, // JSON keeps commas inside labels
		{"Cat,Dog,Other", []string{"Cat", "Dog", "Other"}},
		{" Cat , Dog ,, Other ,", []string{"Cat", "Dog", "Other"}},
		{"Only", []string{"Only"}},
	} {
		got, err := parseLabels(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseLabels(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{`["Cat",`, `[1, 2, 3]`, `[{"a":1}]`} {
		if got, err := parseLabels(in); err == nil {
			t.Errorf("parseLabels(%q) = %q, want an error", in, got)
		}
	}
}

func TestParse3AndParseFloat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want [3]float32
	}{
		{"0.485,0.456,0.406", [3]float32{0.485, 0.456, 0.406}},
		{"[0.5, 0.5, 0.5]", [3]float32{0.5, 0.5, 0.5}},
		{"(103.939 116.779 123.68)", [3]float32{103.939, 116.779, 123.68}},
		{"1/255, 2/255 ,127.5/255", [3]float32{1.0 / 255, 2.0 / 255, 0.5}},
		{"-1,0,1e-3", [3]float32{-1, 0, 0.001}},
	} {
		got, err := parse3(c.in)
		if err != nil || got != c.want {
			t.Errorf("parse3(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "1,2", "1,2,3,4", "1,2,x", "1/0,1,1", "a/b,1,1", "1//2,1,1"} {
		if got, err := parse3(in); err == nil {
			t.Errorf("parse3(%q) = %v, want an error", in, got)
		}
	}
	if f, err := parseFloat(" 1 / 255 "); err != nil || f != 1.0/255 {
		t.Errorf("parseFloat(1/255) = %v, %v", f, err)
	}
	if f, err := parseFloat("0.00392156862745098"); err != nil || float32(f) != float32(1.0/255) {
		t.Errorf("parseFloat(0.0039...) = %v, %v", f, err)
	}
}

// validSpec is what model/training exports, at 224 from a 256 resize.
func validSpec() Spec {
	return Spec{
		Labels: []string{"Cat", "Dog", "Other"}, Layout: LayoutNCHW, Width: 224, Height: 224,
		Resize: ResizeCenterCrop, ResizeShorter: 256, ChannelOrder: OrderRGB, PixelScale: 1.0 / 255,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, Output: OutputLogits,
	}
}

func TestValidate(t *testing.T) {
	s := validSpec()
	if err := s.validate(3); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for _, c := range []struct {
		name    string
		mutate  func(*Spec)
		classes int
		msg     string
	}{
		{"labels mismatch", func(*Spec) {}, 4, "4 scores but 3 labels"},
		{"no labels", func(s *Spec) { s.Labels = nil }, 3, "MODEL_LABELS"},
		{"bad layout", func(s *Spec) { s.Layout = "CHW" }, 3, "layout must be NCHW or NHWC"},
		{"lowercase layout", func(s *Spec) { s.Layout = "nchw" }, 3, "layout"},
		{"no size", func(s *Spec) { s.Width = 0 }, 3, "MODEL_INPUT_SIZE"},
		{"bad resize", func(s *Spec) { s.Resize = "crop" }, 3, "resize must be"},
		{"bad order", func(s *Spec) { s.ChannelOrder = "GRB" }, 3, "channel_order"},
		{"bad output", func(s *Spec) { s.Output = "softmax" }, 3, "output must be"},
		{"zero std", func(s *Spec) { s.Std[1] = 0 }, 3, "std[1] is zero"},
	} {
		s := validSpec()
		c.mutate(&s)
		err := s.validate(c.classes)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.msg)
		}
	}
	// A resize target smaller than the crop is raised to the crop size.
	s = validSpec()
	s.Width, s.Height, s.ResizeShorter = 224, 160, 100
	if err := s.validate(3); err != nil || s.ResizeShorter != 224 {
		t.Errorf("ResizeShorter = %d, %v; want 224", s.ResizeShorter, err)
	}
}

// Build starts from Output "auto" (decide per result, see
// model.toProbabilities), so a spec whose output kind nobody stated must
// validate: a model exported without "output" metadata (e.g. from Keras)
// loads without MODEL_OUTPUT.
func TestValidateAcceptsAutoOutput(t *testing.T) {
	s := validSpec()
	s.Output = "auto"
	if err := s.validate(3); err != nil {
		t.Errorf("Output %q (the Build default) is rejected: %v", s.Output, err)
	}
}

func TestApplyMetadata(t *testing.T) {
	var s Spec
	err := s.apply(map[string]string{
		"name": "m", "version": "7", "labels": `["Cat","Dog","Other"]`, "layout": "nhwc", "input_size": "224x160",
		"resize": "stretch", "resize_shorter": "256", "channel_order": "bgr", "pixel_scale": "1/255",
		"mean": "0.1,0.2,0.3", "std": "[1, 2, 4]", "output": "probabilities",
		"test_macro_accuracy": "0.9", "trained_by": "someone", // informational: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "m", Version: "7", Labels: []string{"Cat", "Dog", "Other"}, Layout: "NHWC", Width: 224, Height: 160,
		Resize: "stretch", ResizeShorter: 256, ChannelOrder: "BGR", PixelScale: float32(1.0 / 255),
		Mean: [3]float32{0.1, 0.2, 0.3}, Std: [3]float32{1, 2, 4}, Output: "probabilities"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	for k, v := range map[string]string{"input_size": "big", "resize_shorter": "x", "pixel_scale": "1/0", "mean": "1,2", "std": "a,b,c", "labels": "[oops"} {
		err := (&Spec{}).apply(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v, want an error naming the key", k, v, err)
		}
	}
}

// What config.go reads from MODEL_* (config_test.go checks that mapping)
// applies like any other overrides.
func TestApplyOverrides(t *testing.T) {
	o := Overrides{
		"labels": "cat, dog, other", "layout": "NHWC", "input_size": "224", "resize": "stretch",
		"resize_shorter": "256", "channel_order": "BGR", "pixel_scale": "1", "mean": "103.939,116.779,123.68",
		"std": "1,1,1", "output": "probabilities", "name": "keras", "version": "2",
	}
	var s Spec
	if err := s.apply(o); err != nil {
		t.Fatal(err)
	}
	if s.Width != 224 || s.Height != 224 || s.Layout != LayoutNHWC || s.ChannelOrder != OrderBGR || s.Mean[2] != 123.68 || len(s.Labels) != 3 {
		t.Errorf("applied overrides: %+v", s)
	}
}

func TestSidecarOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.json")
	body := `{
		"labels": ["Cat", "Dog", "Other, or none"],
		"mean": [0.5, 0.25, 0.125],
		"std": [1, 2, 3],
		"input_size": 224,
		"resize_shorter": 256,
		"pixel_scale": "1/255",
		"layout": "NHWC",
		"channel_order": "BGR",
		"output": "logits",
		"comment": "anything else is informational"
	}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := SidecarOverrides(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"labels": `["Cat","Dog","Other, or none"]`, "mean": "0.5,0.25,0.125", "std": "1,2,3", "input_size": "224",
		"resize_shorter": "256", "pixel_scale": "1/255", "layout": "NHWC",
	} {
		if o[k] != v {
			t.Errorf("%s = %q, want %q", k, o[k], v)
		}
	}
	var s Spec
	if err := s.apply(o); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Labels, []string{"Cat", "Dog", "Other, or none"}) || s.Width != 224 || s.ResizeShorter != 256 ||
		s.Mean != [3]float32{0.5, 0.25, 0.125} || s.Std != [3]float32{1, 2, 3} || s.PixelScale != float32(1.0/255) {
		t.Errorf("applied sidecar: %+v", s)
	}

	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"labels": [`), 0o600)
	if _, err := SidecarOverrides(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("invalid JSON: %v, want an error naming the file", err)
	}
	if _, err := SidecarOverrides(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing sidecar: no error")
	}
}

// A model that declares no labels or normalisation is served with guesses,
// and the log says which, loudly; one that declares them gets no warning.
func TestBuildWarnsWhatItAssumes(t *testing.T) {
	dims := []int64{1, 3, 224, 224}
	model := filepath.Join(t.TempDir(), "m.onnx") // no sidecar beside it
	build := func(meta map[string]string, ov Overrides) string {
		var logs bytes.Buffer
		if _, _, err := Build(dims, 3, Sources{ModelPath: model, Metadata: meta, Overrides: ov}, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	bare := build(nil, nil)
	for _, want := range []string{"level=WARN", "NO LABELS", "Cat Dog Other", "mean 0,0,0; std 1,1,1; pixel_scale 0.003921569; channel_order RGB; resize shorter_side_center_crop"} {
		if !strings.Contains(bare, want) {
			t.Errorf("no metadata: the log lacks %q:\n%s", want, bare)
		}
	}
	if got := build(nil, Overrides{KeyMean: "0.5,0.5,0.5", KeyStd: "0.5,0.5,0.5"}); strings.Contains(got, "mean ") || !strings.Contains(got, "pixel_scale 0.003921569") {
		t.Errorf("mean and std set: the warning should name only the rest:\n%s", got)
	}
	declared := map[string]string{KeyLabels: "a,b,c", KeyMean: "0,0,0", KeyStd: "1,1,1", KeyPixelScale: "1", KeyChannelOrder: "RGB", KeyResize: ResizeStretch}
	if got := build(declared, nil); strings.Contains(got, "WARN") {
		t.Errorf("everything declared, yet:\n%s", got)
	}
}
