//! `sanctuary export FILE` and `sanctuary import FILE` (see `sanctuary_net::export`): the
//! passphrase asked for, the work done on a runtime of its own, what happened told.

use std::process::ExitCode;

use sanctuary_net::NetRuntime;

use crate::cli::ArchiveArgs;

/// `sanctuary export` (`export` true) or `sanctuary import`.
pub fn run(args: &ArchiveArgs, export: bool) -> ExitCode {
    let Some(data_dir) = args.data_dir.clone().or_else(crate::cli::default_data_dir) else {
        eprintln!("error: there is no home directory; pass --data-dir DIR");
        return ExitCode::from(2);
    };
    let passphrase = match archive_passphrase(args, export) {
        Ok(passphrase) => passphrase,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let runtime = match NetRuntime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        if export {
            sanctuary_net::export::export(&data_dir, &args.file, &passphrase).await
        } else {
            sanctuary_net::export::import(&args.file, &data_dir, &passphrase).await
        }
    });
    match outcome {
        Ok(report) => {
            let mib = report.bytes as f64 / f64::from(1 << 20);
            let what = format!(
                "{} files, {mib:.1} MiB: {} world changes ({} yours), {} blobs of your models and avatar",
                report.files, report.changes, report.own_changes, report.blobs
            );
            if export {
                println!("exported {} from {} into {}", report.key, data_dir.display(), args.file.display());
                println!("{what}");
                if report.models_missing > 0 {
                    println!(
                        "{} of your models were not held here in full and are not in the archive",
                        report.models_missing
                    );
                }
                println!("keep it private: chats and private messages are in it in the clear");
            } else {
                println!("imported {} into {}", report.key, data_dir.display());
                println!("{what}");
                println!("start it with: sanctuary --data-dir {}", data_dir.display());
            }
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// The archive's passphrase: from `--passphrase-file`, `SANCTUARY_PASSPHRASE`, or typed (twice
/// for an export) without echo.
fn archive_passphrase(args: &ArchiveArgs, export: bool) -> Result<String, String> {
    let passphrase = if let Some(path) = &args.passphrase_file {
        let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        text.lines().next().unwrap_or_default().to_owned()
    } else if let Ok(passphrase) = std::env::var("SANCTUARY_PASSPHRASE") {
        passphrase
    } else {
        let typed = rpassword::prompt_password("passphrase for the archive: ")
            .map_err(|error| format!("cannot read the passphrase ({error}); use --passphrase-file"))?;
        if export && rpassword::prompt_password("the same passphrase again: ").ok().as_deref() != Some(typed.as_str()) {
            return Err("the two passphrases differ".into());
        }
        typed
    };
    if export && passphrase.chars().count() < 8 {
        return Err("the passphrase seals your identity: use at least 8 characters".into());
    }
    Ok(passphrase)
}

/// `sanctuary receipts`: the contribution record (the receipts others signed for what this
/// person served) as CSV, or with `json` as JSON, on standard output.
pub fn receipts(data_dir: Option<&std::path::Path>, json: bool) -> ExitCode {
    let Some(data_dir) = data_dir.map(std::path::Path::to_owned).or_else(crate::cli::default_data_dir) else {
        eprintln!("error: there is no home directory; pass --data-dir DIR");
        return ExitCode::from(2);
    };
    match sanctuary_net::read_record(&data_dir) {
        Ok(receipts) if json => {
            println!("{}", sanctuary_net::receipts::record_json(&receipts));
            ExitCode::SUCCESS
        }
        Ok(receipts) => {
            print!("{}", sanctuary_net::receipts::record_csv(&receipts));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: the receipts in {} could not be read: {error}", data_dir.display());
            ExitCode::FAILURE
        }
    }
}
