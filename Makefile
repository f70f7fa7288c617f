# catsdogs — everything a fresh machine needs goes through this file.
#   make run    build and serve the committed default model on :8080 (auth off, see README)
#   make test   unit + end-to-end tests (real ONNX Runtime, real OIDC issuer over HTTP)
#   make bench  Go benchmarks + HTTP load test + the capacity floor, in one table
#   make train  retrain the default model from ../shared/datasets/pets (CPU or CUDA)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
PYTHON    ?= /usr/bin/python3
DATA      ?= ../shared/datasets/pets

# ONNX Runtime: onnxruntime_go v1.27 speaks C API 24, i.e. ORT 1.24.x. The Linux x64
# library ships inside the npm package onnxruntime-node; we take just that file.
ORT_VERSION := 1.24.3
ORT_SHA256  := 92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
ORT_DIR     := third_party/onnxruntime-$(ORT_VERSION)
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so
SWAG        := $(shell $(GO) env GOPATH)/bin/swag
SWAG_VERSION := v1.16.6

export CGO_ENABLED := 1

.PHONY: build run test unit e2e bench train smoke-train docs docs-check deps ort fmt vet clean

deps: ort jpeg-dev

ort: $(ORT_LIB)
$(ORT_LIB):
	@mkdir -p $(ORT_DIR)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  echo "fetching onnxruntime-node@$(ORT_VERSION) from npm (library only, no install scripts)"; \
	  (cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	  tar -xzf "$$tmp"/onnxruntime-node-$(ORT_VERSION).tgz -C "$$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	  echo "$(ORT_SHA256)  $$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --quiet; \
	  mv "$$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@
	@echo "ONNX Runtime $(ORT_VERSION) -> $@"

# libjpeg-turbo headers for the fast JPEG path (cgo). Installed from Debian if missing.
.PHONY: jpeg-dev
jpeg-dev:
	@test -f /usr/include/jpeglib.h || test -f /usr/include/x86_64-linux-gnu/jpeglib.h || \
	  { echo "installing libjpeg62-turbo-dev"; $(SUDO) apt-get install -y -q libjpeg62-turbo-dev >/dev/null; }
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

build: deps
	$(GO) build -o bin/catsdogs .

run: build
	AUTH_DISABLED=$${AUTH_DISABLED:-true} ./bin/catsdogs

# Swagger docs are generated from the annotations in main.go and api/ and committed.
$(SWAG):
	$(GO) install github.com/swaggo/swag/cmd/swag@$(SWAG_VERSION)

SWAG_FLAGS := --parseDependency=false --parseInternal -g main.go -o docs --outputTypes go,json,yaml

docs: $(SWAG)
	$(SWAG) fmt -g main.go >/dev/null
	$(SWAG) init $(SWAG_FLAGS) >/dev/null

# CI fails when the committed docs/ no longer match the code.
docs-check: $(SWAG)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(SWAG) init --parseDependency=false --parseInternal -g main.go -o "$$tmp" --outputTypes go,json,yaml >/dev/null; \
	  for f in docs.go swagger.json swagger.yaml; do \
	    diff -q "$$tmp/$$f" docs/$$f >/dev/null || { echo "docs/$$f is stale: run 'make docs' and commit"; exit 1; }; \
	  done; echo "docs/ up to date"
