//! PyTorch's legacy (pre-1.6, non-zip) `.pth` format, which torchvision's MobileNetV2 weights
//! still use: five pickles in a row (magic number, protocol, system info, the state dict with
//! storages as persistent ids, the storage keys), then each storage's raw little-endian data,
//! prefixed by its element count, in key order. candle reads only the zip format; its pickle
//! machine reads each of these streams.

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use crate::ClassifyError as Error;

/// The first pickle: protocol 2, LONG1 of 10 bytes (the magic number 0x1950a86a20f9469cfc6c,
/// little endian), STOP. Checked as bytes: it does not fit the pickle machine's 64-bit integers.
const MAGIC: [u8; 15] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];

fn next(r: &mut BufReader<Cursor<&[u8]>>) -> Result<Object, Error> {
    let mut stack = Stack::empty();
    stack.read_loop(r)?;
    Ok(stack.finalize()?)
}

/// Every tensor of the state dict, by name, as f32 on `device`.
pub fn load(bytes: &[u8], device: &Device) -> Result<HashMap<String, Tensor>, Error> {
    if !bytes.starts_with(&MAGIC) {
        let zip = bytes.starts_with(b"PK");
        return Err(Error::Format(
            if zip { "a zip-format PyTorch file; only the legacy format is read here" } else { "not a PyTorch file (bad magic number)" }
                .into(),
        ));
    }
    let mut r = BufReader::new(Cursor::new(&bytes[MAGIC.len()..]));
    let _protocol = next(&mut r)?;
    let _sys_info = next(&mut r)?;
    let state = next(&mut r)?;
    let keys = match next(&mut r)? {
        Object::List(keys) => {
            keys.into_iter().map(|k| k.unicode()).collect::<Result<Vec<_>, _>>().map_err(|_| Error::Format("storage keys".into()))?
        }
        _ => return Err(Error::Format("no storage key list".into())),
    };
    // The raw storages follow the pickles, each as a u64 element count and the data.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut infos = Vec::new();
    let entries = match state {
        Object::Dict(d) => d,
        // An OrderedDict is pickled as a call to `OrderedDict` plus its items.
        Object::Reduce { args, .. } | Object::Build { args, .. } => match *args {
            Object::Dict(d) => d,
            Object::Tuple(mut t) if !t.is_empty() => match t.remove(0) {
                Object::Dict(d) => d,
                _ => return Err(Error::Format("the state dict is not a dict".into())),
            },
            _ => return Err(Error::Format("the state dict is not a dict".into())),
        },
        _ => return Err(Error::Format("the state dict is not a dict".into())),
    };
    for (name, value) in entries {
        if let Some(info) = value.into_tensor_info(name, std::path::Path::new(""))? {
            infos.push(info);
        }
    }
    let size_of = |key: &str| infos.iter().find(|i| i.path.trim_start_matches('/') == key).map_or(4, |i| i.dtype.size_in_bytes());
    for key in keys {
        let mut count = [0u8; 8];
        r.read_exact(&mut count).map_err(|_| Error::Format("the file ends inside the tensor data".into()))?;
        let n = u64::from_le_bytes(count) as usize;
        let mut data = vec![0u8; n.checked_mul(size_of(&key)).ok_or_else(|| Error::Format("a storage too large".into()))?];
        r.read_exact(&mut data).map_err(|_| Error::Format("the file ends inside the tensor data".into()))?;
        storages.insert(key, data);
    }
    let mut tensors = HashMap::new();
    for info in infos {
        if info.name.ends_with("num_batches_tracked") {
            // A training counter (int64), not a weight.
            continue;
        }
        let key = info.path.trim_start_matches('/');
        let data = storages.get(key).ok_or_else(|| Error::Format(format!("{}: its storage {key} is missing", info.name)))?;
        if !info.layout.is_contiguous() || info.dtype != DType::F32 {
            return Err(Error::Format(format!("{}: only contiguous f32 tensors are supported", info.name)));
        }
        let start = info.layout.start_offset();
        let len = info.layout.shape().elem_count() * 4;
        let bytes = data.get(start..start + len).ok_or_else(|| Error::Format(format!("{}: outside its storage", info.name)))?;
        tensors.insert(info.name.clone(), Tensor::from_raw_buffer(bytes, DType::F32, info.layout.shape().dims(), device)?);
    }
    Ok(tensors)
}
