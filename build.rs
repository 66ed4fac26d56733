//! Build-time code generation:
//! - the gRPC client (and a server, used by tests' fake GCS) for the subset of
//!   Ray's protos in `proto/`, with a vendored `protoc`, so no system protobuf
//!   compiler is needed;
//! - the parsed form of the handlebars templates in `templates/`
//!   (`build/compile_templates.rs`), so `render` does not parse them per run;
//! - the chart's `values.yaml` and `Chart.yaml` as JSON (`build/chart_json.rs`).

#[path = "build/chart_json.rs"]
mod chart_json;
#[path = "build/compile_templates.rs"]
mod compile_templates;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A position-dependent executable, like Go's default (helm, kubectl): the
    // loader then applies no relocations and copies no pages at start-up,
    // which was a fifth of a `render` run and half a megabyte resident.
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=build");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    compile_templates::generate(std::path::Path::new("templates"), &out.join("templates.rs"))?;
    println!("cargo:rerun-if-changed=charts/ray/values.yaml");
    println!("cargo:rerun-if-changed=charts/ray/Chart.yaml");
    chart_json::generate(std::path::Path::new("charts/ray"), &out)?;

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
