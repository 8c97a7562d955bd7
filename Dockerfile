# kdrain (the command and the controller) as a static binary on a minimal non-root base.
# Not built on the development machines (no registry access there); see deploy/controller/.
#   docker build -t kdrain:dev .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kdrain-cli --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/kdrain /kdrain

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /kdrain /kdrain
USER 65532:65532
ENTRYPOINT ["/kdrain"]
CMD ["controller"]
