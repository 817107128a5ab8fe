//! Reads CTranslate2 `model.bin` files (binary versions 4–6): named variables with shapes,
//! a dtype and raw little-endian data, plus aliases.

use std::collections::HashMap;

use super::ConvertError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::Bf16,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Variable {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// A scalar integer (CT2 stores head counts as int16/int32 scalars).
    pub fn as_int(&self) -> Option<i64> {
        match self.dtype {
            DType::I8 => self.data.first().map(|&b| i64::from(b as i8)),
            DType::I16 => self.data.get(..2).map(|b| i64::from(i16::from_le_bytes([b[0], b[1]]))),
            DType::I32 => self.data.get(..4).map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            _ => None,
        }
    }
}

pub struct Ct2Model {
    pub spec: String,
    pub variables: HashMap<String, Variable>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| ConvertError::Invalid(format!("the file ends early (wanted {n} bytes at offset {})", self.at)))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ConvertError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ConvertError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed, NUL-terminated string.
    fn string(&mut self) -> Result<String, ConvertError> {
        let n = usize::from(self.u16()?);
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec()).map_err(|_| ConvertError::Invalid("a variable name is not UTF-8".into()))
    }
}

pub fn parse(bytes: &[u8]) -> Result<Ct2Model, ConvertError> {
    let mut c = Cursor { bytes, at: 0 };
    let version = c.u32()?;
    if !(4..=6).contains(&version) {
        return Err(ConvertError::Invalid(format!("CTranslate2 binary version {version} (Iris reads 4 to 6)")));
    }
    let spec = c.string()?;
    let _revision = c.u32()?;
    let count = c.u32()?;
    let mut variables = HashMap::new();
    for _ in 0..count {
        let name = c.string()?;
        let rank = usize::from(c.u8()?);
        let shape = (0..rank).map(|_| c.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
        let type_id = c.u8()?;
        let dtype = DType::from_id(type_id).ok_or_else(|| ConvertError::Invalid(format!("{name}: unknown dtype {type_id}")))?;
        let nbytes = c.u32()? as usize;
        let data = c.take(nbytes)?.to_vec();
        variables.insert(name, Variable { shape, dtype, data });
    }
    let aliases = c.u32()?;
    for _ in 0..aliases {
        let alias = c.string()?;
        let target = c.string()?;
        if let Some(v) = variables.get(&target).cloned() {
            variables.insert(alias, v);
        }
    }
    Ok(Ct2Model { spec, variables })
}

/// IEEE half to single precision, exactly.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let mant = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rounded = (m + half - 1 + ((m >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    let rounded = mant + 0xfff + ((mant >> 13) & 1);
    let (e, m) = if rounded & 0x80_0000 != 0 { (e + 1, 0) } else { (e, rounded >> 13) };
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    sign | ((e as u16) << 10) | m as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_trips() {
        for h in [0u16, 0x3c00, 0xbc00, 0x7bff, 0x0001, 0x03ff, 0x3555, 0x7c00] {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "{h:#x}");
        }
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f32_to_f16(0.1), 0x2e66);
    }

    #[test]
    fn truncated_file_is_an_error() {
        let mut bytes = 6u32.to_le_bytes().to_vec();
        bytes.extend(5u16.to_le_bytes());
        bytes.extend(b"Spe");
        assert!(matches!(parse(&bytes), Err(ConvertError::Invalid(_))));
    }
}
