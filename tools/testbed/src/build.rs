//! The listings' release binaries: the tests and the benchmark run the same
//! ones, built by the cargo that runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, where `listings/` and `tools/` are.
pub fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Builds `packages` in release mode, quietly, with the cargo that is
/// running us (`$CARGO`) or the one on the PATH, and returns the directory
/// of their binaries, in the target directory this program was built in.
pub fn release_build<'a>(packages: impl IntoIterator<Item = &'a str>) -> Result<PathBuf, String> {
    let root = workspace();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&root)
        .args(["build", "--release", "--quiet"]);
    for package in packages {
        build.args(["-p", package]);
    }
    let status = build
        .status()
        .map_err(|e| format!("could not run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed ({status})"));
    }
    Ok(target_dir(&root).join("release"))
}

/// The target directory this program was built in: the nearest folder
/// above it that cargo marked with `CACHEDIR.TAG`, whichever way it was
/// chosen (`CARGO_TARGET_DIR`, `--target-dir`, a config file). A program
/// not built by cargo gets `CARGO_TARGET_DIR` or `target/`.
fn target_dir(root: &Path) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let marked = exe
        .iter()
        .flat_map(|exe| exe.ancestors())
        .find(|dir| dir.join("CACHEDIR.TAG").is_file());
    match marked {
        Some(dir) => dir.to_path_buf(),
        None => root.join(std::env::var_os("CARGO_TARGET_DIR").unwrap_or("target".into())),
    }
}
