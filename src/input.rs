//! Input files (plans, sandbox seeds), read with bounds: a shared leaf before [`crate::yaml`].
//!
//! Only a regular file is read, checked on the path before opening (so a FIFO is never opened
//! and cannot block) and again on the opened handle. At most [`max_bytes`] are read, through
//! `take(limit + 1)`, so a file that grows while it is read, or whose size lies (`/proc`), is
//! bounded too. Every refusal is an [`io::Error`] whose message says which limit and how to raise
//! it; the caller puts the file's name in front.

use std::fmt;
use std::fs::{File, FileType};
use std::io::{self, Read};
use std::path::Path;

/// The environment variable that raises (or lowers) the size limit, in bytes.
pub const MAX_BYTES_ENV: &str = "REPLICATE_MAX_FILE_BYTES";

/// The size limit when [`MAX_BYTES_ENV`] is not set: far beyond any real plan (20,000 targets
/// take about 1 MB).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why an input file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "it is {0}, not a regular file; plans and seeds are read only from regular files, so \
         that reading one always ends"
    )]
    NotAFile(&'static str),
    #[error(
        "the file is larger than {}, the most replicate reads; set {MAX_BYTES_ENV} to a larger \
         number of bytes to raise the limit",
        Bytes(*.0)
    )]
    TooLarge(u64),
    #[error(
        "{MAX_BYTES_ENV}={0:?} is not a number of bytes (e.g. {MAX_BYTES_ENV}=33554432 for 32 MiB)"
    )]
    BadLimit(String),
}

impl From<InputError> for io::Error {
    fn from(e: InputError) -> Self {
        let kind = match e {
            InputError::TooLarge(_) => io::ErrorKind::FileTooLarge,
            InputError::NotAFile(_) | InputError::BadLimit(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// The size limit: [`MAX_BYTES_ENV`] when set, else [`DEFAULT_MAX_BYTES`].
pub fn max_bytes() -> Result<u64, InputError> {
    match std::env::var(MAX_BYTES_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_BYTES),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(InputError::BadLimit(value.to_string_lossy().into_owned()))
        }
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| InputError::BadLimit(value)),
    }
}

/// Reads the regular file at `path`, at most [`max_bytes`] of it.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_at_most(path, max_bytes()?)
}

/// Reads the regular file at `path`, refusing it when it holds more than `limit` bytes.
pub fn read_at_most(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    // Before opening: opening a FIFO for reading blocks until a writer comes.
    let metadata = std::fs::metadata(path)?;
    regular(metadata.file_type())?;
    if metadata.len() > limit {
        return Err(InputError::TooLarge(limit).into());
    }
    let file = File::open(path)?;
    // Again on the handle: the path may have been replaced in between.
    let metadata = file.metadata()?;
    regular(metadata.file_type())?;
    let expected = metadata.len().min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(InputError::TooLarge(limit).into());
    }
    Ok(bytes)
}

fn regular(file_type: FileType) -> Result<(), InputError> {
    if file_type.is_file() {
        return Ok(());
    }
    if file_type.is_dir() {
        return Err(InputError::NotAFile("a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kinds = [
            (file_type.is_fifo(), "a FIFO (named pipe)"),
            (file_type.is_char_device(), "a character device"),
            (file_type.is_block_device(), "a block device"),
            (file_type.is_socket(), "a socket"),
        ];
        if let Some((_, kind)) = kinds.into_iter().find(|(is, _)| *is) {
            return Err(InputError::NotAFile(kind));
        }
    }
    Err(InputError::NotAFile("something else"))
}

/// A byte count as a person reads it: `16 MiB`, or `1000 bytes`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        const KIB: u64 = 1024;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_up_to_the_limit_and_no_further() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_at_most(&file, 10).unwrap(), b"0123456789");
        let err = read_at_most(&file, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            err.to_string(),
            "the file is larger than 9 bytes, the most replicate reads; set \
             REPLICATE_MAX_FILE_BYTES to a larger number of bytes to raise the limit"
        );
        assert_eq!(
            InputError::TooLarge(DEFAULT_MAX_BYTES).to_string(),
            "the file is larger than 16 MiB, the most replicate reads; set \
             REPLICATE_MAX_FILE_BYTES to a larger number of bytes to raise the limit"
        );
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_at_most(dir.path(), 10).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("it is a directory, not a regular file")
        );
        #[cfg(unix)]
        {
            let err = read_at_most(Path::new("/dev/zero"), 10).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("it is a character device, not a regular file"),
                "{err}"
            );
        }
        let missing = read_at_most(&dir.path().join("nope"), 10).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
