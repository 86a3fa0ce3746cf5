//! Ingestion and transformation steps: fetch, prepare, read, preprocess (transform), merge.

use serde::{Deserialize, Serialize};

use crate::flatbuffers::codec::{odf_enum, odf_table, odf_union};
use crate::model::data::DataSchema;
use crate::model::serde_util::optional_tagged_or_shorthand;

macro_rules! read_step_tables {
    ($( $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? } )*) => {$(
        odf_table! {
            #[serde_with::skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }
        }
    )*};
}

read_step_tables! {
    ReadStepCsv {
        pub ddl_schema: Option<Vec<String>>,
        pub separator: Option<String>,
        pub encoding: Option<String>,
        pub quote: Option<String>,
        pub escape: Option<String>,
        pub header: Option<bool>,
        pub infer_schema: Option<bool>,
        pub null_value: Option<String>,
        pub date_format: Option<String>,
        pub timestamp_format: Option<String>,
        pub schema: Option<DataSchema>,
    }
    ReadStepGeoJson {
        pub ddl_schema: Option<Vec<String>>,
        pub schema: Option<DataSchema>,
    }
    ReadStepEsriShapefile {
        pub ddl_schema: Option<Vec<String>>,
        pub sub_path: Option<String>,
        pub schema: Option<DataSchema>,
    }
    ReadStepParquet {
        pub ddl_schema: Option<Vec<String>>,
        pub schema: Option<DataSchema>,
    }
    ReadStepJson {
        pub sub_path: Option<String>,
        pub ddl_schema: Option<Vec<String>>,
        pub date_format: Option<String>,
        pub encoding: Option<String>,
        pub timestamp_format: Option<String>,
        pub schema: Option<DataSchema>,
    }
    ReadStepNdJson {
        pub ddl_schema: Option<Vec<String>>,
        pub date_format: Option<String>,
        pub encoding: Option<String>,
        pub timestamp_format: Option<String>,
        pub schema: Option<DataSchema>,
    }
    ReadStepNdGeoJson {
        pub ddl_schema: Option<Vec<String>>,
        pub schema: Option<DataSchema>,
    }
    SqlQueryStep {
        pub alias: Option<String>,
        pub query: String,
    }
    TemporalTable {
        pub name: String,
        pub primary_key: Vec<String>,
    }
    TransformSql {
        pub engine: String,
        pub version: Option<String>,
        pub query: Option<String>,
        pub queries: Option<Vec<SqlQueryStep>>,
        pub temporal_tables: Option<Vec<TemporalTable>>,
    }
    MergeStrategyAppend {}
    MergeStrategyLedger {
        pub primary_key: Vec<String>,
    }
    MergeStrategySnapshot {
        pub primary_key: Vec<String>,
        pub compare_columns: Option<Vec<String>>,
    }
    MergeStrategyChangelogStream {
        pub primary_key: Vec<String>,
    }
    MergeStrategyUpsertStream {
        pub primary_key: Vec<String>,
    }
    EventTimeSourceFromMetadata {}
    EventTimeSourceFromPath {
        pub pattern: String,
        pub timestamp_format: Option<String>,
    }
    EventTimeSourceFromSystemTime {}
    SourceCachingForever {}
    RequestHeader {
        pub name: String,
        pub value: String,
    }
    FetchStepUrl {
        pub url: String,
        #[serde(default, deserialize_with = "optional_tagged_or_shorthand")]
        pub event_time: Option<EventTimeSource>,
        #[serde(default, deserialize_with = "optional_tagged_or_shorthand")]
        pub cache: Option<SourceCaching>,
        pub headers: Option<Vec<RequestHeader>>,
    }
    FetchStepFilesGlob {
        pub path: String,
        #[serde(default, deserialize_with = "optional_tagged_or_shorthand")]
        pub event_time: Option<EventTimeSource>,
        #[serde(default, deserialize_with = "optional_tagged_or_shorthand")]
        pub cache: Option<SourceCaching>,
        pub order: Option<SourceOrdering>,
    }
    EnvVar {
        pub name: String,
        pub value: Option<String>,
    }
    FetchStepContainer {
        pub image: String,
        pub command: Option<Vec<String>>,
        pub args: Option<Vec<String>>,
        pub env: Option<Vec<EnvVar>>,
    }
    MqttTopicSubscription {
        pub path: String,
        pub qos: Option<MqttQos>,
    }
    FetchStepMqtt {
        pub host: String,
        pub port: i32,
        pub username: Option<String>,
        pub password: Option<String>,
        pub topics: Vec<MqttTopicSubscription>,
    }
    FetchStepEthereumLogs {
        pub chain_id: Option<u64>,
        pub node_url: Option<String>,
        pub filter: Option<String>,
        pub signature: Option<String>,
    }
    PrepStepDecompress {
        pub format: CompressionFormat,
        pub sub_path: Option<String>,
    }
    PrepStepPipe {
        pub command: Vec<String>,
    }
}

