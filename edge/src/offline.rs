//! The commands that work on a config file or a data directory without running the
//! gateway: `tollgate check`, `import`, `check-store` and `export`. Each prints what it
//! found and returns the process's exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

/// One line per problem: `FILE: PATH: message` (`FILE: message` without a path).
fn problem_lines(file: &Path, problems: &[storage::Problem]) -> Vec<String> {
    problems
        .iter()
        .map(|p| match p.path.as_str() {
            "" => format!("{}: {}", file.display(), p.message),
            path => format!("{}: {path}: {}", file.display(), p.message),
        })
        .collect()
}

fn read_config(file: &Path) -> anyhow::Result<Result<storage::Config, storage::StoreError>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(storage::parse_config(&text))
}

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let problems = match read_config(file)? {
        Ok(config) => storage::validate_config(&config),
        Err(storage::StoreError::Invalid { problems }) => problems,
        Err(e) => vec![storage::Problem::new("", e.to_string())],
    };
    if problems.is_empty() {
        println!("{}: ok", file.display());
        Ok(ExitCode::SUCCESS)
    } else {
        for line in problem_lines(file, &problems) {
            println!("{line}");
        }
        Ok(ExitCode::FAILURE)
    }
}

pub fn import(file: &Path, replace: bool, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let config = match read_config(file)? {
        Ok(c) => c,
        Err(storage::StoreError::Invalid { problems }) => {
            for line in problem_lines(file, &problems) {
                eprintln!("{line}");
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e).context("parsing the config"),
    };
    let store = storage::Store::open(data_dir).context("opening the store")?;
    match store.apply(storage::Change::Import { config, replace }, "cli") {
        Ok(revision) => {
            println!("imported {}: revision {revision}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(storage::StoreError::Invalid { problems }) => {
            for line in problem_lines(file, &problems) {
                eprintln!("{line}");
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("importing"),
    }
}

pub fn check_store(data_dir: &Path) -> anyhow::Result<ExitCode> {
    if !data_dir.join("conf").is_file() {
        eprintln!("{}: no store here", data_dir.display());
        return Ok(ExitCode::FAILURE);
    }
    match storage::Store::open(data_dir) {
        Ok(store) => {
            println!("{}: ok, revision {}", data_dir.display(), store.revision());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: {e}", data_dir.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn export(data_dir: &Path, with_secrets: bool) -> anyhow::Result<ExitCode> {
    let store = storage::Store::open(data_dir).context("opening the store")?;
    if with_secrets {
        print!("{}", store.export_yaml());
    } else {
        print!("{}", store.export_yaml_without_secrets());
    }
    Ok(ExitCode::SUCCESS)
}
