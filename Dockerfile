# Multi-stage build: cgo builder (ONNX Runtime + libjpeg-turbo), slim non-root runtime.
#   podman build --format docker -t catsdogs .     (or: docker build -t catsdogs .; `make image`)
# Multi-arch: linux/amd64 and linux/arm64 (the two onnxruntime-node ships),
# e.g. docker buildx build --platform linux/amd64,linux/arm64 .
# The builder runs on the target platform (emulated when it is not the
# host's), so cgo needs no cross compiler. Run it: docs/OPERATING.md, "Container image".

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjpeg62-turbo-dev npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Optional build secret "cacerts": a CA bundle to trust for HTTPS in this
# stage only (a machine behind a TLS-inspecting proxy passes its own, e.g.
# --secret id=cacerts,src=/etc/ssl/certs/ca-certificates.crt). The runtime
# image never sees it.
ENV CACERTS=/run/secrets/cacerts
COPY go.mod go.sum ./
RUN --mount=type=secret,id=cacerts \
    if [ -s "$CACERTS" ]; then export SSL_CERT_FILE="$CACERTS"; fi \
 && go mod download
COPY . .
# .git is not in the build context: pass the version and commit in, e.g.
# --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg COMMIT=$(git rev-parse HEAD)
ARG VERSION=dev
ARG COMMIT=
# Set by buildx, and by buildah given --platform, to the platform being built;
# empty otherwise (the legacy docker builder, podman 4.3 warns): then the
# builder's own architecture.
ARG TARGETARCH
# Fetches the pinned, sha256-checked ONNX Runtime library for the target
# architecture and the Swagger UI and ReDoc bundles (compiled into the binary)
# with `npm pack` (npm's configured registry; the packages' install scripts
# never run). It refuses to go on when the binary and the library are for
# different machines, rather than ship an image that cannot start. Go's build
# cache lives in a cache mount: rebuilds after a change are incremental, and
# no layer carries the cache (~450 MB each).
RUN --mount=type=secret,id=cacerts --mount=type=cache,target=/root/.cache/go-build \
    if [ -s "$CACERTS" ]; then export SSL_CERT_FILE="$CACERTS" NODE_EXTRA_CA_CERTS="$CACERTS"; fi \
 && goarch=$(go env GOARCH) \
 && if [ -n "$TARGETARCH" ] && [ "$TARGETARCH" != "$goarch" ]; then \
      echo "building for $TARGETARCH on a $goarch builder image: give the builder the target platform" >&2; exit 1; fi \
 && make ort web-assets ORT_ARCH="$goarch" \
 && CGO_ENABLED=1 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/catsdogs . \
 && cp third_party/onnxruntime-*/libonnxruntime.so /out/libonnxruntime.so \
 && bin=$(readelf -h /out/catsdogs | grep Machine) && lib=$(readelf -h /out/libonnxruntime.so | grep Machine) \
 && if [ "$bin" != "$lib" ]; then echo "ONNX Runtime library ($lib) does not match the binary ($bin)" >&2; exit 1; fi

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjpeg62-turbo ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# WORKDIR is the repository root's stand-in: the default MODEL_PATH is
# relative to it (resources.DefaultModel), so the model's file name is never
# written here.
WORKDIR /app
COPY --from=build /out/catsdogs /app/catsdogs
COPY --from=build /out/libonnxruntime.so /app/lib/libonnxruntime.so
COPY resources/ /app/resources/
ENV PORT=8080 \
    ONNXRUNTIME_LIB=/app/lib/libonnxruntime.so
ARG VERSION=dev
LABEL org.opencontainers.image.title="catsdogs" \
      org.opencontainers.image.description="Classifies images as Cat, Dog or Other over HTTP (ONNX Runtime)" \
      org.opencontainers.image.version="${VERSION}"
# A numeric user, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/app/catsdogs", "healthcheck"]
ENTRYPOINT ["/app/catsdogs"]
