# catsdogs — everything a fresh machine needs goes through this file.
#   make run    build and serve the committed default model on :8080 (auth off, see README)
#   make test   unit + end-to-end tests (real ONNX Runtime, real OIDC issuer over HTTP)
#   make bench  Go benchmarks + HTTP load test + the capacity floor, in one table
#   make train  retrain the default model from ../shared/datasets/pets (CPU or CUDA)
# The full dataset is optional for `make test`: see DATA and REQUIRE_DATASET below.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
PYTHON    ?= /usr/bin/python3
# The full pets dataset (train/ val/ test/, each with cat/ dog/ other/).
DATA      ?= ../shared/datasets/pets
# Real photos committed with the repository, a byte-identical subset of the
# dataset in the same layout: the smoke run, unit and end-to-end tests use
# them, so `make test` passes on a bare clone.
FIXTURES  := tests/testdata/images
# Photos of people, all `other` (optional: training goes on without them).
PEOPLE    ?= $(DATA)/../people
# The ImageNet-pretrained backbone the default model is fine-tuned from
# (model/training/pretrained.py converts it). Without it the smoke run below
# trains a randomly initialised backbone and says so.
PRETRAINED ?= $(DATA)/../../pretrained/mobilenet_v2/mobilenet_v2_quantized.pt
# 1 = a missing dataset fails `make test` instead of skipping the checks that
# need it (.ci/run sets this, so our CI never silently loses them).
REQUIRE_DATASET ?= 0
has_data  := test -d "$(DATA)/train" -a -d "$(DATA)/test"

# ONNX Runtime: onnxruntime_go v1.27 speaks C API 24, i.e. ORT 1.24.x. The Linux
# libraries ship inside the npm package onnxruntime-node (x64 and arm64); we take
# just the one for ORT_ARCH (Go's name; default: Go's target architecture), each
# checked against its own sha256, so no other architecture can slip in.
ORT_VERSION := 1.24.3
ifndef ORT_ARCH
ORT_ARCH := $(shell $(GO) env GOARCH)
endif
ORT_SHA256_amd64 := 92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
ORT_SHA256_arm64 := 33032cb5b91c12edbf028d7c69fa40a31848d66c0095448758af237d5e0b07db
ORT_NPM_ARCH_amd64 := x64
ORT_NPM_ARCH_arm64 := arm64
ORT_SHA256  := $(ORT_SHA256_$(ORT_ARCH))
ORT_NPM_LIB := package/bin/napi-v6/linux/$(ORT_NPM_ARCH_$(ORT_ARCH))/libonnxruntime.so.1
# amd64 keeps the folder it always had; another architecture gets its own.
ORT_DIR     := third_party/onnxruntime-$(ORT_VERSION)$(if $(filter-out amd64,$(ORT_ARCH)),-$(ORT_ARCH))
ORT_LIB     := $(ORT_DIR)/libonnxruntime.so
SWAG        := $(shell $(GO) env GOPATH)/bin/swag
SWAG_VERSION := v1.16.6

export CGO_ENABLED := 1

.PHONY: build run test bench train train-deps smoke-train card-bench quantize quantize-deps docs docs-check deps ort fmt vet clean need-data need-pretrained

deps: ort jpeg-dev web-assets

