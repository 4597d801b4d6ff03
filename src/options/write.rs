//! `/data/options.json`: written like the Supervisor's `write_json_file`, atomically (a
//! temporary file in the same folder, renamed over) with mode 0600 and two-space indents.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::OptionsError;

pub const FILE_NAME: &str = "options.json";

/// Write `options` to `<data_dir>/options.json`; the file never exists half written and is
/// never readable by others, even for a moment (the temporary file is created 0600).
pub fn write_options(data_dir: &Path, options: &Value) -> Result<PathBuf, OptionsError> {
    let mut text = serde_json::to_vec_pretty(options)
        .map_err(|e| OptionsError::Write(std::io::Error::other(e)))?;
    text.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".options.json.")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(data_dir)?;
    tmp.write_all(&text)?;
    tmp.as_file().sync_all()?;
    let target = data_dir.join(FILE_NAME);
    tmp.persist(&target)
        .map_err(|e| OptionsError::Write(e.error))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn written_atomically_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_options(dir.path(), &serde_json::json!({"a": 1, "b": [true]})).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let back: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, serde_json::json!({"a": 1, "b": [true]}));
        // Replaced whole on a second write, and no temporary file is left.
        write_options(dir.path(), &serde_json::json!({})).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
