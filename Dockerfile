# Multi-stage build: cgo builder (ONNX Runtime + libjpeg-turbo), slim non-root runtime.
# Build: docker build -t catsdogs .    Run: see README ("Docker").

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjpeg62-turbo-dev npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not in the build context: pass the version and commit in, e.g.
# --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg COMMIT=$(git rev-parse HEAD)
ARG VERSION=dev
ARG COMMIT=
# Fetches the pinned, sha256-checked ONNX Runtime library and the Swagger UI
# and ReDoc bundles (compiled into the binary) with `npm pack` (npm's
# configured registry; the packages' install scripts never run).
RUN make ort web-assets \
 && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/catsdogs . \
 && cp third_party/onnxruntime-*/libonnxruntime.so /out/libonnxruntime.so

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjpeg62-turbo ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out/catsdogs /app/catsdogs
COPY --from=build /out/libonnxruntime.so /app/lib/libonnxruntime.so
COPY resources/ /app/resources/
ENV PORT=8080 \
    ONNXRUNTIME_LIB=/app/lib/libonnxruntime.so
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/app/catsdogs", "healthcheck"]
ENTRYPOINT ["/app/catsdogs"]