ort: $(ORT_LIB)
$(ORT_LIB):
	@test -n "$(ORT_SHA256)" || { echo "no ONNX Runtime library for linux/$(ORT_ARCH): onnxruntime-node ships amd64 and arm64" >&2; exit 1; }
	@mkdir -p $(ORT_DIR)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(call need_npm,ONNX Runtime); \
	  echo "fetching onnxruntime-node@$(ORT_VERSION) (linux/$(ORT_ARCH)) with npm pack (library only, no install scripts)"; \
	  (cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	  tar -xzf "$$tmp"/onnxruntime-node-$(ORT_VERSION).tgz -C "$$tmp" $(ORT_NPM_LIB); \
	  echo "$(ORT_SHA256)  $$tmp/$(ORT_NPM_LIB)" | sha256sum -c --quiet; \
	  mv "$$tmp"/$(ORT_NPM_LIB) $@
	@echo "ONNX Runtime $(ORT_VERSION) linux/$(ORT_ARCH) -> $@"

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

# npm fetches ONNX Runtime, the browser assets and the Node tools below.
need_npm = command -v npm >/dev/null || $(call apt_install,npm) || \
  { echo "npm is needed to fetch $(1) and could not be installed: install npm and rerun" >&2; exit 1; }

# Swagger UI (/docs) and ReDoc (/redoc) are compiled into the binary
# (api/web.go), so they work offline and load nothing from elsewhere. Their
# bundles come from the npm packages via `npm pack` (no install scripts),
# pinned by version and the package's sha256.
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_SHA256  := 1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
REDOC_VERSION      := 2.5.4
REDOC_SHA256       := 44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e
WEB_VENDOR := api/web/static/vendor
WEB_STAMP  := $(WEB_VENDOR)/.swagger-ui-$(SWAGGER_UI_VERSION)-redoc-$(REDOC_VERSION)-nologo
# ReDoc's "API docs by Redocly" footer loads a logo from the vendor's CDN,
# which the pages' CSP refuses (a console error, and a request that must not
# leave the machine). The one URL is replaced by an empty inline SVG.
REDOC_LOGO_URL := https://cdn.redoc.ly/redoc/logo-mini.svg
REDOC_LOGO_NONE := data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E
.PHONY: web-assets
web-assets: $(WEB_STAMP)
$(WEB_STAMP):
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; $(call need_npm,Swagger UI and ReDoc); \
	  echo "fetching swagger-ui-dist@$(SWAGGER_UI_VERSION) and redoc@$(REDOC_VERSION) with npm pack"; \
	  (cd "$$tmp" && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) redoc@$(REDOC_VERSION) >/dev/null); \
	  echo "$(SWAGGER_UI_SHA256)  $$tmp/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz" | sha256sum -c --quiet; \
	  echo "$(REDOC_SHA256)  $$tmp/redoc-$(REDOC_VERSION).tgz" | sha256sum -c --quiet; \
	  mkdir -p "$$tmp/s" "$$tmp/r"; \
	  tar -xzf "$$tmp"/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C "$$tmp/s" package/swagger-ui-bundle.js package/swagger-ui.css package/LICENSE; \
	  tar -xzf "$$tmp"/redoc-$(REDOC_VERSION).tgz -C "$$tmp/r" package/bundles/redoc.standalone.js package/LICENSE; \
	  rm -rf $(WEB_VENDOR) && mkdir -p $(WEB_VENDOR); \
	  mv "$$tmp"/s/package/swagger-ui-bundle.js "$$tmp"/s/package/swagger-ui.css $(WEB_VENDOR)/; \
	  mv "$$tmp"/s/package/LICENSE $(WEB_VENDOR)/LICENSE.swagger-ui; \
	  grep -qF '$(REDOC_LOGO_URL)' "$$tmp"/r/package/bundles/redoc.standalone.js; \
	  sed 's|$(REDOC_LOGO_URL)|$(REDOC_LOGO_NONE)|' "$$tmp"/r/package/bundles/redoc.standalone.js > $(WEB_VENDOR)/redoc.standalone.js; \
	  mv "$$tmp"/r/package/LICENSE $(WEB_VENDOR)/LICENSE.redoc; \
	  touch $@
	@echo "Swagger UI $(SWAGGER_UI_VERSION), ReDoc $(REDOC_VERSION) -> $(WEB_VENDOR)"

