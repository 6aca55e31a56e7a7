//! Flow files and stdin as sources of lines: a file followed like `tail -f` (new lines as they are
//! written, from the start again when it is truncated, the new file when it is rotated), and stdin
//! read line by line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::flows::parse_flow_line;
use crate::ingest::{text_line, TextLine};
use crate::model::Flow;

/// Reads a file like `tail -f`.
pub struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    position: u64,
    identity: Option<(u64, u64)>,
    /// A line read up to where the file ends now, waiting for the rest.
    partial: Vec<u8>,
    /// The file's first bytes as read: if they change, the file was truncated and written again
    /// (even past where it was read), as `tail -F` tells.
    head: Vec<u8>,
}

/// How much of a file has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub read: u64,
    pub size: u64,
}

impl Progress {
    /// Whole percent read, 100 only at the end.
    pub fn percent(&self) -> u64 {
        match self.size {
            0 => 100,
            size if self.read >= size => 100,
            size => (self.read * 100 / size).min(99),
        }
    }
}

/// Bytes of the start of a file kept to tell it was rewritten.
const HEAD: usize = 64;

/// Lines handed over at a time.
pub const BATCH_LINES: usize = 4096;

fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

impl Follower {
    pub fn open(path: PathBuf) -> io::Result<Follower> {
        let file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let identity = identity(&file.metadata()?);
        Ok(Follower {
            path,
            reader: BufReader::new(file),
            position: 0,
            identity,
            partial: Vec::new(),
            head: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read of the file as it is now: how far a replay has come.
    pub fn progress(&self) -> Progress {
        let size = self.reader.get_ref().metadata().map_or(0, |m| m.len());
        Progress {
            read: self.position,
            size: size.max(self.position),
        }
    }

    /// Complete lines available now, at most `BATCH_LINES` of them: a large file is handed over
    /// in bounded batches, so the first rows show at once and memory does not hold it whole.
    pub fn read_available(&mut self) -> io::Result<Vec<TextLine>> {
        let mut lines = Vec::new();
        while lines.len() < BATCH_LINES {
            let before = self.partial.len();
            let read = self.reader.read_until(b'\n', &mut self.partial)?;
            if read == 0 {
                break;
            }
            if self.head.len() < HEAD && self.position < HEAD as u64 {
                let wanted = HEAD - self.head.len();
                let new = &self.partial[before..];
                self.head.extend_from_slice(&new[..new.len().min(wanted)]);
            }
            self.position += read as u64;
            if self.partial.ends_with(b"\n") {
                lines.push(text_line(std::mem::take(&mut self.partial)));
            }
        }
        Ok(lines)
    }

    /// After reaching the end: switch files on rotation (first reading what was still written
    /// to the old one, and its last line even if unfinished: it will not be finished there), and
    /// start over when the file was truncated, even if it grew past where it was read since.
    pub fn check_replaced(&mut self) -> io::Result<Replaced> {
        let Ok(metadata) = std::fs::metadata(&self.path) else {
            return Ok(Replaced::default());
        };
        if identity(&metadata) != self.identity {
            let mut drained = Vec::new();
            loop {
                let more = self.read_available()?;
                if more.is_empty() {
                    break;
                }
                drained.extend(more);
            }
            if !self.partial.is_empty() {
                drained.push(text_line(std::mem::take(&mut self.partial)));
            }
            *self = Follower::open(self.path.clone())?;
            return Ok(Replaced {
                old_lines: drained,
                restarted: true,
            });
        }
        if metadata.len() < self.position || !self.starts_as_read()? {
            self.reader.seek(SeekFrom::Start(0))?;
            self.position = 0;
            self.partial.clear();
            self.head.clear();
            return Ok(Replaced {
                old_lines: Vec::new(),
                restarted: true,
            });
        }
        Ok(Replaced::default())
    }

    /// Whether the file still starts with the bytes read from its start.
    fn starts_as_read(&self) -> io::Result<bool> {
        if self.head.is_empty() {
            return Ok(true);
        }
        let mut start = vec![0; self.head.len()];
        let mut file = File::open(&self.path)?;
        match file.read_exact(&mut start) {
            Ok(()) => Ok(start == self.head),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// What `check_replaced` found.
#[derive(Debug, Default)]
pub struct Replaced {
    /// The old file's last lines (read before it was rotated away).
    pub old_lines: Vec<TextLine>,
    /// Whether reading starts again at line 1 (of a new file, or of this one truncated).
    pub restarted: bool,
}

/// Opens a flow file, or stdin for `-`.
pub fn open_flows(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    File::open(path)
        .map(|f| Box::new(BufReader::with_capacity(1 << 16, f)) as Box<dyn BufRead + Send>)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// How a flow file is named in messages.
pub fn flows_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Line `wanted` (counted from 1) of a flow file: where it is (`FILE:N`) and its text; why not
/// when the file cannot be read or is shorter.
pub fn line_of(path: &Path, wanted: usize) -> Result<(String, String), String> {
    let name = flows_name(path);
    let mut count = 0;
    for line in open_flows(path).map_err(|e| e.to_string())?.lines() {
        count += 1;
        let line = line.map_err(|e| format!("{name}:{count}: {e}"))?;
        if count == wanted {
            return Ok((format!("{name}:{wanted}"), line));
        }
    }
    Err(format!(
        "{name} has no line {wanted} (it has {count}, counted from 1)"
    ))
}

/// The flow given as JSON (`--flow`), or on line `line` of a flow file; why not when it cannot
/// be read.
pub fn picked(
    json: Option<&str>,
    file: Option<&Path>,
    line: Option<usize>,
) -> Result<Flow, String> {
    let (origin, text) = match (json, file, line) {
        (Some(json), _, _) => ("--flow".to_string(), json.to_string()),
        (None, Some(path), Some(wanted)) => line_of(path, wanted)?,
        _ => return Err("give the flow with --flow JSON, or --flows FILE --line N".into()),
    };
    parse_flow_line(&text)
        .map(|record| record.flow)
        .map_err(|e| format!("{origin}: {e}"))
}

/// Lines from stdin (or any reader), one at a time so that each reaches the reader at once.
pub struct Stdin(pub Box<dyn BufRead + Send>);

impl Stdin {
    pub fn open() -> Stdin {
        Stdin(Box::new(BufReader::new(io::stdin())))
    }

    /// The next line; `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<TextLine>> {
        let mut line = Vec::new();
        match self.0.read_until(b'\n', &mut line)? {
            0 => Ok(None),
            _ => Ok(Some(text_line(line))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(path: &Path, text: &str, append: bool) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn texts(lines: Vec<TextLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.unwrap()).collect()
    }

    #[test]
    fn a_large_file_is_handed_over_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        let total = BATCH_LINES * 2 + 10;
        let text: String = (0..total).map(|i| format!("{i}\n")).collect();
        write(&path, &text, false);
        let mut follower = Follower::open(path).unwrap();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            let lines = follower.read_available().unwrap();
            (!lines.is_empty()).then_some(lines.len())
        })
        .collect();
        assert_eq!(sizes, [BATCH_LINES, BATCH_LINES, 10]);
    }

    #[test]
    fn rotation_reads_what_was_still_written_to_the_old_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        write(&path, "1\n2\n", false);
        let mut follower = Follower::open(path.clone()).unwrap();
        assert_eq!(texts(follower.read_available().unwrap()), ["1\n", "2\n"]);
        // Written to the old file between two polls, the last line unfinished; then rotated.
        write(&path, "3\n4\nhal", true);
        std::fs::rename(&path, dir.path().join("flows.jsonl.1")).unwrap();
        write(&path, "5\n", false);
        let replaced = follower.check_replaced().unwrap();
        assert!(replaced.restarted, "the new file is read from its line 1");
        assert_eq!(texts(replaced.old_lines), ["3\n", "4\n", "hal"]);
        assert_eq!(texts(follower.read_available().unwrap()), ["5\n"]);
    }

    #[test]
    fn a_file_truncated_and_written_past_the_old_end_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        write(&path, "old 1\nold 2\n", false);
        let mut follower = Follower::open(path.clone()).unwrap();
        assert_eq!(follower.read_available().unwrap().len(), 2);
        // Truncated and written again, longer than before, within one poll.
        write(&path, "new 1\nnew 2\nnew 3\nnew 4\n", false);
        let replaced = follower.check_replaced().unwrap();
        assert!(replaced.restarted && replaced.old_lines.is_empty());
        assert_eq!(
            texts(follower.read_available().unwrap()),
            ["new 1\n", "new 2\n", "new 3\n", "new 4\n"]
        );
        // Appended to, as usual: nothing read again.
        write(&path, "new 5\n", true);
        let replaced = follower.check_replaced().unwrap();
        assert!(!replaced.restarted && replaced.old_lines.is_empty());
        assert_eq!(texts(follower.read_available().unwrap()), ["new 5\n"]);
    }
}
