//! Every fuzz target on its corpus (`fuzz/corpus/TARGET`: the named seeds, and the inputs the
//! coverage-guided runs kept, named by their sha1) and on deterministic mutations of each seed:
//! the short run of each target in the test suite. The long runs are `fuzz/long-run.sh`.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("wav", iris_fuzz::wav),
    ("image", iris_fuzz::image),
    ("config", iris_fuzz::config),
    ("wyoming", iris_fuzz::wyoming),
    ("chat", iris_fuzz::chat),
    ("gguf", iris_fuzz::gguf),
    ("multipart", iris_fuzz::multipart),
];

/// Mutations per named seed.
const MUTATIONS: usize = 500;

/// xorshift64*: the same mutations on every run, so a failure here reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// libFuzzer's simplest moves: flip, set to an edge value, insert, delete, splice in a copy.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if out.len() >= 4 => {
                let i = at.min(out.len() - 4);
                let edge: [u32; 5] = [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff];
                out[i..i + 4].copy_from_slice(&edge[rng.below(5)].to_le_bytes());
            }
            2 => out.insert(at, rng.next() as u8),
            3 if at < out.len() => {
                out.remove(at);
            }
            _ => {
                let from = rng.below(out.len() + 1);
                let piece: Vec<u8> = out[from..(from + rng.below(16)).min(out.len())].to_vec();
                out.splice(at..at, piece);
            }
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().map(|e| e.path()).collect();
        files.sort();
        assert!(!files.is_empty(), "{name} has no corpus");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for file in &files {
            let seed = std::fs::read(file).unwrap();
            let caught = std::panic::catch_unwind(|| target(&seed));
            assert!(caught.is_ok(), "{name}: {} panicked", file.display());
            let kept = file.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == 40 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if kept {
                continue;
            }
            for _ in 0..MUTATIONS {
                let input = mutate(&seed, &mut rng);
                let caught = std::panic::catch_unwind(|| target(&input));
                assert!(caught.is_ok(), "{name}: a mutation of {} panicked; input: {:?}", file.display(), input);
            }
        }
    }
}
