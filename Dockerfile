# syntax=docker/dockerfile:1
# The operator image, for users who build with Docker/BuildKit and push to a registry:
#
#   docker build -t rayproject/ray-operator:0.1.0 .
#
# Not built in this project's own environment (it has no Docker engine and no registry): there
# `make images` builds the same image as an OCI archive (hack/images/operator-image.sh) and
# imports it into the local nodes. Both lay the filesystem out with
# hack/images/operator-rootfs.sh, so they have the same files, user and entrypoint:
# /usr/local/bin/ray-operator, the loader and the libraries ldd lists, passwd/group with
# nonroot (65532:65532), no shell; runs with readOnlyRootFilesystem.

# The toolchain the project is developed with (Cargo.toml's rust-version is the minimum, 1.89).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && hack/images/operator-rootfs.sh target/release/ray-operator /out

FROM scratch
COPY --from=build /out/ /
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /
ENTRYPOINT ["ray-operator"]
