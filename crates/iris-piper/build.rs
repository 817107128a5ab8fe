fn main() {
    // libespeak-ng (Debian: libespeak-ng-dev) provides the phonemizer.
    println!("cargo:rustc-link-lib=espeak-ng");
}
