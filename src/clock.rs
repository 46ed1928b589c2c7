//! The few facts about the running environment that objects record: the time, host and user.
//! Kept in one place so that format code never reads them itself.

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub fn hostname() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn username() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default()
}
