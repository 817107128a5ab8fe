//! ImageNet-1k class names from torchvision's wheel (`torchvision/models/_meta.py`, the list
//! `_IMAGENET_CATEGORIES`), written one per line in class order.

use std::path::Path;

use super::ConvertError;

pub fn imagenet(meta_py: &Path, out: &Path) -> Result<(), ConvertError> {
    let src = std::fs::read_to_string(meta_py).map_err(|e| ConvertError::Io(meta_py.into(), e))?;
    let bad = |m: &str| ConvertError::Invalid(format!("{}: {m}", meta_py.display()));
    let start = src.find("_IMAGENET_CATEGORIES = [").ok_or_else(|| bad("no _IMAGENET_CATEGORIES list"))?;
    let body = &src[start..];
    let end = body.find("\n]").ok_or_else(|| bad("the list does not end"))?;
    let names: Vec<&str> = body[..end].lines().skip(1).filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix("\",")).collect();
    if names.len() != 1000 {
        return Err(bad(&format!("{} class names, not 1000", names.len())));
    }
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(out, text).map_err(|e| ConvertError::Io(out.into(), e))
}
