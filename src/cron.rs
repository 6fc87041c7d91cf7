//! Airbyte's cron rules (DIGEST §4.1), shared by plan validation and the sandbox.
//!
//! Airbyte takes Quartz expressions of 6 or 7 fields (seconds first, optional year). A create or
//! patch strips one trailing ` UTC` and stores the time zone as UTC; any other suffix makes an
//! eighth part and is refused. Seconds and minutes must be plain numbers, which keeps syncs at
//! least an hour apart. Reads return the expression with ` UTC` appended.

/// Removes one trailing ` UTC`, as create and patch do.
pub fn strip_utc(expression: &str) -> &str {
    expression
        .trim_end()
        .strip_suffix(" UTC")
        .unwrap_or(expression)
        .trim_end()
}

/// Checks an expression the way create and patch do, after [`strip_utc`]. The error is the
/// message Airbyte puts in `data.message`.
pub fn check(expression: &str) -> Result<(), String> {
    let stripped = strip_utc(expression);
    let parts: Vec<&str> = stripped.split_whitespace().collect();
    if !(6..=7).contains(&parts.len()) {
        return Err(format!(
            "Cron expression contains {} parts, but 6 or 7 parts are expected (seconds minutes \
             hours day-of-month month day-of-week [year]); the time zone is always UTC.",
            parts.len()
        ));
    }
    for (index, part) in parts.iter().enumerate() {
        check_field(index, part)
            .map_err(|why| format!("The cron expression {stripped} is not valid: {why}."))?;
    }
    if !is_number(parts[0]) || !is_number(parts[1]) {
        return Err(format!(
            "The cron expression {stripped} is not valid: cron executions must be more than 1 \
             hour apart, so seconds and minutes must be single numbers."
        ));
    }
    match (parts[3], parts[5]) {
        ("?", "?") => Err(format!(
            "The cron expression {stripped} is not valid: '?' can only be used in one of \
             day-of-month and day-of-week."
        )),
        ("?", _) | (_, "?") => Ok(()),
        _ => Err(format!(
            "The cron expression {stripped} is not valid: support for specifying both a \
             day-of-week AND a day-of-month parameter is not implemented; use '?' in one of them."
        )),
    }
}

/// The time zone written after an expression (once [`strip_utc`] removed ` UTC`): a seventh or
/// later field with letters in it, such as `Europe/Berlin` or `CET` (a year holds only digits
/// and `*-,/`).
pub fn time_zone(expression: &str) -> Option<&str> {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    match parts.last() {
        Some(last) if parts.len() >= 7 && last.contains(|c: char| c.is_ascii_alphabetic()) => {
            Some(last)
        }
        _ => None,
    }
}

/// [`check`], for an expression a person wrote in a plan: a time zone after it is explained
/// (Airbyte keeps the zone apart from the expression, and its public API sets it to UTC) instead
/// of being refused as a year, as Airbyte's own message has it.
pub fn check_plan(expression: &str) -> Result<(), String> {
    let stripped = strip_utc(expression);
    let Some(zone) = time_zone(stripped) else {
        return check(expression);
    };
    let bare = stripped.strip_suffix(zone).unwrap_or(stripped).trim_end();
    let instead = match check(bare) {
        Ok(()) => format!(" (\"{bare}\" runs at those hours UTC)"),
        Err(_) => String::new(),
    };
    Err(format!(
        "The cron expression {stripped} is not valid: '{zone}' is a time zone, not a cron field. \
         Airbyte's cron is Quartz (seconds minutes hours day-of-month month day-of-week [year]) \
         and holds no time zone: Airbyte keeps the zone apart, in `cronTimeZone`, which its \
         public API sets to UTC on every create and update. Write the hours in UTC{instead}."
    ))
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

const FIELDS: [(&str, u32, u32); 7] = [
    ("seconds", 0, 59),
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2099),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn check_field(index: usize, field: &str) -> Result<(), String> {
    let (name, min, max) = FIELDS[index];
    if index == 6 && field.contains(|c: char| c.is_ascii_alphabetic() || c == '/') {
        return Err(format!(
            "'{field}' is not a valid year (a time zone other than UTC cannot be set through the API)"
        ));
    }
    if field == "?" {
        return if index == 3 || index == 5 {
            Ok(())
        } else {
            Err(format!("'?' is not allowed in {name}"))
        };
    }
    // Quartz specials: L, W, LW for days of the month; L and # for days of the week.
    if index == 3 && (field == "L" || field == "LW" || field.ends_with('W')) {
        let day = field.trim_end_matches(['L', 'W']);
        return if day.is_empty() || in_range(day, 1, 31) {
            Ok(())
        } else {
            Err(format!("'{field}' is not a valid {name}"))
        };
    }
    if index == 5 {
        if let Some((day, nth)) = field.split_once('#') {
            return if value(index, day).is_some() && in_range(nth, 1, 5) {
                Ok(())
            } else {
                Err(format!("'{field}' is not a valid {name}"))
            };
        }
        if let Some(day) = field.strip_suffix('L') {
            return if day.is_empty() || value(index, day).is_some() {
                Ok(())
            } else {
                Err(format!("'{field}' is not a valid {name}"))
            };
        }
    }
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            if !in_range(step, 1, max.max(1)) {
                return Err(format!("'{item}' has an invalid step in {name}"));
            }
        }
        let ok = match range {
            "*" => true,
            _ => match range.split_once('-') {
                Some((a, b)) => value(index, a).is_some() && value(index, b).is_some(),
                None => value(index, range).is_some(),
            },
        };
        if !ok {
            return Err(format!(
                "'{item}' is not a valid {name} (expected {min}-{max}, '*', ranges, lists or steps)"
            ));
        }
    }
    Ok(())
}

