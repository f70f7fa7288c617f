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
	  if command -v npm >/dev/null; then (cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	  else curl -fsSL -o "$$tmp"/onnxruntime-node-$(ORT_VERSION).tgz \
	    https://registry.npmjs.org/onnxruntime-node/-/onnxruntime-node-$(ORT_VERSION).tgz; fi; \
	  tar -xzf "$$tmp"/onnxruntime-node-$(ORT_VERSION).tgz -C "$$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1; \
	  echo "$(ORT_SHA256)  $$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --quiet; \
	  mv "$$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@
	@echo "ONNX Runtime $(ORT_VERSION) -> $@"

# libjpeg-turbo headers for the fast JPEG path (cgo). Installed from Debian if missing.
.PHONY: jpeg-dev
jpeg-dev:
	@test -f /usr/include/jpeglib.h || test -f /usr/include/x86_64-linux-gnu/jpeglib.h || \
	  $(call apt_install,libjpeg62-turbo-dev)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# apt-get install, refreshing the package index first only if that is needed.
apt_install = { echo "installing $(1) from Debian"; export DEBIAN_FRONTEND=noninteractive; \
  $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || { $(SUDO) apt-get update -q >/dev/null && \
  $(SUDO) apt-get install -y -q $(1) >/dev/null; }; }

build: deps
	$(GO) build -o bin/catsdogs .

# Serves the committed default model on :8080. Auth is OFF unless you pass the
# OAUTH2_* settings (see README): AUTH_DISABLED defaults to true only here, and
# only when no issuer is configured.
run: build
	@if [ -z "$${OAUTH2_ISSUER:-}" ]; then export AUTH_DISABLED=$${AUTH_DISABLED:-true}; fi; ./bin/catsdogs

# ---- tests -------------------------------------------------------------------
# `make test` is what README and CI (.ci/run) run: static checks, a smoke run of
# the training pipeline (its ONNX must load and match Go preprocessing), unit
# tests, parity + served accuracy of the default model, end-to-end tests
# against the built binary with a real OIDC issuer over HTTP.
SMOKE := build/smoke
test: deps train-deps docs-check vet smoke-train
	CATSDOGS_SMOKE_EXPORT=$(CURDIR)/$(SMOKE)/export $(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./model/

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# PyTorch etc. come from Debian (no PyPI here). Installed only if missing.
train-deps:
	@$(PYTHON) -c 'import torch, torchvision, PIL' 2>/dev/null || \
	  $(call apt_install,python3-torch python3-torchvision python3-pil)

# A tiny, fast run of the real pipeline: 8 images per class and split, 1 epoch.
smoke-train: train-deps
	@rm -rf $(SMOKE) && mkdir -p $(dir $(SMOKE))
	$(PYTHON) model/training/train.py --data $(DATA) --out $(SMOKE) --export $(SMOKE)/export \
	  --limit 8 --epochs 1 --batch 8 --eval-sizes 96,128 --parity-per-class 2 > $(SMOKE).log 2>&1 || { cat $(SMOKE).log; exit 1; }
	@tail -n 3 $(SMOKE).log

# ---- the default model -------------------------------------------------------
# Retrains from scratch and overwrites resources/ (ONNX, MODEL.md, parity.json,
# metrics.json). Resumable: rerun the same command after an interruption.
TRAIN_OUT ?= build/train/default
train: train-deps
	@mkdir -p $(TRAIN_OUT)
	$(PYTHON) model/training/train.py --data $(DATA) --out $(TRAIN_OUT) --export resources 2>&1 | tee -a $(TRAIN_OUT)/train.log

# Swagger docs are generated from the annotations in main.go and api/ and committed.
$(SWAG):
	$(GO) install github.com/swaggo/swag/cmd/swag@$(SWAG_VERSION)

SWAG_FLAGS := --parseDependency=false --parseInternal -g main.go --outputTypes go,json,yaml

docs: $(SWAG)
	$(SWAG) fmt -g main.go >/dev/null
	$(SWAG) init $(SWAG_FLAGS) -o docs >/dev/null

# CI fails when the committed docs/ no longer match the code.
docs-check: $(SWAG)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(SWAG) init $(SWAG_FLAGS) -o "$$tmp/docs" >/dev/null; \
	  for f in docs.go swagger.json swagger.yaml; do \
	    diff -q "$$tmp/docs/$$f" docs/$$f >/dev/null || { echo "docs/$$f is stale: run 'make docs' and commit"; exit 1; }; \
	  done; echo "docs/ up to date"

# ---- performance -------------------------------------------------------------
# Go benchmarks + HTTP load test (auth on) + capacity floor, printed as one table.
bench: build
	$(GO) build -o bin/loadtest ./tests/loadtest
	$(GO) run ./tests/bench -data $(DATA)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin build
