//! Reading a GGUF file's header, safely. candle's reader bounds every count by the file's size,
//! but divides by `general.alignment` without checking it: a file saying 0 panics the loader
//! (found by the `gguf` fuzz target). So the metadata is walked here first, without keeping
//! anything, and an alignment that is not a power of two is refused by name, as llama.cpp does.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::Content;

/// The header of the GGUF file `r` holds, or why it is not one Iris can read.
pub fn read_gguf<R: Read + Seek>(r: &mut R) -> Result<Content, String> {
    check_alignment(r)?;
    r.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Content::read(r).map_err(|e| e.to_string())
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Bytes of one scalar of GGUF value type `t`.
fn scalar_size(t: u32) -> Option<u64> {
    match t {
        0 | 1 | 7 => Some(1), // u8, i8, bool
        2 | 3 => Some(2),     // u16, i16
        4..=6 => Some(4),     // u32, i32, f32
        10..=12 => Some(8),   // u64, i64, f64
        _ => None,
    }
}

struct Walk<'a, R> {
    r: &'a mut R,
    len: u64,
}

impl<R: Read + Seek> Walk<'_, R> {
    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b).map_err(|e| format!("gguf: {e}"))?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b).map_err(|e| format!("gguf: {e}"))?;
        Ok(u64::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        let at = self.r.stream_position().map_err(|e| e.to_string())?;
        if at.checked_add(n).is_none_or(|end| end > self.len) {
            return Err("gguf: a value runs past the end of the file".into());
        }
        self.r.seek(SeekFrom::Current(n as i64)).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn string(&mut self, v1: bool) -> Result<Vec<u8>, String> {
        let n = if v1 { u64::from(self.u32()?) } else { self.u64()? };
        if n > 1 << 16 {
            self.skip(n)?;
            return Ok(Vec::new());
        }
        let mut s = vec![0u8; n as usize];
        self.r.read_exact(&mut s).map_err(|e| format!("gguf: {e}"))?;
        // As candle reads keys: trailing NULs dropped.
        while s.last() == Some(&0) {
            s.pop();
        }
        Ok(s)
    }

    /// Skips a value of type `t`; its number when it is a whole number.
    fn value(&mut self, t: u32, v1: bool, depth: u32) -> Result<Option<u64>, String> {
        match t {
            STRING => self.string(v1).map(|_| None),
            ARRAY if depth < 4 => {
                let elem = self.u32()?;
                let count = if v1 { u64::from(self.u32()?) } else { self.u64()? };
                match scalar_size(elem) {
                    Some(size) => self.skip(count.checked_mul(size).ok_or("gguf: an array too large")?)?,
                    None => {
                        if count > self.len {
                            return Err("gguf: an array longer than the file".into());
                        }
                        for _ in 0..count {
                            self.value(elem, v1, depth + 1)?;
                        }
                    }
                }
                Ok(None)
            }
            t => {
                let size = scalar_size(t).ok_or_else(|| format!("gguf: unknown value type {t}"))?;
                let mut b = [0u8; 8];
                self.r.read_exact(&mut b[..size as usize]).map_err(|e| format!("gguf: {e}"))?;
                let n = u64::from_le_bytes(b);
                // Signed types read as negative are no alignment at all.
                let signed_negative = matches!((t, size), (1, 1) | (3, 2) | (5, 4)) && (n >> (size * 8 - 1)) & 1 == 1;
                Ok((matches!(t, 0..=5 | 10 | 11) && !signed_negative).then_some(n))
            }
        }
    }
}

fn check_alignment<R: Read + Seek>(r: &mut R) -> Result<(), String> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    r.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut w = Walk { r, len };
    let magic = w.u32()?;
    // Both byte orders of the magic, as candle takes them (its reader names anything else).
    if magic != u32::from_le_bytes(*b"GGUF") && magic != u32::from_le_bytes(*b"FUGG") {
        return Ok(());
    }
    let version = w.u32()?;
    let v1 = version == 1;
    let (_tensors, kvs) = if v1 { (u64::from(w.u32()?), u64::from(w.u32()?)) } else { (w.u64()?, w.u64()?) };
    for _ in 0..kvs.min(len) {
        let key = w.string(v1)?;
        let t = w.u32()?;
        let n = w.value(t, v1, 0)?;
        if key == b"general.alignment" {
            if let Some(a) = n.filter(|a| *a == 0 || !a.is_power_of_two()) {
                return Err(format!("gguf: general.alignment is {a}; it must be a power of two"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(alignment: u32) -> Vec<u8> {
        let key = b"general.alignment";
        let mut g = b"GGUF".to_vec();
        g.extend(3u32.to_le_bytes());
        g.extend(0u64.to_le_bytes());
        g.extend(1u64.to_le_bytes());
        g.extend((key.len() as u64).to_le_bytes());
        g.extend(key);
        g.extend(4u32.to_le_bytes());
        g.extend(alignment.to_le_bytes());
        g.extend([0u8; 64]);
        g
    }

    /// The fuzz target's find: alignment 0 made candle divide by zero.
    #[test]
    fn an_alignment_that_is_not_a_power_of_two_is_refused() {
        for a in [0, 3, 48] {
            let e = read_gguf(&mut std::io::Cursor::new(header(a))).unwrap_err();
            assert!(e.contains(&format!("general.alignment is {a}")), "{e}");
        }
        assert!(read_gguf(&mut std::io::Cursor::new(header(32))).is_ok());
        // The key as the fuzzer wrote it, NUL-padded, which candle reads as the same key.
        let padded = [&header(0)[..24], &[20, 0, 0, 0, 0, 0, 0, 0], b"general.alignment\0\0\0", &header(0)[48..]].concat();
        assert!(read_gguf(&mut std::io::Cursor::new(padded)).is_err());
        // The fuzzer's second find: the magic written the other way round, which candle accepts.
        let mut swapped = header(0);
        swapped[..4].copy_from_slice(b"FUGG");
        assert!(read_gguf(&mut std::io::Cursor::new(swapped)).is_err());
    }
}
