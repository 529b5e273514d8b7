# syntax=docker/dockerfile:1
#
# Slipway's images for people who build with Docker. Two targets:
#
#   docker build --target go   --build-arg VERSION=1.2.3 -t ghcr.io/slipwayci/slipway:go .
#   docker build --target slim --build-arg VERSION=1.2.3 -t ghcr.io/slipwayci/slipway .
#
# go:   the Go toolchain and every slipway binary, for slipway build and the
#       source scans (govulncheck and gosec need a compiler).
# slim: the binaries on a small base, for image, push, promote and image
#       scans, which never compile anything.
#
# Slipway's own release image is made by slipway itself (scripts/dogfood.sh,
# .github/workflows/release.yml); this file is the Docker route to the same
# binaries.

ARG GO_VERSION=1.26

# The compiler runs on the builder's own platform and cross-compiles for the
# target: no emulation, and one module download for every platform.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd cmd
COPY internal internal
ARG TARGETOS TARGETARCH VERSION
# -trimpath and CGO_ENABLED=0 as slipway build does: no build path and no C
# library in the binaries. GOEXPERIMENT=jsonv2: slipway-scan links trivy,
# which needs it. The build context has no .git, hence -buildvcs=false and
# the version given as a build argument.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOEXPERIMENT=jsonv2 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/slipwayci/slipway/internal/version.stamped=${VERSION}" \
      -o /out/ ./cmd/...

FROM golang:${GO_VERSION} AS go
# The dispatcher finds its steps next to itself in /usr/local/bin.
COPY --from=build /out/ /usr/local/bin/
CMD ["slipway", "--help"]

# Alpine rather than distroless or busybox: GitLab's docker executor runs a
# job's script: with sh, so the image needs a shell, and push, promote and
# registry bases need CA certificates to speak TLS. Alpine has both (busybox
# sh and ca-certificates-bundle) in about 8 MB; busybox has no CA bundle and
# no package manager to add one. The binaries are static, so musl is never
# used. git is left out: without it slipway takes the commit from the CI
# platform's variables (CI_COMMIT_SHA, GITHUB_SHA).
FROM alpine:3.22 AS slim
COPY --from=build /out/ /usr/local/bin/
CMD ["slipway", "--help"]
