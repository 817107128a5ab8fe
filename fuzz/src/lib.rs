//! One function per parser that takes outside bytes, each called by its libFuzzer target
//! (`fuzz_targets/`, built by `cargo fuzz` on nightly) and by the corpus replay in
//! `fuzz/tests/replay.rs` (stable, in the test suite). A target fails by panicking, by
//! allocating past libFuzzer's `-malloc_limit_mb`, or by running past `-timeout`; an error
//! *result* is the parser doing its job.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The bytes as a file, as a user's upload reaches the decoders (the same file each time).
fn as_file(tag: &str, data: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("iris-fuzz-{tag}-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("temp file");
    f.write_all(data).expect("temp file");
    path
}

/// WAV files (the CLI, `/api/try`, `/v1/audio/transcriptions`).
pub fn wav(data: &[u8]) {
    if let Ok(pcm) = iris_audio::load_speech(&as_file("wav", data)) {
        // 16 kHz mono out, whatever the header claimed: never more samples than bytes allow
        // (the smallest sample is one byte, the lowest rate 4 kHz: at most 4x as many).
        assert!(pcm.len() <= data.len() * 4 + 16, "{} samples from {} bytes", pcm.len(), data.len());
    }
}

/// Photos (the CLI, `/api/try`, chat `image_url`s).
pub fn image(data: &[u8]) {
    if let Ok(img) = iris_image::load_image(&as_file("image", data)) {
        assert_eq!(img.rgb.len(), img.width as usize * img.height as usize * 3);
    }
}

/// `config.toml` (and the panel's settings, which are saved as it): what parses also
/// validates, and what is saved reads back the same.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("fuzz.toml");
    if let Ok(c) = iris_config::Config::parse(text, path) {
        let again = iris_config::Config::parse(&c.to_toml(), path).expect("a saved config reads back");
        assert_eq!(again, c);
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

/// Wyoming's framing: events read one after another from a client's bytes.
pub fn wyoming(data: &[u8]) {
    runtime().block_on(async {
        let mut r = tokio::io::BufReader::new(data);
        for _ in 0..64 {
            match iris_wyoming::protocol::read_event(&mut r).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    });
}

/// OpenAI chat request bodies, parsed and bounded as `/v1/chat/completions` does.
pub fn chat(data: &[u8]) {
    let _ = iris_web::check_chat_body(data);
}

/// Multipart uploads (`/api/try`, and the form of `/v1/audio/transcriptions`), with the audio
/// and photo parts decoded as the server decodes them.
pub fn multipart(data: &[u8]) {
    let form = runtime().block_on(iris_web::read_form_bytes("multipart/form-data; boundary=IRISFUZZ", data.to_vec()));
    if let Ok(q) = form {
        if let Some(audio) = q.audio {
            assert!(audio.len() <= data.len() * 4 + 16, "{} samples from {} bytes", audio.len(), data.len());
        }
        if let Some(img) = q.image {
            assert_eq!(img.rgb.len(), img.width as usize * img.height as usize * 3);
        }
    }
}

/// GGUF model headers (a model file a user imports, or a corrupted download), read as Iris
/// loads them.
pub fn gguf(data: &[u8]) {
    let mut cursor = std::io::Cursor::new(data);
    if let Ok(content) = iris_llm_cpu::read_gguf(&mut cursor) {
        for (name, info) in content.tensor_infos.iter().take(1024) {
            let _ = (name.len(), info.shape.elem_count(), info.offset);
        }
    }
}
