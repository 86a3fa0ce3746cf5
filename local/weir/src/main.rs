//! The `weir` command. For now it inspects a local dataset store (`weir datasets`, `weir log`);
//! `weir up` (control plane and functions in one process) arrives with the control-plane work
//! and currently only prepares the data directory and says so.
//!
//! Depends on the kernel crates only; it must not grow business logic of its own.

use std::path::PathBuf;
use std::process::ExitCode;

use weir_dataset::DatasetStore;
use weir_odf::DatasetId;

const USAGE: &str = "usage: weir <command> [--data-dir DIR]

commands:
  up                 prepare the data directory (the HTTP node is not implemented yet)
  create <manifest>  create a dataset from a YAML manifest [--account NAME, default admin]
  datasets           list datasets in the data directory with their head block
  log <did>          print the metadata chain of a dataset as JSON, newest block first
  version            print the version";

struct Arguments {
    command: String,
    positional: Vec<String>,
    data_dir: PathBuf,
    account: String,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut args = std::env::args().skip(1);
    let mut command = None;
    let mut positional = Vec::new();
    let mut data_dir = PathBuf::from(".weir");
    let mut account = "admin".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => data_dir = args.next().ok_or("--data-dir needs a value")?.into(),
            "--account" => account = args.next().ok_or("--account needs a value")?,
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
    })
}

async fn run(arguments: Arguments) -> Result<(), String> {
    let store =
        || DatasetStore::local_fs(arguments.data_dir.join("datasets")).map_err(|e| e.to_string());
    match arguments.command.as_str() {
        "version" => println!("weir {}", env!("CARGO_PKG_VERSION")),
        "up" => {
            let store = store()?;
            println!("data directory: {}", arguments.data_dir.display());
            println!(
                "datasets: {}",
                store
                    .list_datasets()
                    .await
                    .map_err(|e| e.to_string())?
                    .len()
            );
            println!(
                "weir up: the HTTP node (control plane, ingest, query) is not implemented yet"
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
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
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
