//! Model download before a simulator's run and results upload after it,
//! over HTTP(S), for kinds that run simulations (cargo feature `transfer`;
//! `simulator/generic` and `simulator/dpsim` use it): `model` is `{"type": "url" | "url-list", "url": <url or list>,
//! "token": ...}` (a zip archive is unpacked), `results` is `{"url": ...,
//! "token": ...}` (the run directory is zipped and sent with PUT, as the
//! reference does). A token goes in `Authorization: Bearer`.

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The `model`/`results` object is malformed.
    #[error("{0}")]
    Invalid(String),
    /// HTTP failed.
    #[error("{url}: {source}")]
    Http {
        /// The URL (without token).
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// Reading or writing files failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An archive could not be read or written.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSource {
    urls: Vec<String>,
    token: Option<String>,
    list: bool,
}

impl ModelSource {
    /// Reads a `model` object.
    pub fn parse(model: &Value) -> Result<Self, TransferError> {
        let invalid = |m: &str| TransferError::Invalid(format!("model: {m}"));
        let object = model
            .as_object()
            .ok_or_else(|| invalid("must be an object"))?;
        let urls = match object.get("url") {
            Some(Value::String(url)) => vec![url.clone()],
            Some(Value::Array(urls)) => urls
                .iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("url must be a string or a list of strings"))?,
            _ => return Err(invalid("url (a string or a list of strings) is required")),
        };
        if urls.is_empty() {
            return Err(invalid("url lists no URL"));
        }
        let list = match object.get("type").and_then(Value::as_str) {
            None | Some("url") => urls.len() > 1,
            Some("url-list") => true,
            Some(other) => return Err(invalid(&format!("unknown type {other:?}"))),
        };
        Ok(ModelSource {
            urls,
            token: token_of(object.get("token")),
            list,
        })
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsTarget {
    url: String,
    token: Option<String>,
}

impl ResultsTarget {
    /// Reads a `results` object; `None` when it names no URL.
    pub fn parse(results: &Value) -> Result<Option<Self>, TransferError> {
        let object = results
            .as_object()
            .ok_or_else(|| TransferError::Invalid("results: must be an object".into()))?;
        match object.get("url") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(url)) => Ok(Some(ResultsTarget {
                url: url.clone(),
                token: token_of(object.get("token")),
            })),
            Some(_) => Err(TransferError::Invalid(
                "results: url must be a string".into(),
            )),
        }
    }
}

fn token_of(token: Option<&Value>) -> Option<String> {
    token
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn client() -> Result<reqwest::Client, TransferError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|source| TransferError::Http {
            url: String::new(),
            source,
        })
}

/// Downloads the model into `dir`; returns what `%PATH%` stands for: the
/// file, the directory a zip archive was unpacked into, or `dir` for a
/// list of URLs.
pub async fn download(source: ModelSource, dir: PathBuf) -> Result<PathBuf, TransferError> {
    tokio::fs::create_dir_all(&dir).await?;
    let client = client()?;
    let mut files = Vec::with_capacity(source.urls.len());
    for (index, url) in source.urls.iter().enumerate() {
        let mut request = client.get(url);
        if let Some(token) = &source.token {
            request = request.bearer_auth(token);
        }
        let http = |source| TransferError::Http {
            url: url.clone(),
            source,
        };
        let body = request
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(http)?
            .bytes()
            .await
            .map_err(http)?;
        let file = dir.join(file_name(url, index));
        tokio::fs::write(&file, &body).await?;
        files.push(file);
    }
    if source.list {
        return Ok(dir);
    }
    let file = files.remove(0);
    tokio::task::spawn_blocking(move || unpack_if_zip(file, &dir))
        .await
        .map_err(|e| TransferError::Invalid(format!("unpacking panicked: {e}")))?
}

/// A safe local name for the `index`th downloaded URL.
fn file_name(url: &str, index: usize) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        format!("model-{index}")
    } else {
        clean
    }
}

fn unpack_if_zip(file: PathBuf, dir: &Path) -> Result<PathBuf, TransferError> {
    let mut magic = [0u8; 4];
    let is_zip = std::fs::File::open(&file)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04";
    if !is_zip {
        return Ok(file);
    }
    let target = dir.join("unpacked");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&file)?)?;
    // `extract` refuses entries that would land outside `target`.
    archive.extract(&target)?;
    Ok(target)
}

/// Zips the run directory `run` (leaving out the downloaded model) and
/// uploads it with PUT.
pub async fn upload(run: PathBuf, target: ResultsTarget) -> Result<(), TransferError> {
    let archive = tokio::task::spawn_blocking(move || zip_dir(&run))
        .await
        .map_err(|e| TransferError::Invalid(format!("zipping panicked: {e}")))??;
    let mut request = client()?.put(&target.url).body(archive);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|source| TransferError::Http {
            url: target.url.clone(),
            source,
        })?;
    Ok(())
}

/// The files of `dir` (recursively, except `model/`) as a zip archive.
pub fn zip_dir(dir: &Path) -> Result<Vec<u8>, TransferError> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&current)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            if relative == Path::new("model") {
                continue;
            }
            let name = relative.to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                writer.add_directory(name, options)?;
                pending.push(path);
            } else if kind.is_file() {
                writer.start_file(name, options)?;
                writer.write_all(&std::fs::read(&path)?)?;
            }
        }
    }
    Ok(writer.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_objects_are_read_as_the_reference_sends_them() {
        let single =
            ModelSource::parse(&json!({"type": "url", "url": "http://h/m.zip", "token": "t"}))
                .unwrap();
        assert_eq!(single.urls, ["http://h/m.zip"]);
        assert_eq!(single.token.as_deref(), Some("t"));
        assert!(!single.list);
        let list =
            ModelSource::parse(&json!({"type": "url-list", "url": ["http://h/a", "http://h/b"]}))
                .unwrap();
        assert!(list.list);
        for bad in [
            json!("x"),
            json!({}),
            json!({"url": 3}),
            json!({"url": []}),
            json!({"url": "u", "type": "ftp"}),
        ] {
            assert!(ModelSource::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(ResultsTarget::parse(&json!({})).unwrap(), None);
        assert!(ResultsTarget::parse(&json!({"url": 1})).is_err());
    }

    #[test]
    fn downloaded_file_names_cannot_escape_the_model_directory() {
        assert_eq!(file_name("http://h/files/model.zip?x=1", 0), "model.zip");
        assert_eq!(file_name("http://h/../..", 1), "model-1");
        assert_eq!(file_name("http://h/a%2F..%2Fb", 2), "a2F..2Fb");
        assert_eq!(file_name("http://h/", 3), "model-3");
    }

    #[test]
    fn zip_dir_packs_the_run_without_the_model() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("output.log"), b"hello\n").unwrap();
        std::fs::create_dir(dir.path().join("model")).unwrap();
        std::fs::write(dir.path().join("model/m.bin"), b"model").unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out/r.csv"), b"1,2\n").unwrap();
        let bytes = zip_dir(dir.path()).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        assert!(names.contains(&"output.log".to_owned()), "{names:?}");
        assert!(names.contains(&"out/r.csv".to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("model")), "{names:?}");
        let mut log = String::new();
        archive
            .by_name("output.log")
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        assert_eq!(log, "hello\n");
    }
}
