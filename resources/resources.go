// Package resources names the files shipped in this folder, so the default
// model's path is written once: the service's MODEL_PATH default, the tests
// and the tools all read it from here. Paths are relative to the repository
// root, which is also the container image's working directory.
package resources

// DefaultModel is the default model; its card is MODEL.md beside it.
const DefaultModel = "resources/catsdogs-mobilenet.onnx"
