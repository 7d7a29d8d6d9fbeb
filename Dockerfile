# syntax=docker/dockerfile:1
#
# Images for the Assoliment services, one target per binary:
#   docker build --target ingest    -t assoliment/ingest .
#   docker build --target evaluator -t assoliment/evaluator .
#   docker build --target gateway   -t assoliment/gateway .
#   docker build --target simulator -t assoliment/simulator .
#   docker build --target kpictl    -t assoliment/kpictl .   (also the default)
# Binaries are static (CGO_ENABLED=0) and built in workspace mode from go.work.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION}-bookworm AS source
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-trimpath
COPY go.work go.work.sum* ./
COPY services/ ./services/

# One build stage per binary: BuildKit builds only what the chosen target
# needs, and the module and build caches are shared between them.
FROM source AS build-ingest
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/ingest ./services/ingest/cmd/ingest

FROM source AS build-evaluator
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/evaluator ./services/evaluator/cmd/evaluator

FROM source AS build-gateway
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/gateway ./services/gateway/cmd/gateway

FROM source AS build-simulator
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/simulator ./services/simulator/cmd/simulator

FROM source AS build-kpictl
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/kpictl ./services/kpictl/cmd/kpictl

# Runtime: Alpine rather than distroless so that container health checks can
# use busybox wget/nc; the services run as an unprivileged user.
FROM alpine:${ALPINE_VERSION} AS runtime
RUN apk add --no-cache ca-certificates tzdata \
    && adduser -D -H -u 65532 -s /sbin/nologin assoliment
USER 65532:65532

FROM runtime AS ingest
COPY --from=build-ingest /out/ingest /usr/local/bin/ingest
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/ingest"]

FROM runtime AS evaluator
COPY --from=build-evaluator /out/evaluator /usr/local/bin/evaluator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/evaluator"]

FROM runtime AS gateway
COPY --from=build-gateway /out/gateway /usr/local/bin/gateway
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS simulator
COPY --from=build-simulator /out/simulator /usr/local/bin/simulator
ENTRYPOINT ["/usr/local/bin/simulator"]

FROM runtime AS kpictl
COPY --from=build-kpictl /out/kpictl /usr/local/bin/kpictl
ENTRYPOINT ["/usr/local/bin/kpictl"]
