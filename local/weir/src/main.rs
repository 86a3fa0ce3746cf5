//! The `weir` command: `weir up` runs a whole node in one process (control plane, ingest and
//! query functions, FlightSQL) with embedded defaults; `weir reindex` rebuilds the control
//! plane's index from storage; `create`, `datasets` and `log` work on a local dataset store.
//!
//! Wires libraries together; it must not grow business logic of its own.

mod devices;
mod emulate;
mod transforms;
mod up;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use weir_dataset::DatasetStore;
use weir_odf::DatasetId;

const USAGE: &str = "usage: weir <command> [--data-dir DIR]

commands:
  up                 run the node: control plane, ingest, query on one port (default
                     127.0.0.1:8080) and FlightSQL (127.0.0.1:50050)
                     [--listen ADDR] [--flightsql-listen ADDR] [--config FILE]
  emulate            run the deployed topology on this machine: the control plane and each
                     function as its own process (functions in Lambda mode behind an
                     API-Gateway-style front on --listen), engine workers with the queue
                     [--listen ADDR] [--sqs-endpoint URL --ingest-queue URL]
  reindex            rebuild the control plane's index from storage [--config FILE]
  create <manifest>  create a dataset from a YAML manifest [--account NAME, default admin]
  datasets           list datasets in the data directory with their head block
  log <did>          print the metadata chain of a dataset as JSON, newest block first
  verify <did>       compute every transform step of a derivative again and compare the
                     output's logical hashes with those its blocks record
  version            print the version";

struct Arguments {
    command: String,
    positional: Vec<String>,
    data_dir: PathBuf,
    account: String,
    listen: String,
    flightsql_listen: String,
    config: Option<PathBuf>,
    sqs_endpoint: Option<String>,
    ingest_queue: Option<String>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut args = std::env::args().skip(1);
    let mut command = None;
    let mut positional = Vec::new();
    let mut data_dir = PathBuf::from(".weir");
    let mut account = "admin".to_string();
    let mut listen = "127.0.0.1:8080".to_string();
    let mut flightsql_listen = "127.0.0.1:50050".to_string();
    let mut config = None;
    let mut sqs_endpoint = None;
    let mut ingest_queue = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => data_dir = args.next().ok_or("--data-dir needs a value")?.into(),
            "--account" => account = args.next().ok_or("--account needs a value")?,
            "--listen" => listen = args.next().ok_or("--listen needs a value")?,
            "--flightsql-listen" => {
                flightsql_listen = args.next().ok_or("--flightsql-listen needs a value")?
            }
            "--config" => config = Some(args.next().ok_or("--config needs a value")?.into()),
            "--sqs-endpoint" => {
                sqs_endpoint = Some(args.next().ok_or("--sqs-endpoint needs a value")?)
            }
            "--ingest-queue" => {
                ingest_queue = Some(args.next().ok_or("--ingest-queue needs a value")?)
            }
            "-h" | "--help" => return Err(String::new()),
            _ if command.is_none() => command = Some(arg),
            _ => positional.push(arg),
        }
    }
    Ok(Arguments {
        command: command.ok_or("missing command")?,
        positional,
        data_dir,
        account,
        listen,
        flightsql_listen,
        config,
        sqs_endpoint,
        ingest_queue,
    })
}

async fn run(arguments: Arguments) -> Result<(), String> {
    let store =
        || DatasetStore::local_fs(arguments.data_dir.join("datasets")).map_err(|e| e.to_string());
    match arguments.command.as_str() {
        "version" => println!("weir {}", env!("CARGO_PKG_VERSION")),
        "up" => {
            return up::run(up::UpOptions {
                data_dir: arguments.data_dir,
                listen: arguments.listen,
                flightsql_listen: arguments.flightsql_listen,
                config: arguments.config,
            })
            .await;
        }
        "emulate" => {
            return emulate::run(emulate::EmulateOptions {
                data_dir: arguments.data_dir,
                listen: arguments.listen,
                sqs_endpoint: arguments.sqs_endpoint,
                ingest_queue: arguments.ingest_queue,
            })
            .await;
        }
        "reindex" => {
            let options = up::UpOptions {
                data_dir: arguments.data_dir,
                listen: arguments.listen,
                flightsql_listen: arguments.flightsql_listen,
                config: arguments.config,
            };
            let (control_plane, _) = up::start_control_plane(&options).await?;
            let report = control_plane
                .indexer
                .index_all()
                .await
                .map_err(|error| error.to_string())?;
            println!(
                "reindexed {} datasets, {} new blocks",
                report.datasets, report.blocks
            );
        }
        "create" => {
            let path = arguments
                .positional
                .first()
                .ok_or("create needs a manifest file")?;
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let definition = weir_odf::manifest::parse_dataset_manifest(&text)
                .map_err(|e| format!("{path}: {e}"))?;
            let account: weir_odf::AccountName = arguments
                .account
                .parse()
                .map_err(|e: weir_odf::IdentityParseError| e.to_string())?;
            let (dataset, result) = store()?
                .create_dataset(&account, definition, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}\t{}", dataset.id(), result.new_head);
        }
        "datasets" => {
            let store = store()?;
            for id in store.list_datasets().await.map_err(|e| e.to_string())? {
                let head = store.dataset(&id).head().await.map_err(|e| e.to_string())?;
                let head = head.map(|h| h.hash.to_string()).unwrap_or_default();
                println!("{id}\t{head}");
            }
        }
        "log" => {
            let id: DatasetId = arguments
                .positional
                .first()
                .ok_or("log needs a dataset id")?
                .parse()
                .map_err(|e: weir_odf::IdentityParseError| e.to_string())?;
            let chain = store()?
                .dataset(&id)
                .load_chain(None)
                .await
                .map_err(|e| e.to_string())?;
            for (hash, block) in chain.blocks {
                let json = serde_json::json!({ "blockHash": hash, "block": block });
                println!("{json}");
            }
        }
        "verify" => {
            let id: DatasetId = arguments
                .positional
                .first()
                .ok_or("verify needs a dataset id")?
                .parse()
                .map_err(|e: weir_odf::IdentityParseError| e.to_string())?;
            let transformer = weir_transform::Transformer::new(
                store()?,
                std::sync::Arc::new(weir_transform::DataFusionEngine),
            );
            let report = transformer.verify(&id).await.map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string(&report).map_err(|e| e.to_string())?
            );
            if report.first_mismatch.is_some() {
                return Err("a transform step gives another result than its block records".into());
            }
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(arguments).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
