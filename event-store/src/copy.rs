//! PostgreSQL's binary `COPY … TO STDOUT (FORMAT binary)`, parsed as it arrives: the fast way
//! to read many rows (no row objects, no text conversions). The log's bulk read
//! ([`crate::EventStore::read_log_bulk`]) and the auditors' verify use it.

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01): a `timestamptz`'s binary form
/// counts from the latter.
pub const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Binary `COPY` data that is not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("binary COPY data at byte {at} of its row: {what}")]
pub struct CopyError {
    /// Where in the row (or the header).
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

/// Splits a binary `COPY` arriving in pieces into whole rows for `on_row`. PostgreSQL sends a
/// row per message, so rows are parsed where they arrived; a row split across pieces (which
/// the protocol allows) is put together first.
#[derive(Debug)]
pub struct CopyRows<F, E> {
    on_row: F,
    /// The start of a row whose end has not arrived.
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<F, E> CopyRows<F, E>
where
    F: FnMut(CopyReader<'_>) -> Result<(), E>,
    E: From<CopyError>,
{
    /// Rows for `on_row`, once they come.
    pub fn new(on_row: F) -> Self {
        Self {
            on_row,
            pending: Vec::new(),
            header_read: false,
            ended: false,
            error: std::marker::PhantomData,
        }
    }

    /// The next piece of the `COPY`, as it arrived.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), E> {
        if self.pending.is_empty() {
            let used = self.rows(piece)?;
            self.pending.extend_from_slice(&piece[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(piece);
            let used = self.rows(&pending)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Hands over the whole rows at the start of `bytes`; returns how many bytes they took.
    fn rows(&mut self, bytes: &[u8]) -> Result<usize, E> {
        let mut at = 0;
        if !self.header_read {
            let mut reader = CopyReader { bytes, at: 0 };
            match reader.header() {
                Ok(()) => {}
                Err(_) if bytes.len() < CopyReader::HEADER_LENGTH => return Ok(0),
                Err(error) => return Err(error.into()),
            }
            self.header_read = true;
            at = reader.at;
        }
        while at < bytes.len() {
            if self.ended {
                return Err(CopyReader { bytes, at }.error("data after the end").into());
            }
            let Some(length) = CopyReader::row_length(&bytes[at..])? else {
                break;
            };
            if length == 2 {
                // The trailer: a column count of -1.
                self.ended = true;
            } else {
                (self.on_row)(CopyReader {
                    bytes: &bytes[at..at + length],
                    at: 0,
                })?;
            }
            at += length;
        }
        Ok(at)
    }

    /// The `COPY` is over: it must have ended with its trailer.
    pub fn finish(self) -> Result<(), E> {
        if self.ended && self.pending.is_empty() {
            Ok(())
        } else {
            Err(CopyError {
                at: 0,
                what: "the data ends before the trailer".to_owned(),
            }
            .into())
        }
    }
}

fn be_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// A cursor over PostgreSQL's binary `COPY` format: a header, then per row a 16-bit column
/// count and per column a 32-bit length (-1 for null) and the value's binary form; -1 ends it.
#[derive(Debug)]
pub struct CopyReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> CopyReader<'a> {
    pub const SIGNATURE: &'static [u8] = b"PGCOPY\n\xff\r\n\0";
    /// The signature, the flags and the header extension's length (PostgreSQL sends none).
    const HEADER_LENGTH: usize = Self::SIGNATURE.len() + 8;

    /// The length of the row (or, 2, of the trailer) at the start of `bytes`; `None` if it has
    /// not all arrived.
    fn row_length(bytes: &[u8]) -> Result<Option<usize>, CopyError> {
        let mut reader = CopyReader { bytes, at: 0 };
        let Ok(columns) = reader.i16() else {
            return Ok(None);
        };
        if columns == -1 {
            return Ok(Some(2));
        }
        if columns < 0 {
            return Err(reader.error("a negative column count"));
        }
        for _ in 0..columns {
            let Ok(length) = reader.i32() else {
                return Ok(None);
            };
            if length == -1 {
                continue;
            }
            let length = usize::try_from(length).map_err(|_| reader.error("a negative length"))?;
            if reader.take(length).is_err() {
                return Ok(None);
            }
        }
        Ok(Some(reader.at))
    }

    /// What is wrong here.
    pub fn error(&self, what: &str) -> CopyError {
        CopyError {
            at: self.at,
            what: what.to_owned(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CopyError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("ends early"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn i16(&mut self) -> Result<i16, CopyError> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, CopyError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn header(&mut self) -> Result<(), CopyError> {
        if self.take(Self::SIGNATURE.len())? != Self::SIGNATURE {
            return Err(self.error("not a binary COPY"));
        }
        let _flags = self.i32()?;
        let extension = usize::try_from(self.i32()?).map_err(|_| self.error("header"))?;
        self.take(extension)?;
        Ok(())
    }

    /// Reads a row's column count, which must be `columns`.
    pub fn row(&mut self, columns: i16) -> Result<(), CopyError> {
        match self.i16()? {
            count if count == columns => Ok(()),
            count => Err(self.error(&format!("a row of {count} columns, not {columns}"))),
        }
    }

    /// A column's value, `None` when null.
    pub fn field(&mut self) -> Result<Option<&'a [u8]>, CopyError> {
        let length = self.i32()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| self.error("a negative length"))?;
        self.take(length).map(Some)
    }

    /// A column that may not be null.
    pub fn bytes(&mut self) -> Result<&'a [u8], CopyError> {
        self.field()?
            .ok_or_else(|| self.error("an unexpected null"))
    }

    pub fn int8(&mut self) -> Result<i64, CopyError> {
        let bytes = self.bytes()?;
        be_i64(bytes).ok_or_else(|| self.error("an int8 of the wrong size"))
    }

    pub fn int4(&mut self) -> Result<i32, CopyError> {
        let bytes = self.bytes()?;
        let bytes: [u8; 4] = bytes
            .try_into()
            .map_err(|_| self.error("an int4 of the wrong size"))?;
        Ok(i32::from_be_bytes(bytes))
    }

    pub fn uuid(&mut self) -> Result<[u8; 16], CopyError> {
        let bytes = self.bytes()?;
        bytes
            .try_into()
            .map_err(|_| self.error("a uuid of the wrong size"))
    }

    pub fn optional_uuid(&mut self) -> Result<Option<[u8; 16]>, CopyError> {
        match self.field()? {
            None => Ok(None),
            Some(bytes) => bytes
                .try_into()
                .map(Some)
                .map_err(|_| self.error("a uuid of the wrong size")),
        }
    }
}