fn value(index: usize, s: &str) -> Option<u32> {
    let (_, min, max) = FIELDS[index];
    if is_number(s) {
        return s.parse().ok().filter(|v| (min..=max).contains(v));
    }
    let names: &[&str] = match index {
        4 => &MONTHS,
        5 => &DAYS,
        _ => return None,
    };
    let upper = s.to_ascii_uppercase();
    names
        .iter()
        .position(|n| *n == upper)
        .and_then(|p| u32::try_from(p + 1).ok())
}

fn in_range(s: &str, min: u32, max: u32) -> bool {
    is_number(s) && s.parse::<u32>().is_ok_and(|v| (min..=max).contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_airbyte_accepts() {
        for ok in [
            "0 0 2 * * ?",
            "0 0 2 * * ? UTC",
            "0 0 12 ? * MON-FRI",
            "0 30 */4 * * ? 2030",
            "0 15 10 L * ?",
            "0 0 1 ? JAN,JUL 6#3",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert_eq!(strip_utc("0 0 2 * * ? UTC"), "0 0 2 * * ?");
    }

    #[test]
    fn refuses_what_airbyte_refuses() {
        let cases = [
            ("0 0 2 * * ? Europe/Paris", "not a valid year"),
            ("0 0 2 * * ? 2030 Europe/Paris", "contains 8 parts"),
            ("0 0 2 * *", "contains 5 parts"),
            ("* 0 2 * * ?", "more than 1 hour apart"),
            ("0 */5 * * * ?", "more than 1 hour apart"),
            ("0 0 25 * * ?", "not a valid hours"),
            ("0 0 2 * * *", "both a day-of-week AND a day-of-month"),
            ("0 0 2 ? * ?", "'?' can only be used in one"),
        ];
        for (bad, why) in cases {
            let err = check(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_time_zone_in_a_plan_is_explained() {
        assert_eq!(
            check_plan("0 0 3 * * ? Europe/Berlin"),
            Err(
                "The cron expression 0 0 3 * * ? Europe/Berlin is not valid: 'Europe/Berlin' is \
                 a time zone, not a cron field. Airbyte's cron is Quartz (seconds minutes hours \
                 day-of-month month day-of-week [year]) and holds no time zone: Airbyte keeps the \
                 zone apart, in `cronTimeZone`, which its public API sets to UTC on every create \
                 and update. Write the hours in UTC (\"0 0 3 * * ?\" runs at those hours UTC)."
                    .to_string()
            )
        );
        for zoned in ["0 0 3 * * ? 2030 CET", "0 0 3 * * ? America/New_York UTC"] {
            let err = check_plan(zoned).unwrap_err();
            assert!(err.contains("is a time zone, not a cron field"), "{err}");
        }
        // When what is left is not a valid expression either, none is suggested.
        let err = check_plan("0 0 3 * * Mon Europe/Berlin").unwrap_err();
        assert!(err.ends_with("Write the hours in UTC."), "{err}");
        assert_eq!(check_plan("0 0 3 * * ? UTC"), Ok(()));
        assert_eq!(check_plan("0 0 3 * * ?"), Ok(()));
        assert_eq!(check_plan("0 0 3 * *"), check("0 0 3 * *"));
    }
}
