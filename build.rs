//! Generates the gRPC client (and a server, used by tests' fake GCS) for the
//! subset of Ray's protos in `proto/`. Uses a vendored `protoc`, so no system
//! protobuf compiler is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &["proto/ray_autoscaler.proto", "proto/ray_gcs.proto"],
            &["proto"],
        )?;
    Ok(())
}
