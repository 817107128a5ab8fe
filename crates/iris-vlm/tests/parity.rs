//! Iris's PaliGemma against transformers' own, on the fixtures made by
//! `models/vlm/make_paligemma_fixtures.py` (a tiny random-weight PaliGemma of the real
//! architecture, transformers 5.17 / torch 2.11; see `versions.json`).
//!
//! Tolerances: pixel values are 8-bit levels, so equal means within 1e-6; logits within 1e-4
//! (f32 on different kernels); the greedy answer must be the same tokens.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use iris_vlm::resize::resize_bicubic;
use iris_vlm::{pixel_values, Kernel, PaliGemma};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vlm/paligemma-tiny")
}

fn reference() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn preprocessing_matches_the_reference_processor() {
    let image = iris_image::load_image(&fixtures().join("image.png")).unwrap();
    let r = reference();
    // transformers' processor, shrinking 41x29 to the tiny model's 28x28: the whole chain.
    let ours = pixel_values(&image, 28, [0.5; 3], [0.5; 3], Kernel::Torch, &Device::Cpu).unwrap();
    let d = max_diff(&ours, &r["pixel_values"]);
    assert!(d < 1e-6, "28x28 pixel values differ by {d}");
    // Enlarging to the real checkpoints' 224x224: every 8-bit level equal, with transformers 5
    // (torchvision's kernel, CHW) and with Pillow's own resize (transformers 4.x, HWC).
    let (w, h) = (image.width as usize, image.height as usize);
    let torch = resize_bicubic(&image.rgb, w, h, 224, 224, Kernel::Torch);
    let theirs = r["pixel_values_224_u8"].flatten_all().unwrap().to_vec1::<u8>().unwrap();
    let plane = 224 * 224;
    let differ = (0..3 * plane).filter(|&k| torch[(k % plane) * 3 + k / plane] != theirs[k]).count();
    assert_eq!(differ, 0, "{differ} of {} values differ from transformers' processor", 3 * plane);
    let pillow = resize_bicubic(&image.rgb, w, h, 224, 224, Kernel::Pillow);
    let theirs = r["resized_224_pillow_u8"].flatten_all().unwrap().to_vec1::<u8>().unwrap();
    let differ = pillow.iter().zip(&theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} values differ from Pillow");
    // The two kernels really differ here, so each comparison above tests its own kernel.
    assert_ne!(torch, pillow);
}

#[test]
fn logits_and_greedy_answer_match_transformers() {
    let r = reference();
    let mut model = PaliGemma::load(&fixtures(), &Device::Cpu).unwrap();
    let ids: Vec<u32> = r["input_ids"].flatten_all().unwrap().to_vec1::<i64>().unwrap().into_iter().map(|i| i as u32).collect();
    let n_image = model.config.image_tokens();
    assert!(ids[..n_image].iter().all(|&i| i == model.config.image_token_index));
    let prompt = &ids[n_image..];
    let logits = model.prefix(&r["pixel_values"], prompt).unwrap();
    let d = max_diff(&logits, &r["logits"]);
    eprintln!("max |logit difference| = {d:.2e} over {} logits", logits.dim(0).unwrap());
    assert!(d < 1e-4, "logits differ by {d}");
    let expected: Vec<u32> = r["generated"].to_vec1::<i64>().unwrap().into_iter().map(|i| i as u32).collect();
    let ours = model.greedy(&r["pixel_values"], prompt, expected.len(), &[]).unwrap();
    assert_eq!(ours, expected);
}

/// The model behind the `Vlm` trait, as the LLM stage uses it: task prefix, tokenizer, greedy
/// answer. The tiny model's words mean nothing; what is checked is that the path runs and is
/// repeatable.
#[test]
fn answers_through_the_vlm_trait() {
    use iris_backend::Vlm;
    let dir = std::env::temp_dir().join(format!("iris-vlm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join(f), dir.join(f)).unwrap();
    }
    // A word-level vocabulary of the tiny model's 300 ids.
    let mut vocab = serde_json::Map::new();
    for (i, w) in ["<pad>", "<eos>", "<bos>", "<unk>"].iter().enumerate() {
        vocab.insert((*w).into(), i.into());
    }
    for i in 4..300 {
        vocab.insert(format!("w{i}"), i.into());
    }
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": { "type": "Whitespace" }, "post_processor": null, "decoder": null,
        "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "<unk>" }
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let mut vlm = iris_vlm::PaliGemmaVlm::load(&dir, &Device::Cpu).unwrap();
    let image = iris_image::load_image(&fixtures().join("image.png")).unwrap();
    let a = vlm.describe(&image, "What is in front of me?").unwrap();
    let b = vlm.describe(&image, "What is in front of me?").unwrap();
    assert!(!a.is_empty(), "no answer");
    assert_eq!(a, b);
    assert_eq!(iris_vlm::PaliGemmaVlm::task("Read this for me"), "ocr");
    assert_eq!(iris_vlm::PaliGemmaVlm::task("What is in front of me?"), "caption en");
    assert_eq!(iris_vlm::PaliGemmaVlm::task("How many cups are there?"), "answer en How many cups are there?");
    std::fs::remove_dir_all(dir).ok();
}