# Node tools `make test` runs: the OpenAPI linter, the Bruno CLI and Insomnia's
# importers, pinned, installed from npm into build/node (never globally).
# insomnia-importers is the last published form of the importer Insomnium
# forked (Insomnium keeps its copy in its own tree and publishes none): its
# OpenAPI 3 importer differs from Insomnium's in details (template syntax,
# environment names, a Content-Type header), not in the host, URLs, auth or
# form fields it imports.
REDOCLY_VERSION := 1.34.20
BRUNO_VERSION   := 4.1.0
INSOMNIA_IMPORTERS_VERSION := 3.6.0
NODE_TOOLS := build/node
REDOCLY    := $(NODE_TOOLS)/node_modules/.bin/redocly
BRU        := $(NODE_TOOLS)/node_modules/.bin/bru
INSOMNIA_IMPORTERS := $(NODE_TOOLS)/node_modules/insomnia-importers
# Offline and quiet: no telemetry, no update check.
REDOCLY_ENV := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
NODE_STAMP := $(NODE_TOOLS)/.redocly-$(REDOCLY_VERSION)-bruno-$(BRUNO_VERSION)-insomnia-importers-$(INSOMNIA_IMPORTERS_VERSION)
.PHONY: node-tools
node-tools: $(NODE_STAMP)
$(NODE_STAMP):
	@$(call need_npm,the Redocly and Bruno CLIs and Insomnia's importers); mkdir -p $(NODE_TOOLS); \
	  echo "installing @redocly/cli@$(REDOCLY_VERSION) @usebruno/cli@$(BRUNO_VERSION) insomnia-importers@$(INSOMNIA_IMPORTERS_VERSION) into $(NODE_TOOLS) with npm"; \
	  npm install --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error \
	    @redocly/cli@$(REDOCLY_VERSION) @usebruno/cli@$(BRUNO_VERSION) insomnia-importers@$(INSOMNIA_IMPORTERS_VERSION) >/dev/null; \
	  touch $@

# The version /version, the start log line and catsdogs_build_info report
# (the commit comes from Go's own VCS stamp).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
# The commit also comes from Go's VCS stamp, but GOFLAGS=-buildvcs=false
# (set on some machines) turns that off: pass it explicitly too.
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/catsdogs .

# Serves the committed default model on :8080. Auth is OFF unless you pass the
# OAUTH2_* settings (see README): AUTH_DISABLED defaults to true only here, and
# only when no issuer is configured.
run: build
	@if [ -z "$${OAUTH2_ISSUER:-}" ]; then export AUTH_DISABLED=$${AUTH_DISABLED:-true}; fi; ./bin/catsdogs

# Serves the default model with auth ON against a throwaway OpenID provider on
# loopback (tools/devissuer), and prints an access token to paste into the
# page at /, Swagger UI's Authorize box, Bruno or curl. Local use only.
.PHONY: dev
# Built, not `go run`: go run exits 1 when Ctrl-C reaches it, so make would
# report an error for a normal stop.
dev: build
	$(GO) build -o bin/devissuer ./tools/devissuer
	./bin/devissuer -- ./bin/catsdogs

# ---- tests -------------------------------------------------------------------
# `make test` is what README and CI (.ci/run) run: static checks, a smoke run of
# the training pipeline (its ONNX must load and match Go preprocessing), unit
# tests, parity + served accuracy of the default model, end-to-end tests
# against the built binary with a real OIDC issuer over HTTP. The fuzz
# targets' seed corpora run as plain tests; the fuzzing itself (fuzz-short,
# below: minutes, mostly building instrumented binaries) is CI's (.ci/run).
# Checks that need the full dataset (served accuracy over its whole test/
# split, parity images that are not among the fixtures) run when DATA holds it
# and are skipped otherwise, with one line saying so.
SMOKE := build/smoke
test: export CATSDOGS_DATA := $(abspath $(DATA))
test: export CATSDOGS_REQUIRE_DATA := $(REQUIRE_DATASET)
test: export CATSDOGS_BRU := $(CURDIR)/$(BRU)
test: export CATSDOGS_INSOMNIA_IMPORTERS := $(CURDIR)/$(INSOMNIA_IMPORTERS)
test: export CATSDOGS_REQUIRE_BROWSER := 1
test: $(if $(filter 1,$(REQUIRE_DATASET)),need-data) deps train-deps browser client-deps node-tools docs-check vet smoke-train
	CATSDOGS_SMOKE_EXPORT=$(CURDIR)/$(SMOKE)/export $(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./model/...
	@$(has_data) || echo "SKIPPED (no dataset at DATA=$(DATA)): served accuracy over the dataset's test/ split and parity images not in $(FIXTURES); run them with: make test DATA=/path/to/pets"

# The README's Python and JavaScript examples run in tests/readme_e2e_test.go:
# requests from Debian, Node from npm's own dependency.
.PHONY: client-deps
client-deps:
	@$(PYTHON) -c 'import requests' 2>/dev/null || $(call apt_install,python3-requests)
	@command -v node >/dev/null || $(call need_npm,Node.js for the README's JavaScript example)

# The browser tests (tests/browser_e2e_test.go) drive Debian's chromium.
.PHONY: browser
browser:
	@command -v chromium >/dev/null || $(call apt_install,chromium)

need-pretrained:
	@test -f "$(PRETRAINED)" || { echo "no pretrained backbone at PRETRAINED=$(PRETRAINED) (see model/training/pretrained.py)" >&2; exit 1; }

# Fails with a plain message unless DATA holds the dataset.
need-data:
	@$(has_data) || { echo "no dataset at DATA=$(DATA): pass DATA=/path/to/pets (folders train/ val/ test/, each with cat/ dog/ other/)" >&2; exit 1; }

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# PyTorch etc. come from Debian. Installed only if missing.
train-deps:
	@$(PYTHON) -c 'import torch, torchvision, PIL' 2>/dev/null || \
	  $(call apt_install,python3-torch python3-torchvision python3-pil)

# A tiny, fast run of the real pipeline: 8 images per class and split, 2 epochs
# (head alone, then fine-tuning), on the committed fixtures. With the pretrained
# file (../shared) it also converts and checks the backbone; without it the
# backbone is randomly initialised, and the log's first lines say so.
smoke-train: train-deps
	@rm -rf $(SMOKE) && mkdir -p $(dir $(SMOKE))
	$(PYTHON) model/training/train.py --data $(FIXTURES) --out $(SMOKE) --export $(SMOKE)/export \
	  --pretrained $$(test -f "$(PRETRAINED)" && echo "$(PRETRAINED)" || echo none) --people "" \
	  --limit 8 --epochs 2 --batch 8 --eval-sizes 96,128 --parity-per-class 2 > $(SMOKE).log 2>&1 || { cat $(SMOKE).log; exit 1; }
	@grep -m1 '^backbone:' $(SMOKE).log; tail -n 3 $(SMOKE).log

# ---- the default model -------------------------------------------------------
# Retrains from scratch and overwrites resources/ (ONNX, MODEL.md, parity.json,
# metrics.json). Long runs go in stints: rerun the same command after an
# interruption (at most one epoch is lost; the resume is exact), or pass
# STINT_MINUTES=N to stop on purpose after N minutes. Checkpoints live outside
# the checkout (CATSDOGS_TRAIN_DIR, default ~/.cache/catsdogs/train) so `make
# clean` or a fresh clone keeps them. nice keeps the machine usable meanwhile.
TRAIN_DIR     ?= $(or $(CATSDOGS_TRAIN_DIR),$(HOME)/.cache/catsdogs/train)
TRAIN_OUT     ?= $(TRAIN_DIR)/catsdogs-mobilenet-v4
STINT_MINUTES ?= 0
TRAIN_ARGS    ?=
train: need-data need-pretrained train-deps
	@mkdir -p $(TRAIN_OUT)
	nice -n 10 $(PYTHON) model/training/train.py --data $(DATA) --people $(PEOPLE) --pretrained $(PRETRAINED) \
	  --out $(TRAIN_OUT) --export resources --stint-minutes $(STINT_MINUTES) $(TRAIN_ARGS) 2>&1 | tee -a $(TRAIN_OUT)/train.log

# Inference time of the default model next to the previous default (from
# git: PREVIOUS_REF's copy of the file metrics.json's "previous" names), in one
# benchmark run, into resources/metrics.json and the card.
PREVIOUS_REF ?= HEAD~1
card-bench: ort train-deps
	@mkdir -p build
	@prev=$$($(PYTHON) -c 'import json; m = json.load(open("resources/metrics.json")); p = m.get("previous") or {}; print(p.get("onnx_file") or (p["name"] + ".onnx" if p.get("name") else ""))'); \
	  test -n "$$prev" || { echo "resources/metrics.json names no previous model" >&2; exit 1; }; \
	  git show $(PREVIOUS_REF):resources/$$prev > build/previous.onnx
	PYTHONPATH=model/training $(PYTHON) model/training/card_bench.py --export resources --previous build/previous.onnx

# ---- int8 ------------------------------------------------------------------
# A static int8 copy of QUANT_MODEL (default: the default model) beside it,
# QUANT_OUT: calibrated on train photos through the service's own
# preprocessing, its accuracy on val/ and test/ measured through the Go
# serving path and stamped into its metadata (the service reads it: see
# docs/MODELS.md, "int8"), both models timed, and the card updated.
# QUANT_SHIPPED=0 for a model whose int8 copy is measured, not committed (v3).
DEFAULT_MODEL := $(shell sed -n 's/^const DefaultModel = "\(.*\)"/\1/p' resources/resources.go)
QUANT_MODEL   ?= $(DEFAULT_MODEL)
QUANT_OUT     ?= $(QUANT_MODEL:.onnx=-int8.onnx)
QUANT_SHIPPED ?= 1
QUANT_DIR     := build/quant/$(notdir $(basename $(QUANT_MODEL)))
CALIB_PER_DIR ?= 64
calib_dirs     = $(DATA)/train/cat,$(DATA)/train/dog,$(DATA)/train/other$(if $(wildcard $(PEOPLE)/train/other),$(comma)$(PEOPLE)/train/other)
comma := ,
quantize-deps: train-deps
	@$(PYTHON) -c 'import onnx' 2>/dev/null || $(call apt_install,python3-onnx)
quantize: need-data ort quantize-deps
	@mkdir -p $(QUANT_DIR)
	$(PYTHON) model/training/quantize.py probe --model $(QUANT_MODEL) --out $(QUANT_DIR)/probe.onnx
	$(GO) run ./tools/calibrate -probe $(QUANT_DIR)/probe.onnx -out $(QUANT_DIR)/ranges.json \
	  -images $(calib_dirs) -per-dir $(CALIB_PER_DIR)
	$(PYTHON) model/training/quantize.py build --model $(QUANT_MODEL) --ranges $(QUANT_DIR)/ranges.json --out $(QUANT_OUT)
	$(GO) build -o $(QUANT_DIR)/evaluate ./tools/evaluate
	@# val/ holds the people photos as training's does; test/ is the card's (people apart).
	@for split in val test; do \
	  extra=; [ $$split = val ] && [ -d $(PEOPLE)/val ] && extra="-extra $(PEOPLE)"; \
	  for m in fp32:$(QUANT_MODEL) int8:$(QUANT_OUT); do \
	    $(QUANT_DIR)/evaluate -model $${m#*:} -data $(DATA) -split $$split $$extra \
	      > $(QUANT_DIR)/$${m%%:*}-$$split.json 2>$(QUANT_DIR)/evaluate.log || \
	      { cat $(QUANT_DIR)/evaluate.log; exit 1; }; \
	  done; done
	PYTHONPATH=model/training $(PYTHON) model/training/quantize.py record --model $(QUANT_MODEL) --int8 $(QUANT_OUT) \
	  --ranges $(QUANT_DIR)/ranges.json --evals $(QUANT_DIR) $(if $(filter 1,$(QUANT_SHIPPED)),--shipped)

# The API description is generated from the swag annotations in main.go and
# api/ (Swagger 2.0, docs/swagger.json), then converted to OpenAPI 3.0 and
# completed by tools/openapi (docs/openapi.json, .yaml: what the service
# serves). All three are committed.
$(SWAG):
	$(GO) install github.com/swaggo/swag/cmd/swag@$(SWAG_VERSION)

SWAG_FLAGS := --parseDependency=false --parseInternal -g main.go --outputTypes json
DOCS_FILES := swagger.json openapi.json openapi.yaml

docs: $(SWAG)
	$(SWAG) fmt -g main.go --exclude oip/inferencepb >/dev/null
	$(SWAG) init $(SWAG_FLAGS) -o docs >/dev/null
	$(GO) run ./tools/openapi -in docs/swagger.json -out docs

# CI fails when the committed docs/ no longer match the code, or the OpenAPI
# document breaks Redocly's recommended rules (tools/openapi/redocly.yaml).
docs-check: $(SWAG) node-tools
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(SWAG) init $(SWAG_FLAGS) -o "$$tmp" >/dev/null; \
	  $(GO) run ./tools/openapi -in "$$tmp/swagger.json" -out "$$tmp"; \
	  for f in $(DOCS_FILES); do \
	    diff -q "$$tmp/$$f" docs/$$f >/dev/null || { echo "docs/$$f is stale: run 'make docs' and commit"; exit 1; }; \
	  done; echo "docs/ up to date"
	$(REDOCLY_ENV) $(REDOCLY) lint --config tools/openapi/redocly.yaml docs/openapi.json

# ---- performance -------------------------------------------------------------
# Go benchmarks + capacity floor + HTTP load (auth on; batching on and off;
# /predict) next to the two peers on the same model, printed as tables with
# issue 13's targets (tools/bench). Upload photos are made from DATA's test/
# photos, else from the fixtures. BENCH_ARGS e.g. "-rounds 1 -d 5s -peers=false".
BENCH_ARGS ?=
bench: build bench-peers
	$(GO) build -o bin/loadtest ./tools/loadtest
	@$(has_data) || echo "bench: no dataset at DATA=$(DATA); making upload photos from $(FIXTURES)"
	$(GO) run ./tools/bench -data $$($(has_data) && echo "$(DATA)" || echo "$(FIXTURES)") $(BENCH_ARGS)

# The peers make bench compares the service with (issue 13, tools/bench/peers.go):
# fastify + sharp + onnxruntime-node, whose packages npm ci installs into
# build/peers/fastify from the committed lock file (again only when it changes or
# node_modules is gone; no install scripts, so onnxruntime-node fetches no CUDA
# libraries), and FastAPI + uvicorn + OpenCV from Debian for /usr/bin/python3
# (uvloop and httptools too: what uvicorn[standard] adds for speed; onnx to
# rewrite a model's Clip nodes into the form OpenCV 4.6 reads).
PEER_SRC      := tools/bench/peers
PEER_FASTIFY  := build/peers/fastify
PEER_NPM_DONE := $(PEER_FASTIFY)/node_modules/.catsdogs-npm-ci
.PHONY: bench-peers
bench-peers: $(PEER_NPM_DONE)
	@/usr/bin/python3 -c 'import cv2, fastapi, uvicorn, multipart, uvloop, httptools, onnx' 2>/dev/null || \
	  $(call apt_install,python3-fastapi python3-uvicorn python3-opencv python3-multipart python3-uvloop python3-httptools python3-onnx)
$(PEER_NPM_DONE): $(PEER_SRC)/fastify/package.json $(PEER_SRC)/fastify/package-lock.json
	@$(call need_npm,the fastify peer); mkdir -p $(PEER_FASTIFY); \
	  cp $^ $(PEER_FASTIFY)/; \
	  echo "installing the fastify peer's packages into $(PEER_FASTIFY) with npm ci"; \
	  (cd $(PEER_FASTIFY) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); \
	  touch $@

# Mixed, partly hostile traffic against the real binary with auth on (issue 7):
# prints status counts, p50/p99 per kind and RSS every 30 s; fails on a 5xx
# other than a deliberate 503, a dead process or RSS growth. docs/OPERATING.md, "Soak".
SOAK_DURATION ?= 10m
.PHONY: soak
soak: build
	$(GO) run ./tools/soak -d $(SOAK_DURATION) -out build/soak

# The gRPC stubs of the Open Inference Protocol (oip/inferencepb), generated
# from the vendored oip/kserve/grpc_predict_v2.proto and committed, so a build
# needs neither protoc nor its plugins. protoc comes from Debian, the plugins
# from the Go module proxy, pinned. The .proto names no go_package: M says it.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
PB_OPTS   := module=catsdogs,Mgrpc_predict_v2.proto=catsdogs/oip/inferencepb
.PHONY: proto
proto:
	@command -v protoc >/dev/null || $(call apt_install,protobuf-compiler)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$(GOBIN_DIR):$$PATH" protoc -I oip/kserve --go_out=. --go_opt=$(PB_OPTS) \
	  --go-grpc_out=. --go-grpc_opt=$(PB_OPTS) oip/kserve/grpc_predict_v2.proto

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin build

# ---- fuzzing -----------------------------------------------------------------
# Short native fuzz runs of every `func Fuzz*` in the repository (issue 7:
# decoding, multipart reading, claims, EXIF orientation), found by grep so a
# new target is fuzzed without editing this list. .ci/run runs this after
# `make test` (which leaves it out: it took 230 s of a loaded 2-core
# machine's 530 s, building the instrumented binaries), FUZZTIME each. It is a count of executions, not a duration: Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" when a
# duration ends while a CPU-starved worker is mid-input (golang/go#75804,
# fixed in 1.27; seen here with two make tests at once). 20000 executions take
# 1-6 s per target on the 2-core VM, longer under load, never a false failure.
# The committed seeds in */testdata/fuzz also run as plain tests in `go test`;
# a failing input found here is written there.
FUZZTIME ?= 20000x
.PHONY: fuzz-short
fuzz-short:
	@targets=$$(grep -rHo --include='*_test.go' --exclude-dir=third_party --exclude-dir=build '^func Fuzz[A-Za-z0-9_]*' . | sed 's/:func /:/' || true); \
	  test -n "$$targets" || { echo "fuzz-short: no fuzz targets found" >&2; exit 1; }; \
	  for t in $$targets; do \
	    file=$${t%%:*}; name=$${t##*:}; \
	    echo "fuzz $$name ($$(dirname $$file), $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$(dirname $$file)/"; \
	  done

# ---- container image and Kubernetes --------------------------------------------
# `make image` builds the Dockerfile with podman (buildah) into local storage;
# `make image-test` runs it as a user would (tests/image: auth ON against a
# local issuer, non-root, HEALTHCHECK, SIGTERM drain) and prints its size. On a
# machine without a registry, tools/image/base-images.sh first makes the base
# images FROM names (mmdebstrap, once). podman, buildah, mmdebstrap and runc
# come from Debian if missing; tools/image/containers.conf holds the podman
# settings a sandbox without systemd needs (set CONTAINERS_CONF to use yours).
# .ci/run runs both tests after `make test`.
IMAGE  ?= catsdogs:$(VERSION)
PODMAN ?= podman
PODMAN_BUILD_FLAGS ?= --pull=never --network=host
CONTAINERS_CONF ?= $(CURDIR)/tools/image/containers.conf
# The build stage trusts this machine's CA bundle (a TLS-inspecting proxy's
# CA among them) as a build secret; the runtime image never holds it.
CA_BUNDLE ?= $(firstword $(wildcard /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt))
.PHONY: podman image image-test
podman:
	@command -v $(PODMAN) >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null || \
	  $(call apt_install,podman buildah mmdebstrap uidmap runc)
image: export CONTAINERS_CONF := $(CONTAINERS_CONF)
image: podman
	@PODMAN=$(PODMAN) nice tools/image/base-images.sh
	@start=$$SECONDS; nice $(PODMAN) build $(PODMAN_BUILD_FLAGS) --format docker \
	  $(if $(CA_BUNDLE),--secret id=cacerts$(comma)src=$(CA_BUNDLE)) \
	  --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) . ; \
	  echo "built $(IMAGE) in $$((SECONDS - start)) s"
comma := ,
image-test: export CONTAINERS_CONF := $(CONTAINERS_CONF)
image-test: image
	CATSDOGS_IMAGE=$(IMAGE) PODMAN=$(PODMAN) $(GO) test -count=1 -v -run '^TestImage$$' ./tests/image/
	@$(PODMAN) image inspect --format '{{.Size}}' $(IMAGE) | awk '{ printf "image $(IMAGE): %.0f MB\n", $$1 / 1e6 }'

# `make k8s-test` checks deploy/ (the Helm chart, the KServe example) offline
# with real tools, built at pinned versions into build/tools/bin (never
# globally): helm lint --strict; helm template | kubeconform -strict against
# schemas made from Kubernetes' own OpenAPI document (the k8s.io/kubernetes
# module) and the CRDs; a strict server-side dry run against kube-apiserver +
# etcd on loopback (tools/k8s: its own Go module, so none of this enters the
# service's dependencies). The ServiceMonitor CRD is generated by
# controller-gen from the Prometheus Operator's API types, as upstream does;
# KServe's CRD comes from ../shared/kserve (its Go module is not served).
# The first run builds kube-apiserver (~8 min on 2 cores); later runs take
# seconds. tools/k8s/k8s-test.sh has the steps.
HELM_VERSION        := v4.3.2
KUBECONFORM_VERSION := v0.8.0
K8S_TOOLS  := build/tools/bin
K8S_OUT    := build/k8s
KSERVE_CRD ?= $(abspath ../shared/kserve/serving.kserve.io_inferenceservices.yaml)
K8S_MOD    := $(GO) -C tools/k8s
.PHONY: k8s-tools k8s-test
$(K8S_TOOLS)/helm:
	GOBIN=$(CURDIR)/$(K8S_TOOLS) nice $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
$(K8S_TOOLS)/kubeconform:
	GOBIN=$(CURDIR)/$(K8S_TOOLS) nice $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
# Rebuilt when tools/k8s changes (its go.mod pins every version).
$(K8S_TOOLS)/.k8s-module: tools/k8s/go.mod tools/k8s/go.sum $(wildcard tools/k8s/cmd/*/*.go)
	GOBIN=$(CURDIR)/$(K8S_TOOLS) nice $(K8S_MOD) install ./cmd/... \
	  k8s.io/kubernetes/cmd/kube-apiserver sigs.k8s.io/controller-tools/cmd/controller-gen
	@touch $@
$(K8S_OUT)/crds/monitoring.coreos.com_servicemonitors.yaml: $(K8S_TOOLS)/.k8s-module
	cd tools/k8s && $(CURDIR)/$(K8S_TOOLS)/controller-gen crd:crdVersions=v1,maxDescLen=0,allowDangerousTypes=true \
	  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir=$(CURDIR)/$(K8S_OUT)/crds
k8s-tools: $(K8S_TOOLS)/helm $(K8S_TOOLS)/kubeconform $(K8S_TOOLS)/.k8s-module
k8s-test: k8s-tools $(K8S_OUT)/crds/monitoring.coreos.com_servicemonitors.yaml
	BIN=$(CURDIR)/$(K8S_TOOLS) OUT=$(CURDIR)/$(K8S_OUT) KSERVE_CRD=$(KSERVE_CRD) \
	  SERVICEMONITOR_CRD=$(CURDIR)/$(K8S_OUT)/crds/monitoring.coreos.com_servicemonitors.yaml \
	  OPENAPI=$$($(K8S_MOD) list -m -f '{{.Dir}}' k8s.io/kubernetes)/api/openapi-spec/swagger.json \
	  tools/k8s/k8s-test.sh

# ---- replicas behind a load balancer ------------------------------------------
# `make lb-test` runs 3 replicas of bin/catsdogs behind a real HAProxy on
# loopback (Debian's, installed if missing) under steady uploads, auth on, and
# fails unless a rolling restart loses no request and a SIGKILL costs at most
# the requests in flight on the killed replica (tools/lbtest; ~1 min; .ci/run
# runs it). `make lb-capacity` measures 1 and 2 replicas pinned to one core
# each behind it and checks the capacity model's prediction for 2 (~3 min, 2
# cores at least). docs/OPERATING.md, "Behind a load balancer" and "Capacity".
# LB_ARGS e.g. "-clients 8", or "-rounds 5 -d 30s" for lb-capacity.
LB_ARGS ?=
.PHONY: haproxy lb-test lb-capacity
haproxy:
	@PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v haproxy >/dev/null || $(call apt_install,haproxy)
lb-test: build haproxy
	$(GO) run ./tools/lbtest $(LB_ARGS)
lb-capacity: build haproxy
	$(GO) run ./tools/lbtest -capacity $(LB_ARGS)
