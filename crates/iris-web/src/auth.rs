//! The owner's password (argon2), the sessions of logged-in browsers, API tokens, and login
//! throttling. Only hashes reach the disk; the file is replaced atomically.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A session lasts this long from login, and ends sooner after this long unused.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
pub const MIN_PASSWORD: usize = 8;
/// Failed password checks from one address (or one known browser) before each further try
/// waits, doubling, up to the cap.
pub const FREE_FAILURES: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(300);
/// Browsers remembered as the owner's (see [`Auth::login`]); the oldest is forgotten first.
const MAX_DEVICES: usize = 16;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    /// The owner's password as an argon2 PHC string.
    password: Option<String>,
    tokens: Vec<TokenRecord>,
    /// sha256 of the device cookies of browsers the owner has logged in from.
    #[serde(default)]
    devices: Vec<String>,
    /// Logged-in browsers, so a restart (an update, a power cut) logs nobody out: the sha256 of
    /// each session cookie, its CSRF token and when it began (Unix seconds).
    #[serde(default)]
    sessions: Vec<StoredSession>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSession {
    sha256: String,
    csrf: String,
    started: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    sha256: String,
}

pub struct Session {
    pub csrf: String,
    /// Unix seconds, as stored.
    started: u64,
    last_used: Instant,
}

struct Failures {
    count: u32,
    last: Instant,
}

pub struct Auth {
    path: PathBuf,
    file: Mutex<AuthFile>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<Who, Failures>>,
    /// Until set-up: the one-time code the setup page asks for, and the file that keeps it.
    setup_code: Mutex<Option<(String, PathBuf)>>,
}

/// The setup code's file, beside `panel.json`: readable by the box's owner only, so reading it
/// (or the console or journal Iris printed it to) proves the right to claim the box.
pub const SETUP_CODE_FILE: &str = "setup-code";

