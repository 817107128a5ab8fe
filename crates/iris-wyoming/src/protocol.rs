//! Wyoming's framing: a JSON header line, then `data_length` bytes of JSON data (merged over
//! the header's own `data`), then `payload_length` bytes of payload. Bounded, so a client
//! cannot make Iris allocate what it likes.

use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The protocol version Iris speaks (that of the `wyoming` 1.x package it was tested with).
pub const VERSION: &str = "1.8.0";
const MAX_LINE: usize = 64 * 1024;
const MAX_DATA: usize = 1 << 20;
const MAX_PAYLOAD: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad event header: {0}")]
    Header(String),
    #[error("event too large: {0}")]
    TooLarge(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Self { kind: kind.to_owned(), data, payload: Vec::new() }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Self {
        self.payload = payload;
        self
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// The next event, or `None` at a clean end of the stream.
pub async fn read_event<R: tokio::io::AsyncRead + Unpin>(r: &mut BufReader<R>) -> Result<Option<Event>, ProtocolError> {
    let mut line = Vec::new();
    let n = (&mut *r).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLarge(format!("a header line over {MAX_LINE} bytes")));
    }
    let header: Value = serde_json::from_slice(&line).map_err(|e| ProtocolError::Header(e.to_string()))?;
    let kind = header.get("type").and_then(Value::as_str).ok_or_else(|| ProtocolError::Header("no \"type\"".into()))?.to_owned();
    let mut data = header.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let length = |key: &str, max: usize| -> Result<usize, ProtocolError> {
        // Absent is 0; anything but a whole number (negative, text, a fraction) is refused,
        // never read as 0 and the bytes that follow taken for the next header.
        let n = match header.get(key) {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or_else(|| ProtocolError::Header(format!("{key} is {v}, not a byte count")))?,
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max {
            return Err(ProtocolError::TooLarge(format!("{key} {n} is over {max}")));
        }
        Ok(n)
    };
    let (data_len, payload_len) = (length("data_length", MAX_DATA)?, length("payload_length", MAX_PAYLOAD)?);
    if data_len > 0 {
        let mut buf = vec![0; data_len];
        r.read_exact(&mut buf).await?;
        let extra: Value = serde_json::from_slice(&buf).map_err(|e| ProtocolError::Header(format!("data: {e}")))?;
        if let Value::Object(m) = extra {
            data.extend(m);
        }
    }
    let mut payload = vec![0; payload_len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Event { kind, data, payload }))
}

pub async fn write_event<W: AsyncWrite + Unpin>(w: &mut W, e: &Event) -> Result<(), ProtocolError> {
    let mut header = json!({ "type": e.kind, "version": VERSION });
    let data =
        if e.data.is_empty() { Vec::new() } else { serde_json::to_vec(&e.data).map_err(|x| ProtocolError::Header(x.to_string()))? };
    if !data.is_empty() {
        header["data_length"] = json!(data.len());
    }
    if !e.payload.is_empty() {
        header["payload_length"] = json!(e.payload.len());
    }
    let mut out = serde_json::to_vec(&header).map_err(|x| ProtocolError::Header(x.to_string()))?;
    out.push(b'\n');
    out.extend_from_slice(&data);
    out.extend_from_slice(&e.payload);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let e = Event::new("audio-chunk", json!({ "rate": 16000, "width": 2, "channels": 1 })).with_payload(vec![1, 2, 3, 4]);
        let mut buf = Vec::new();
        write_event(&mut buf, &e).await.unwrap();
        let mut r = BufReader::new(&buf[..]);
        assert_eq!(read_event(&mut r).await.unwrap(), Some(e));
        assert_eq!(read_event(&mut r).await.unwrap(), None);
        let huge = format!("{{\"type\":\"x\",\"payload_length\":{}}}\n", 1u64 << 40);
        assert!(matches!(read_event(&mut BufReader::new(huge.as_bytes())).await, Err(ProtocolError::TooLarge(_))));
        assert!(matches!(read_event(&mut BufReader::new(&b"not json\n"[..])).await, Err(ProtocolError::Header(_))));
        for bad in ["-5", "\"12\"", "1.5"] {
            let line = format!("{{\"type\":\"x\",\"payload_length\":{bad}}}\n");
            assert!(matches!(read_event(&mut BufReader::new(line.as_bytes())).await, Err(ProtocolError::Header(_))), "{bad}");
        }
    }
}
