//! Small helpers shared by the checker: "did you mean" suggestions, RFC 3339 times and
//! duration limits.

/// The candidate closest to `name`, when it is close enough to be a likely typo.
pub(crate) fn best<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        if cand == name {
            continue;
        }
        let dist = if cand.to_lowercase() == lower {
            0
        } else {
            strsim::levenshtein(name, cand)
        };
        let longest = name.chars().count().max(cand.chars().count());
        // A third of the letters may differ; one edit is always allowed for short names.
        let allowed = (longest / 3).max(1);
        if dist <= allowed && best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// `help` text for an unknown name: a suggestion when one is close, otherwise the list of
/// what exists (up to a handful), otherwise `fallback`.
pub(crate) fn help_for<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    what: &str,
    fallback: &str,
) -> String {
    let mut all: Vec<&str> = candidates.into_iter().collect();
    if let Some(s) = best(name, all.iter().copied()) {
        return format!("did you mean `{s}`?");
    }
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return fallback.to_string();
    }
    let shown: Vec<String> = all.iter().take(8).map(|c| format!("`{c}`")).collect();
    let more = if all.len() > 8 {
        format!(" and {} more", all.len() - 8)
    } else {
        String::new()
    };
    format!("the {what} are {}{more}", shown.join(", "))
}

/// An RFC 3339 time with an offset (`2026-03-01T00:00:00Z`) as microseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_microsecond())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time ({e})"))
}

/// The longest duration accepted anywhere: 100 years. Longer ones are typos, and they would
/// overflow microsecond arithmetic on timestamps.
pub(crate) const MAX_DURATION_SECS: u64 = 3_155_760_000;

/// Seconds as the shortest exact duration literal (`172800` -> `2d`).
pub fn duration_text(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (604_800, "w"),
        (86_400, "d"),
        (3600, "h"),
        (60, "m"),
        (1, "s"),
    ];
    if secs == 0 {
        return "0s".to_string();
    }
    for (n, unit) in UNITS {
        if secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(best("reacll", ["recall", "precision"]), Some("recall"));
        assert_eq!(best("Recall", ["recall"]), Some("recall"));
        assert_eq!(best("zzz", ["recall", "mean"]), None);
        assert_eq!(best("x", ["y"]), Some("y"));
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
        assert!(parse_time("2026-01-01").is_err());
        assert_eq!(duration_text(172_800), "2d");
        assert_eq!(duration_text(90), "90s");
        assert_eq!(duration_text(1_209_600), "2w");
    }
}
