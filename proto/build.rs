//! Generates the tonic/prost code for `proto/dlocker/v1/*.proto` with a vendored `protoc`, so a
//! fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "proto/dlocker/v1/trustee.proto",
        "proto/dlocker/v1/locker.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // The `connect` constructors need tonic's transport, which the wasm build leaves out.
    let transport = std::env::var_os("CARGO_FEATURE_TRANSPORT").is_some();
    tonic_prost_build::configure()
        .build_transport(transport)
        .file_descriptor_set_path(out_dir.join("dlocker_descriptor.bin"))
        .compile_with_config(config, &files, &["proto"])?;
    Ok(())
}
