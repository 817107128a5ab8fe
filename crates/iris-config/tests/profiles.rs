//! The profiles in `pipelines/profiles/`: each loads and checks, lays its settings over the
//! current ones without touching the rest, and a profile with a key or value the settings do not
//! take is refused with its name.

use iris_config::{Config, Profile};

#[test]
fn every_profile_loads_and_is_valid() {
    let all = Profile::all().unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["home", "vision-aid", "kiosk", "headless"]);
    for p in &all {
        let c = p.apply(&Config::default()).unwrap();
        assert_eq!(c.profile, p.name);
        assert!(!p.title.is_empty() && !p.description.is_empty());
        let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../pipelines/{}.toml", p.pipeline));
        assert!(pipeline.is_file(), "{}: no {}", p.name, pipeline.display());
    }
}

#[test]
fn a_profile_sets_what_its_use_needs_and_keeps_the_rest() {
    let mut mine = Config::default();
    mine.assistant.name = "Nora".into();
    mine.models.llm = "qwen2.5-coder-1.5b-instruct".into();
    mine.speech.rate = 1.2;
    let home = Profile::named("home").unwrap().apply(&mine).unwrap();
    assert!(home.audio.enabled && home.audio.mode == "wake_word" && !home.kiosk.enabled && !home.camera.enabled);
    assert_eq!((home.assistant.name.as_str(), home.models.llm.as_str(), home.speech.rate), ("Nora", "qwen2.5-coder-1.5b-instruct", 1.2));

    let aid = Profile::named("vision-aid").unwrap().apply(&home).unwrap();
    assert!(aid.camera.enabled && aid.audio.enabled);
    assert!(aid.speech.rate < 1.0 && aid.assistant.max_sentences <= 2);

    let kiosk = Profile::named("kiosk").unwrap().apply(&aid).unwrap();
    assert!(kiosk.kiosk.enabled && !kiosk.audio.enabled && !kiosk.camera.enabled);
    assert_eq!(kiosk.assistant.name, "Nora");

    let headless = Profile::named("headless").unwrap().apply(&kiosk).unwrap();
    assert!(!headless.kiosk.enabled && !headless.audio.enabled && headless.wyoming.enabled);
    // Only this machine and the listed addresses may use Wyoming; the profile lists none.
    assert!(headless.wyoming.allow.is_empty());
}

#[test]
fn a_bad_profile_is_refused_with_its_name() {
    let unknown = Profile::named("party").unwrap_err().to_string();
    assert!(unknown.contains("party") && unknown.contains("home, vision-aid, kiosk, headless"), "{unknown}");
    let base = "name = \"home\"\ntitle = \"t\"\ndescription = \"d\"\npipeline = \"listen\"\n";
    for (extra, says) in [
        ("[settings.audio]\nvolume = 3\n", "volume"),
        ("[settings.speech]\nrate = 9.0\n", "speech.rate"),
        ("[settings.kiosk]\nidle_reset_s = 1\n", "kiosk.idle_reset_s"),
    ] {
        let e = Profile::parse("home", &format!("{base}{extra}")).unwrap_err().to_string();
        assert!(e.starts_with("profile home:") && e.contains(says), "{e}");
    }
    let e = Profile::parse("home", &base.replace("listen", "party")).unwrap_err().to_string();
    assert!(e.contains("pipeline"), "{e}");
    // The settings file names a profile that exists, or none.
    let e = Config::parse("profile = \"party\"\n", std::path::Path::new("config.toml")).unwrap_err().to_string();
    assert!(e.contains("profile"), "{e}");
}
