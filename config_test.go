package main

import (
	"reflect"
	"testing"

	"catsdogs/model/spec"
)

// Every MODEL_* setting reaches the model as a preprocessing override under
// its spec key; blank ones and other MODEL_ names are ignored.
func TestModelOverridesFromEnv(t *testing.T) {
	env := map[string]string{
		"AUTH_DISABLED": "true",
		"MODEL_LABELS":  "cat, dog, other", "MODEL_LAYOUT": "NHWC", "MODEL_INPUT_SIZE": " 224 ",
		"MODEL_RESIZE": "stretch", "MODEL_RESIZE_SHORTER": "256", "MODEL_CHANNEL_ORDER": "BGR",
		"MODEL_PIXEL_SCALE": "1", "MODEL_MEAN": "103.939,116.779,123.68", "MODEL_STD": "1,1,1",
		"MODEL_OUTPUT": "probabilities", "MODEL_NAME": "keras", "MODEL_VERSION": "2",
		"MODEL_EMPTY": "", "MODEL_STD_EXTRA": "ignored", "MODEL_INPUT": "ignored",
	}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Overrides{
		"labels": "cat, dog, other", "layout": "NHWC", "input_size": "224", "resize": "stretch",
		"resize_shorter": "256", "channel_order": "BGR", "pixel_scale": "1", "mean": "103.939,116.779,123.68",
		"std": "1,1,1", "output": "probabilities", "name": "keras", "version": "2",
	}
	if !reflect.DeepEqual(c.ModelOverrides, want) {
		t.Errorf("got  %v\nwant %v", c.ModelOverrides, want)
	}
	c, _ = loadConfig(func(k string) string {
		if k == "AUTH_DISABLED" {
			return "true"
		}
		return "  "
	})
	if len(c.ModelOverrides) != 0 {
		t.Errorf("blank values should be ignored: %v", c.ModelOverrides)
	}
}
