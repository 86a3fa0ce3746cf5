//! The protobuf side of `proto/engine.proto`: four messages, each one `bytes flatbuffer = 1`,
//! and the generated `engine_client` / `engine_server` modules.

macro_rules! flatbuffer_message {
    ($($name:ident),*) => {$(
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct $name {
            #[prost(bytes = "vec", tag = "1")]
            pub flatbuffer: Vec<u8>,
        }
    )*};
}

flatbuffer_message!(
    RawQueryRequest,
    RawQueryResponse,
    TransformRequest,
    TransformResponse
);

include!(concat!(env!("OUT_DIR"), "/engine.Engine.rs"));
