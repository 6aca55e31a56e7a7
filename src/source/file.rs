//! Flow files and stdin as sources of lines: a file followed like `tail -f` (new lines as they are
//! written, from the start again when it is truncated, the new file when it is rotated), and stdin
//! read line by line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::ingest::{text_line, TextLine};

/// Reads a file like `tail -f`.
pub struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    position: u64,
    identity: Option<(u64, u64)>,
    /// A line read up to where the file ends now, waiting for the rest.
    partial: Vec<u8>,
}

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
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete lines available now.
    pub fn read_available(&mut self) -> io::Result<Vec<TextLine>> {
        let mut lines = Vec::new();
        loop {
            let read = self.reader.read_until(b'\n', &mut self.partial)?;
            if read == 0 {
                break;
            }
            self.position += read as u64;
            if self.partial.ends_with(b"\n") {
                lines.push(text_line(std::mem::take(&mut self.partial)));
            }
        }
        Ok(lines)
    }

    /// After reaching the end: start over on truncation, switch files on rotation.
    pub fn check_replaced(&mut self) -> io::Result<()> {
        let Ok(metadata) = std::fs::metadata(&self.path) else {
            return Ok(());
        };
        if identity(&metadata) != self.identity {
            *self = Follower::open(self.path.clone())?;
        } else if metadata.len() < self.position {
            self.reader.seek(SeekFrom::Start(0))?;
            self.position = 0;
            self.partial.clear();
        }
        Ok(())
    }
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
