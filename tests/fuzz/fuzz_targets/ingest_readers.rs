//! Any body given to the ingest readers (CSV, NDJSON, JSON array, GeoJSON), with a declared
//! schema or an inferred one, arriving in one piece or two: records or an error naming the
//! problem, never a panic, a hang or a stack overflow.
//!
//! The first byte picks the format and whether the schema is declared; the second where the body
//! is cut in two pieces.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_ingest::read::{MediaFormat, read_body};
use weir_ingest::sink::CollectSink;

const DECLARED: &str = "
        schema:
          fields:
            - {name: event_time, type: Timestamp}
            - {name: city, type: String}
            - {name: population, type: Int64}
            - {name: share, type: Float64}";

fn read_step(kind: &str, declared: bool) -> weir_odf::ReadStep {
    let header = if kind == "Csv" { "\n        header: true" } else { "" };
    let schema = if declared { DECLARED } else { "" };
    let manifest = format!(
        "kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: f\n  kind: Root\n  metadata:\n    - kind: AddPushSource\n      sourceName: default\n      read:\n        kind: {kind}{header}{schema}\n      merge:\n        kind: Append\n"
    );
    let definition = weir_odf::manifest::parse_dataset_manifest(&manifest).unwrap();
    match definition.metadata.into_iter().next() {
        Some(weir_odf::MetadataEvent::AddPushSource(source)) => source.read,
        _ => unreachable!("the manifest has one push source"),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let [selector, cut, body @ ..] = data else {
        return;
    };
    let (format, kind) = match selector % 4 {
        0 => (MediaFormat::Csv, "Csv"),
        1 => (MediaFormat::NdJson, "NdJson"),
        2 => (MediaFormat::Json, "Json"),
        _ => (MediaFormat::GeoJson, "GeoJson"),
    };
    let step = read_step(kind, selector & 4 != 0);
    let at = usize::from(*cut).min(body.len());
    let pieces = vec![
        Ok(Bytes::copy_from_slice(&body[..at])),
        Ok(Bytes::copy_from_slice(&body[at..])),
    ];
    let stream = futures::stream::iter(pieces);
    let _ = runtime().block_on(read_body(format, &step, stream, CollectSink::default()));
});