/// Whose failed password checks count together: a browser the owner has logged in from before
/// (its device cookie) counts on its own, so an attacker behind the same address (a NAT, a
/// proxy) cannot lock the owner out; anyone else counts by address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Address(IpAddr),
    Device(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not something to work around with weaker randomness.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    hex::encode(buf)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Equal without returning early: a token's hash must not leak through timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Reads `path` (missing: not set up yet). A damaged file is an error, never a reset: that
    /// would let anyone on the network set a new password.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!("{}: damaged ({e}); restore it, or delete it to set a new password on the next visit", path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AuthFile::default(),
            Err(e) => return Err(format!("{}: cannot read it: {e}", path.display())),
        };
        let setup_code = if file.password.is_none() { Some(setup_code(path)?) } else { None };
        // Sessions from before a restart; their idle time starts again now.
        let sessions = file
            .sessions
            .iter()
            .map(|s| (s.sha256.clone(), Session { csrf: s.csrf.clone(), started: s.started, last_used: Instant::now() }))
            .filter(|(_, s)| alive(s))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
            sessions: Mutex::new(sessions),
            failures: Mutex::default(),
            setup_code: Mutex::new(setup_code),
        })
    }

    /// The setup code and where it is kept, until Iris is set up.
    pub fn setup_code(&self) -> Option<(String, PathBuf)> {
        lock(&self.setup_code).clone()
    }

    pub fn is_set_up(&self) -> bool {
        lock(&self.file).password.is_some()
    }

    fn save(&self, file: &AuthFile) -> Result<(), ApiError> {
        let text = serde_json::to_string_pretty(file).map_err(|e| ApiError::Internal(e.to_string()))?;
        iris_models::store::write_atomic(&self.path, text.as_bytes())
            .map_err(|e| ApiError::Internal(format!("cannot write {}: {}", self.path.display(), iris_config::why_not_written(&e))))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600)).ok();
        }
        Ok(())
    }

    /// Sets the first password, for whoever has the setup code (tries throttled as passwords
    /// are). Refused once one exists.
    pub fn set_up(&self, who: &Who, code: &str, password: &str) -> Result<(), ApiError> {
        check_password(password)?;
        if self.is_set_up() {
            return Err(ApiError::Conflict("Iris is already set up; log in instead".into()));
        }
        let expected = lock(&self.setup_code).clone();
        let Some((expected, code_file)) = expected else {
            return Err(ApiError::Internal("no setup code was made; restart Iris".into()));
        };
        let given: String = code.chars().filter(char::is_ascii_digit).collect();
        self.throttled(who, || same(&given, &expected.replace('-', ""))).map_err(|e| match e {
            ApiError::Unauthorized => ApiError::Forbidden(format!(
                "the setup code is wrong; Iris printed it where it started (the console, or `journalctl -u iris`) and keeps it in {}",
                code_file.display()
            )),
            throttled => throttled,
        })?;
        let hash = hash_password(password)?;
        let mut file = lock(&self.file);
        if file.password.is_some() {
            return Err(ApiError::Conflict("Iris is already set up; log in instead".into()));
        }
        let mut next = file.clone();
        next.password = Some(hash);
        self.save(&next)?;
        *file = next;
        // Used once: a code read later from a backup or a log claims nothing.
        if let Some((_, path)) = lock(&self.setup_code).take() {
            std::fs::remove_file(path).ok();
        }
        Ok(())
    }

    /// Who is asking: the browser's device cookie if it is one the owner logged in from.
    pub fn who(&self, ip: IpAddr, device: Option<&str>) -> Who {
        match device.map(sha256_hex) {
            Some(hash) if lock(&self.file).devices.iter().any(|d| same(d, &hash)) => Who::Device(hash),
            _ => Who::Address(ip),
        }
    }

    /// Changes the password, checking the current one under the same throttle as logins.
    pub fn change_password(&self, who: &Who, old: &str, new: &str) -> Result<(), ApiError> {
        check_password(new)?;
        self.checked(who, old).map_err(|e| match e {
            ApiError::Unauthorized => ApiError::Forbidden("the current password is wrong".into()),
            throttled => throttled,
        })?;
        let hash = hash_password(new)?;
        let mut file = lock(&self.file);
        let mut next = file.clone();
        next.password = Some(hash);
        // Everyone else is logged out: a changed password usually means a leaked one.
        next.sessions.clear();
        self.save(&next)?;
        *file = next;
        lock(&self.sessions).clear();
        Ok(())
    }

    fn password_matches(&self, password: &str) -> bool {
        let Some(stored) = lock(&self.file).password.clone() else { return false };
        PasswordHash::new(&stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    }

    /// Checks `password` for `who`, throttled. The try is counted as a failure before the
    /// check starts, under the lock, so parallel tries cannot all pass the throttle before any
    /// of them is counted; a right password clears the count.
    fn checked(&self, who: &Who, password: &str) -> Result<(), ApiError> {
        self.throttled(who, || self.password_matches(password))
    }

    /// Runs `check` for `who` under the throttle: `Unauthorized` when it fails.
    fn throttled(&self, who: &Who, check: impl FnOnce() -> bool) -> Result<(), ApiError> {
        {
            let mut failures = lock(&self.failures);
            if let Some(wait) = failures.get(who).and_then(must_wait) {
                // Rounded up: a client that waits what it is told is let in.
                return Err(ApiError::Throttled { retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) });
            }
            if failures.len() > 10_000 {
                failures.retain(|_, f| f.last.elapsed() < MAX_WAIT);
            }
            let f = failures.entry(who.clone()).or_insert(Failures { count: 0, last: Instant::now() });
            f.count += 1;
            f.last = Instant::now();
        }
        if !check() {
            return Err(ApiError::Unauthorized);
        }
        lock(&self.failures).remove(who);
        Ok(())
    }

    /// Checks a login attempt; on success a new session id and the browser's device cookie
    /// (the one it came with if known, or a new one, remembered as the owner's).
    pub fn login(&self, who: &Who, password: &str) -> Result<(String, Option<String>), ApiError> {
        self.checked(who, password)?;
        let device = match who {
            Who::Device(_) => None,
            Who::Address(_) => {
                let secret = random_hex(24);
                let mut file = lock(&self.file);
                let mut next = file.clone();
                next.devices.push(sha256_hex(&secret));
                let excess = next.devices.len().saturating_sub(MAX_DEVICES);
                next.devices.drain(..excess);
                // Not remembered is not fatal: the owner is still logged in.
                self.save(&next).ok().map(|()| {
                    *file = next;
                    secret
                })
            }
        };
        Ok((self.new_session(), device))
    }

    pub fn new_session(&self) -> String {
        let id = random_hex(32);
        {
            let mut sessions = lock(&self.sessions);
            sessions.retain(|_, s| alive(s));
            let session = Session { csrf: random_hex(32), started: iris_engine::now_unix(), last_used: Instant::now() };
            sessions.insert(sha256_hex(&id), session);
        }
        self.store_sessions();
        id
    }

    /// Writes the live sessions to the file (only hashes of their cookies). Not fatal if it
    /// fails: the sessions still hold until a restart.
    fn store_sessions(&self) {
        let stored: Vec<StoredSession> = lock(&self.sessions)
            .iter()
            .filter(|(_, s)| alive(s))
            .map(|(hash, s)| StoredSession { sha256: hash.clone(), csrf: s.csrf.clone(), started: s.started })
            .collect();
        let mut file = lock(&self.file);
        let mut next = file.clone();
        next.sessions = stored;
        if self.save(&next).is_ok() {
            *file = next;
        }
    }

    /// The CSRF token of a live session, refreshing its idle timer.
    pub fn session(&self, id: &str) -> Option<String> {
        let key = sha256_hex(id);
        let mut sessions = lock(&self.sessions);
        let s = sessions.get_mut(&key)?;
        if !alive(s) {
            sessions.remove(&key);
            return None;
        }
        s.last_used = Instant::now();
        Some(s.csrf.clone())
    }

    pub fn logout(&self, id: &str) {
        lock(&self.sessions).remove(&sha256_hex(id));
        self.store_sessions();
    }

    /// Creates an API token; the secret is returned once and only its hash is kept.
    pub fn create_token(&self, name: &str) -> Result<(TokenRecord, String), ApiError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::Invalid { field: "name".into(), problem: "must be 1 to 64 printable characters".into() });
        }
        let secret = format!("iris_{}", random_hex(24));
        let record =
            TokenRecord { id: random_hex(4), name: name.to_owned(), created: iris_engine::now_unix(), sha256: sha256_hex(&secret) };
        let mut file = lock(&self.file);
        let mut next = file.clone();
        next.tokens.push(record.clone());
        self.save(&next)?;
        *file = next;
        Ok((TokenRecord { sha256: String::new(), ..record }, secret))
    }

    pub fn tokens(&self) -> Vec<TokenRecord> {
        lock(&self.file).tokens.iter().map(|t| TokenRecord { sha256: String::new(), ..t.clone() }).collect()
    }

    pub fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        let mut file = lock(&self.file);
        let mut next = file.clone();
        next.tokens.retain(|t| t.id != id);
        if next.tokens.len() == file.tokens.len() {
            return Err(ApiError::NotFound(format!("no token with id {id:?}")));
        }
        self.save(&next)?;
        *file = next;
        Ok(())
    }

    pub fn token_is_valid(&self, secret: &str) -> bool {
        let hash = sha256_hex(secret);
        lock(&self.file).tokens.iter().any(|t| same(&t.sha256, &hash))
    }
}

