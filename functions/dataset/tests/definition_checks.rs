//! Hardening: manifests that could never work are refused at creation, naming the field,
//! instead of being accepted and failing every push afterwards.

use chrono::Utc;
use weir_dataset::{CreateDatasetError, DatasetStore};

fn manifest(metadata: &str) -> String {
    format!(
        "kind: DatasetSnapshot\nversion: 1\ncontent:\n  name: bad\n  kind: Root\n  metadata:\n{metadata}"
    )
}

fn push_source(read: &str, extra: &str) -> String {
    format!(
        "    - kind: AddPushSource\n      sourceName: default\n      read:\n{read}\n{extra}      merge:\n        kind: Append\n"
    )
}

async fn create(text: &str) -> Result<(), CreateDatasetError> {
    let store = DatasetStore::in_memory();
    let definition = weir_odf::manifest::parse_dataset_manifest(text).unwrap();
    store
        .create_dataset(&"alice".parse().unwrap(), definition, Utc::now())
        .await
        .map(drop)
}

#[tokio::test]
async fn definitions_that_cannot_work_are_refused_naming_the_field() {
    let cases = [
        (
            push_source(
                "        kind: Csv\n        ddlSchema: [\"a BIGINT\", \"b GARBAGE\"]",
                "",
            ),
            "metadata[0].read.ddlSchema[1]",
        ),
        (
            push_source(
                "        kind: NdJson\n        schema:\n          fields:\n            - {name: a, type: Int64}\n            - {name: A, type: String}",
                "",
            ),
            "metadata[0].read.schema.fields[1]",
        ),
        (
            push_source(
                "        kind: Csv\n        ddlSchema: [\"x STRING\", \"x BIGINT\"]",
                "",
            ),
            "metadata[0].read.ddlSchema[1]",
        ),
        (
            push_source(
                "        kind: NdJson",
                "      preprocess:\n        kind: Sql\n        engine: datafusion\n        query: SELEC * FRM input\n",
            ),
            "metadata[0].preprocess.query",
        ),
        (
            "    - kind: SetVocab\n      offsetColumn: idx\n".to_string(),
            "metadata[0].offsetColumn",
        ),
        (
            push_source(
                "        kind: Csv\n        ddlSchema: [\"offset BIGINT\"]",
                "",
            ),
            "metadata[0].read.schema.fields[0]",
        ),
    ];
    for (metadata, path) in cases {
        let error = create(&manifest(&metadata)).await.unwrap_err();
        assert!(
            matches!(error, CreateDatasetError::InvalidDefinition(ref e) if e.path == path),
            "{path}: {error}"
        );
    }
    // A key missing from the declared columns, and one that is `event_time`.
    let keyed = |keys: &str| {
        manifest(&format!(
            "    - kind: AddPushSource\n      sourceName: default\n      read:\n        kind: NdJson\n        schema:\n          fields:\n            - {{name: event_time, type: Timestamp}}\n            - {{name: sensor, type: String}}\n      merge:\n        kind: Ledger\n        primaryKey: [{keys}]\n"
        ))
    };
    let error = create(&keyed("sensor, nope")).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("metadata[0].merge.primaryKey[1]"),
        "{error}"
    );
    create(&keyed("sensor, event_time")).await.unwrap();
}
