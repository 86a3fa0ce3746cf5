//! Generates the gRPC client and server of the ODF engine protocol (`proto/engine.proto`) with
//! tonic's manual builder, so that no `protoc` is needed to build Weir.

fn method(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::Method {
    tonic_build::manual::Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::engine::grpc::proto::{input}"))
        .output_type(format!("crate::engine::grpc::proto::{output}"))
        .codec_path("tonic_prost::ProstCodec")
        .server_streaming()
        .build()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let service = tonic_build::manual::Service::builder()
        .name("Engine")
        .package("engine")
        .method(method(
            "execute_raw_query",
            "ExecuteRawQuery",
            "RawQueryRequest",
            "RawQueryResponse",
        ))
        .method(method(
            "execute_transform",
            "ExecuteTransform",
            "TransformRequest",
            "TransformResponse",
        ))
        .build();
    tonic_build::manual::Builder::new().compile(&[service]);
}