odf_union! {
    /// How raw data is read into a structured form.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum ReadStep {
        #[serde(alias = "csv")]
        Csv(ReadStepCsv) = 1,
        #[serde(alias = "geoJson", alias = "geojson")]
        GeoJson(ReadStepGeoJson) = 2,
        #[serde(alias = "esriShapefile", alias = "esrishapefile")]
        EsriShapefile(ReadStepEsriShapefile) = 3,
        #[serde(alias = "parquet")]
        Parquet(ReadStepParquet) = 4,
        #[serde(alias = "json")]
        Json(ReadStepJson) = 5,
        #[serde(alias = "ndJson", alias = "ndjson")]
        NdJson(ReadStepNdJson) = 6,
        #[serde(alias = "ndGeoJson", alias = "ndgeojson")]
        NdGeoJson(ReadStepNdGeoJson) = 7,
    }
}

odf_union! {
    /// A query that shapes data (preprocess step or derivative transformation).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum Transform {
        #[serde(alias = "sql")]
        Sql(TransformSql) = 1,
    }
}

odf_union! {
    /// How new data is combined with the history of previously seen data.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum MergeStrategy {
        #[serde(alias = "append")]
        Append(MergeStrategyAppend) = 1,
        #[serde(alias = "ledger")]
        Ledger(MergeStrategyLedger) = 2,
        #[serde(alias = "snapshot")]
        Snapshot(MergeStrategySnapshot) = 3,
        #[serde(alias = "changelogStream", alias = "changelogstream")]
        ChangelogStream(MergeStrategyChangelogStream) = 4,
        #[serde(alias = "upsertStream", alias = "upsertstream")]
        UpsertStream(MergeStrategyUpsertStream) = 5,
    }
}

odf_union! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum EventTimeSource {
        #[serde(alias = "fromMetadata", alias = "frommetadata")]
        FromMetadata(EventTimeSourceFromMetadata) = 1,
        #[serde(alias = "fromPath", alias = "frompath")]
        FromPath(EventTimeSourceFromPath) = 2,
        #[serde(alias = "fromSystemTime", alias = "fromsystemtime")]
        FromSystemTime(EventTimeSourceFromSystemTime) = 3,
    }
}

odf_union! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum SourceCaching {
        #[serde(alias = "forever")]
        Forever(SourceCachingForever) = 1,
    }
}

odf_union! {
    /// Where a polling source obtains data from.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum FetchStep {
        #[serde(alias = "url")]
        Url(FetchStepUrl) = 1,
        #[serde(alias = "filesGlob", alias = "filesglob")]
        FilesGlob(FetchStepFilesGlob) = 2,
        #[serde(alias = "container")]
        Container(FetchStepContainer) = 3,
        #[serde(alias = "mqtt")]
        Mqtt(FetchStepMqtt) = 4,
        #[serde(alias = "ethereumLogs", alias = "ethereumlogs")]
        EthereumLogs(FetchStepEthereumLogs) = 5,
    }
}

odf_union! {
    /// A step preparing fetched files before reading.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    pub enum PrepStep {
        #[serde(alias = "decompress")]
        Decompress(PrepStepDecompress) = 1,
        #[serde(alias = "pipe")]
        Pipe(PrepStepPipe) = 2,
    }
}

odf_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum SourceOrdering: i32 {
        #[serde(alias = "byEventTime", alias = "byeventtime")]
        ByEventTime = 0,
        #[serde(alias = "byName", alias = "byname")]
        ByName = 1,
    }
}

odf_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum CompressionFormat: i32 {
        #[serde(alias = "gzip")]
        Gzip = 0,
        #[serde(alias = "zip")]
        Zip = 1,
    }
}

odf_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum MqttQos: i32 {
        #[serde(alias = "atMostOnce", alias = "atmostonce")]
        AtMostOnce = 0,
        #[serde(alias = "atLeastOnce", alias = "atleastonce")]
        AtLeastOnce = 1,
        #[serde(alias = "exactlyOnce", alias = "exactlyonce")]
        ExactlyOnce = 2,
    }
}

impl ReadStep {
    /// The schema the read step declares: RFC-016 `schema`, and the legacy `ddlSchema`.
    pub fn declared_schema(&self) -> (Option<&DataSchema>, Option<&[String]>) {
        let (schema, ddl) = match self {
            Self::Csv(step) => (&step.schema, &step.ddl_schema),
            Self::Json(step) => (&step.schema, &step.ddl_schema),
            Self::NdJson(step) => (&step.schema, &step.ddl_schema),
            Self::GeoJson(step) => (&step.schema, &step.ddl_schema),
            Self::NdGeoJson(step) => (&step.schema, &step.ddl_schema),
            Self::Parquet(step) => (&step.schema, &step.ddl_schema),
            Self::EsriShapefile(step) => (&step.schema, &step.ddl_schema),
        };
        (schema.as_ref(), ddl.as_deref())
    }
}
