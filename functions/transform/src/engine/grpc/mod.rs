//! The ODF engine protocol over gRPC (spec "Engine Contract" → "Communication Interface"):
//! `ExecuteTransform` and `ExecuteRawQuery`, each a request answered by a stream of responses
//! ending in `Success`, `InvalidQuery` or `InternalError`. Messages are the spec's FlatBuffers
//! tables (`weir_odf::engine`) wrapped in `bytes flatbuffer = 1` (`proto/engine.proto`).
//!
//! Data goes out of band, as files named by path. Weir's paths are URLs in the node's storage
//! (`file:///…` or `s3://bucket/…`): inputs are the datasets' own data files, and the engine
//! writes its output and checkpoint under a scratch prefix (`<root>/.engine/<step id>/`) that
//! the coordinator reads back and deletes. [`server::EngineService`] serves any [`Engine`]
//! (ours: DataFusion) to coordinators; [`client::GrpcEngine`] is an [`Engine`](super::Engine) that runs each
//! step on a remote engine.

pub mod client;
mod paths;
pub mod proto;
pub mod server;

pub use client::GrpcEngine;
pub use server::{EngineService, serve};

/// The port ODF engines listen on.
pub const ENGINE_PORT: u16 = 5544;

/// An exchange file: `batches` (none for a file that only carries `schema`) as Parquet.
fn parquet_file(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
) -> Result<bytes::Bytes, parquet::errors::ParquetError> {
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, schema.clone(), None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(bytes::Bytes::from(buffer))
}