/// How long before the next try. The wait is capped, so the owner is never locked out for good.
fn must_wait(f: &Failures) -> Option<Duration> {
    if f.count < FREE_FAILURES {
        return None;
    }
    let wait = Duration::from_secs(1u64 << (f.count - FREE_FAILURES).min(16)).min(MAX_WAIT);
    wait.checked_sub(f.last.elapsed()).filter(|w| !w.is_zero())
}

fn alive(s: &Session) -> bool {
    iris_engine::now_unix().saturating_sub(s.started) < SESSION_LIFETIME.as_secs() && s.last_used.elapsed() < SESSION_IDLE
}

/// The setup code kept beside `panel_json`, made (twelve digits from the OS's random source,
/// about 40 bits) and written owner-only if there is none yet.
fn setup_code(panel_json: &Path) -> Result<(String, PathBuf), String> {
    let path = panel_json.with_file_name(SETUP_CODE_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let code = text.trim().to_owned();
        if code.len() == 14 && code.chars().filter(char::is_ascii_digit).count() == 12 {
            return Ok((code, path));
        }
    }
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("the operating system's random source failed: {e}"))?;
    let digits: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
    let code = format!("{}-{}-{}", &digits[..4], &digits[4..8], &digits[8..]);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create it: {e}", dir.display()))?;
    }
    iris_models::store::write_atomic(&path, format!("{code}\n").as_bytes())
        .map_err(|e| format!("{}: cannot write it: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).ok();
    }
    Ok((code, path))
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ApiError::Invalid {
            field: "password".into(),
            problem: format!("must be at least {MIN_PASSWORD} characters (and at most 1024 bytes)"),
        });
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| ApiError::Internal(e.to_string()))?.to_string())
}
