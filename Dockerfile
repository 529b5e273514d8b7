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

# The bases, pinned by digest with their tag beside it for the reader;
# scripts/pin-images.sh resolves them again, and the release refuses any
# that is not pinned. Override with --build-arg GO_IMAGE=… to try another.
ARG GO_IMAGE=golang:1.26@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647
ARG ALPINE_IMAGE=alpine:3.22@sha256:14358309a308569c32bdc37e2e0e9694be33a9d99e68afb0f5ff33cc1f695dce

# The compiler runs on the builder's own platform and cross-compiles for the
# target: no emulation, and one module download for every platform.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
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

FROM ${GO_IMAGE} AS go
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
FROM ${ALPINE_IMAGE} AS slim
COPY --from=build /out/ /usr/local/bin/
CMD ["slipway", "--help"]
