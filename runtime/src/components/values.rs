//! Parsing of single field values. Each function returns the predicate of an error message
//! ("must be …, got …"); the caller prefixes the field and the location.

use std::path::Path;
use std::time::Duration;

/// Replaces `${env:NAME}` and `${file:PATH}` with an environment variable or a file's contents
/// (one trailing newline removed), so secrets need not be written into component files.
/// A relative `PATH` is relative to the component file's folder.
pub(crate) fn interpolate(value: &str, base_dir: &Path) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(
                "has a \"${\" without its closing \"}\": write ${env:NAME} or ${file:PATH}".into(),
            );
        };
        let reference = &after[..end];
        match reference.split_once(':') {
            Some(("env", name)) if !name.is_empty() => match std::env::var(name) {
                Ok(v) => out.push_str(&v),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!(
                        "refers to environment variable {name}, which is not set: set it, or \
                         write the value in the file"
                    ))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!(
                        "refers to environment variable {name}, which is not UTF-8"
                    ))
                }
            },
            Some(("file", path)) if !path.is_empty() => {
                let full = base_dir.join(path);
                match std::fs::read_to_string(&full) {
                    Ok(v) => out.push_str(v.strip_suffix('\n').unwrap_or(&v)),
                    Err(e) => {
                        return Err(format!(
                            "refers to file {}, which cannot be read: {e}",
                            full.display()
                        ))
                    }
                }
            }
            _ => {
                return Err(format!(
                    "has \"${{{reference}}}\": only ${{env:NAME}} and ${{file:PATH}} are replaced"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A whole number from `min` up, such as a count.
pub(crate) fn whole_number(value: &str, min: u32) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "must be a whole number ≥ {min} (at most {}), got \"{value}\"",
            u32::MAX
        )),
    }
}

/// A partition number.
pub(crate) fn partition(value: &str) -> Result<i32, String> {
    match value.trim().parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!(
            "must be a partition number (a whole number ≥ 0), got \"{value}\""
        )),
    }
}

/// Partition numbers separated by commas, each once: `0, 2, 5`.
pub(crate) fn partition_list(value: &str) -> Result<Vec<i32>, String> {
    let mut partitions = Vec::new();
    for item in value.split(',').map(str::trim) {
        let partition = partition(item).map_err(|_| {
            format!("must be partition numbers separated by commas, e.g. \"0, 2\"; got \"{value}\"")
        })?;
        if partitions.contains(&partition) {
            return Err(format!("lists partition {partition} twice"));
        }
        partitions.push(partition);
    }
    Ok(partitions)
}

/// A duration with a unit: `500ms`, `30s`, `2m`, `1h 30m`.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(n) = value.parse::<u64>() {
        return Err(format!(
            "must be a duration with a unit such as 500ms, 30s or 2m; got \"{value}\" \
             (did you mean {n}ms or {n}s?)"
        ));
    }
    match humantime::parse_duration(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("must be longer than zero, got \"{value}\"")),
        Err(_) => Err(format!(
            "must be a duration with a unit such as 500ms, 30s or 2m; got \"{value}\""
        )),
    }
}

/// `true` or `false`.
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("must be true or false, got \"{value}\"")),
    }
}

/// One of a fixed set of words.
pub(crate) fn one_of<T: Copy>(value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value.trim())
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("must be one of {}; got \"{value}\"", names.join(", "))
        })
}

/// A legal Kafka topic name: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn topic(value: &str) -> Result<String, String> {
    if is_name(value, 249) && value != "." && value != ".." {
        Ok(value.to_string())
    } else {
        Err(format!(
            "must be a Kafka topic name (1-249 letters, digits, '.', '_' or '-'), got \"{value}\""
        ))
    }
}

/// A component id: what processes and `sluice run` refer to.
pub(crate) fn id(value: &str) -> Result<String, String> {
    if is_name(value, 200) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "must be 1-200 letters, digits, '.', '_' or '-', got \"{value}\""
        ))
    }
}

/// 1 to `max` of the characters Kafka allows in topic names, which we use for ids too.
fn is_name(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_env_and_files() {
        std::env::set_var("SLUICE_TEST_INTERPOLATE", "s3cret");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw.txt"), "from-file\n").expect("write");
        assert_eq!(
            interpolate(
                "a-${env:SLUICE_TEST_INTERPOLATE}-${file:pw.txt}",
                dir.path()
            ),
            Ok("a-s3cret-from-file".into())
        );
        assert_eq!(
            interpolate("${env:SLUICE_TEST_SURELY_UNSET}", dir.path()),
            Err(
                "refers to environment variable SLUICE_TEST_SURELY_UNSET, which is not set: \
                 set it, or write the value in the file"
                    .into()
            )
        );
        assert!(interpolate("${file:missing.txt}", dir.path())
            .unwrap_err()
            .starts_with("refers to file "));
        assert_eq!(
            interpolate("${vault:x}", dir.path()),
            Err("has \"${vault:x}\": only ${env:NAME} and ${file:PATH} are replaced".into())
        );
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            duration("10"),
            Err(
                "must be a duration with a unit such as 500ms, 30s or 2m; got \"10\" \
                 (did you mean 10ms or 10s?)"
                    .into()
            )
        );
        assert!(duration("0s").is_err());
    }

    #[test]
    fn numbers_and_topics() {
        assert_eq!(whole_number("5", 0), Ok(5));
        assert_eq!(
            whole_number("ten", 0),
            Err("must be a whole number ≥ 0 (at most 4294967295), got \"ten\"".into())
        );
        assert!(whole_number("-1", 0).is_err());
        assert_eq!(topic("orders.v1_x-y"), Ok("orders.v1_x-y".into()));
        assert!(topic("bad topic").is_err());
        assert!(topic("..").is_err());
        assert!(topic(&"a".repeat(250)).is_err());
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("topik", ["topic", "acks"]), Some("topic"));
        assert_eq!(did_you_mean("zzz", ["topic", "acks"]), None);
    }
}
