//! The operator's side of tokens: where the admin token comes from, and the refusal to serve
//! the open API (no tokens) anywhere but on loopback.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The environment variable that may hold the admin token.
pub const ADMIN_TOKEN_ENV: &str = "FWASM_ADMIN_TOKEN";

/// The file under `up`'s data directory that holds a generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The operator's admin token, and where it came from.
pub struct AdminToken {
    pub token: String,
    /// The file it was read from or written to, if any.
    pub file: Option<PathBuf>,
    /// Whether it was made on this start.
    pub generated: bool,
}

/// The admin token: `FWASM_ADMIN_TOKEN`, else the file given, else (for `up`, which names its
/// data directory) the one kept in `<data-dir>/admin-token`, made on the first start.
pub fn admin_token(
    from_env: Option<String>,
    file: Option<&Path>,
    data_dir: Option<&Path>,
) -> anyhow::Result<Option<AdminToken>> {
    if let Some(token) = from_env.filter(|t| !t.trim().is_empty()) {
        let token = token.trim().to_string();
        check_strength(&token, ADMIN_TOKEN_ENV)?;
        return Ok(Some(AdminToken {
            token,
            file: None,
            generated: false,
        }));
    }
    if let Some(file) = file {
        let read = read(file)?;
        check_strength(&read.token, &file.display().to_string())?;
        return Ok(Some(read));
    }
    let Some(dir) = data_dir else {
        return Ok(None);
    };
    let file = dir.join(ADMIN_TOKEN_FILE);
    if file.exists() {
        return read(&file).map(Some);
    }
    let token = generate()?;
    write_private(&file, &token)?;
    Ok(Some(AdminToken {
        token,
        file: Some(file),
        generated: true,
    }))
}

fn read(file: &Path) -> anyhow::Result<AdminToken> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the admin token file {}", file.display()))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        bail!(
            "the admin token file {} is empty; put the token in it",
            file.display()
        );
    }
    Ok(AdminToken {
        token,
        file: Some(file.to_path_buf()),
        generated: false,
    })
}

/// The fewest characters an operator's admin token may have (a generated one has 76).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Refuses an admin token short enough to guess.
fn check_strength(token: &str, from: &str) -> anyhow::Result<()> {
    if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
        bail!(
            "the admin token in {from} is shorter than {MIN_ADMIN_TOKEN_CHARS} characters: make \
             a long random one, e.g. `openssl rand -hex 32`"
        );
    }
    Ok(())
}

/// A new admin token in fwasm's form (`fwasm_admin_<secret>`).
fn generate() -> anyhow::Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("fwasm_admin_{}", hex::encode(secret)))
}

/// Writes `token` to a new file only its owner may read (mode 0600 from its creation, so it
/// is never readable by others, not even for a moment).
fn write_private(file: &Path, token: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(file)
        .with_context(|| format!("cannot write the admin token to {}", file.display()))?;
    writeln!(out, "{token}")?;
    Ok(())
}

/// Refuses to serve the open API (no `--auth`) on an address other machines can reach,
/// unless the operator said `--insecure-no-auth`.
pub fn check_exposure(host: IpAddr, auth: bool, insecure_no_auth: bool) -> anyhow::Result<()> {
    if auth || host.is_loopback() {
        return Ok(());
    }
    if insecure_no_auth {
        eprintln!(
            "WARNING: serving on {host} with no tokens (--insecure-no-auth): anyone who can \
             reach this machine can upload, run and read every user's functions and state"
        );
        return Ok(());
    }
    bail!(
        "refusing to serve on {host} without tokens: anyone who can reach it could upload, run \
         and read every user's functions and state. Add --auth (the admin token comes from \
         {ADMIN_TOKEN_ENV} or --admin-token-file), listen on 127.0.0.1, or say \
         --insecure-no-auth if this network is yours alone"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_then_the_file_then_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("given");
        std::fs::write(&file, "from-file\n").unwrap();
        let long = "e".repeat(MIN_ADMIN_TOKEN_CHARS);
        let env = admin_token(Some(format!(" {long} ")), Some(&file), Some(dir.path()));
        assert_eq!(env.unwrap().unwrap().token, long);
        let short = admin_token(Some("changeme".into()), None, None)
            .err()
            .unwrap();
        assert!(short.to_string().contains("shorter than 32"), "{short}");
        std::fs::write(&file, format!("{}\n", "f".repeat(MIN_ADMIN_TOKEN_CHARS))).unwrap();
        let read = admin_token(None, Some(&file), Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (read.token, read.generated),
            ("f".repeat(MIN_ADMIN_TOKEN_CHARS), false)
        );
        assert!(admin_token(None, None, None).unwrap().is_none());
    }

    #[test]
    fn a_generated_token_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let made = admin_token(None, None, Some(dir.path())).unwrap().unwrap();
        assert!(made.generated);
        assert!(made.token.starts_with("fwasm_admin_"), "{}", made.token);
        let file = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(made.file.as_deref(), Some(file.as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = admin_token(None, None, Some(dir.path())).unwrap().unwrap();
        assert_eq!((again.token, again.generated), (made.token, false));
        std::fs::write(&file, "\n").unwrap();
        let empty = admin_token(None, None, Some(dir.path())).err().unwrap();
        assert!(empty.to_string().contains("is empty"), "{empty}");
    }

    #[test]
    fn the_open_api_stays_on_loopback_unless_the_operator_says_otherwise() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_exposure(loopback, false, false).is_ok());
        assert!(check_exposure("::1".parse().unwrap(), false, false).is_ok());
        assert!(check_exposure(any, true, false).is_ok());
        assert!(check_exposure(any, false, true).is_ok());
        let refused = check_exposure(any, false, false).unwrap_err().to_string();
        assert!(refused.contains("--auth"), "{refused}");
        assert!(refused.contains("--insecure-no-auth"), "{refused}");
    }
}
