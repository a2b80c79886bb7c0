//! Generates the Rust code of every .proto here with protox, a pure-Rust
//! compiler, so no protoc needs installing.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "chat4all/v1/delivery.proto",
        "chat4all/v1/channel.proto",
        "chat4all/v1/events.proto",
        "chat4all/v1/messaging.proto",
        "chat4all/v1/store.proto",
        "chat4all/v1/connector.proto",
        "chat4all/bench/v1/echo.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // compile_fds ignores file_descriptor_set_path: reflection needs the set
    // written by hand.
    std::fs::write(
        out.join("chat4all_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
