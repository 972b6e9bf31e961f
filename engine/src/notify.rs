//! How a customer or contractor wants to be reached when the app is not
//! connected: the channels (push, SMS, email) and quiet hours. The engine
//! sends nothing itself; webhook deliveries carry these preferences in a
//! `notify` block for the senders outside it (Firebase, Twilio, SendGrid).

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::types::Timestamp;

/// A way to reach someone away from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A push notification to the app.
    Push,
    /// A text message.
    Sms,
    /// An email.
    Email,
}

/// Hours, in the person's own time, when only what cannot wait is sent
/// (`22:00` to `07:00` spans midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// From, `HH:MM`.
    pub start: String,
    /// Until, `HH:MM` (excluded).
    pub end: String,
    /// The person's offset from UTC, minutes (−720 to 840).
    pub utc_offset_minutes: i16,
}

/// Minutes since midnight of an `HH:MM` time.
fn minutes(hhmm: &str) -> Result<u32, Error> {
    let bad = || Error::InvalidPreferences(format!("quiet hours are HH:MM (00:00 to 23:59), not {hhmm:?}"));
    let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl QuietHours {
    /// Checks the times and the offset.
    pub fn validate(&self) -> Result<(), Error> {
        let (start, end) = (minutes(&self.start)?, minutes(&self.end)?);
        if start == end {
            return Err(Error::InvalidPreferences("quiet hours must start and end at different times".into()));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(Error::InvalidPreferences(format!("utc_offset_minutes must be -720 to 840, not {}", self.utc_offset_minutes)));
        }
        Ok(())
    }

    /// Whether `at` falls in the quiet hours, in the person's own time.
    #[must_use]
    pub fn contains(&self, at: Timestamp) -> bool {
        let (Ok(start), Ok(end)) = (minutes(&self.start), minutes(&self.end)) else { return false };
        let local = at.0.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let minute = u32::try_from(local.rem_euclid(24 * 60)).unwrap_or(0);
        if start < end { (start..end).contains(&minute) } else { minute >= start || minute < end }
    }
}

/// A person's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyPreferences {
    /// The channels they may be reached on, each once (none: not at all).
    pub channels: Vec<Channel>,
    /// When only what cannot wait is sent, if ever.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

impl Default for NotifyPreferences {
    /// Push only, at any hour: what an app that never set any gets.
    fn default() -> Self {
        Self { channels: vec![Channel::Push], quiet_hours: None }
    }
}

impl NotifyPreferences {
    /// Checks the channels (each once) and the quiet hours.
    pub fn validate(&self) -> Result<(), Error> {
        if self.channels.iter().enumerate().any(|(i, c)| self.channels[..i].contains(c)) {
            return Err(Error::InvalidPreferences("each channel is named once".into()));
        }
        self.quiet_hours.as_ref().map_or(Ok(()), QuietHours::validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(start: &str, end: &str, offset: i16) -> QuietHours {
        QuietHours { start: start.into(), end: end.into(), utc_offset_minutes: offset }
    }

    /// ms since the epoch of `h:m` UTC on 1 January 2026.
    fn utc(h: i64, m: i64) -> Timestamp {
        Timestamp(1_767_225_600_000 + (h * 60 + m) * 60_000)
    }

    #[test]
    fn quiet_hours_span_midnight_in_the_persons_own_time() {
        let night = quiet("22:00", "07:00", -360); // Des Moines in winter: UTC−6
        assert!(night.contains(utc(4, 0)), "22:00 local");
        assert!(night.contains(utc(12, 59)), "06:59 local");
        assert!(!night.contains(utc(13, 0)), "07:00 local ends them");
        assert!(!night.contains(utc(3, 59)), "21:59 local");
        let lunch = quiet("12:00", "13:00", 0);
        assert!(lunch.contains(utc(12, 30)) && !lunch.contains(utc(13, 0)) && !lunch.contains(utc(11, 59)));
    }

    #[test]
    fn bad_preferences_are_refused_with_a_reason() {
        for (bad, why) in [
            (quiet("24:00", "07:00", 0), "HH:MM"),
            (quiet("7:00", "08:00", 0), "HH:MM"),
            (quiet("22:60", "07:00", 0), "HH:MM"),
            (quiet("22:00", "22:00", 0), "different"),
            (quiet("22:00", "07:00", 900), "utc_offset_minutes"),
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
        let twice = NotifyPreferences { channels: vec![Channel::Sms, Channel::Sms], quiet_hours: None };
        assert!(twice.validate().is_err());
        NotifyPreferences::default().validate().unwrap();
        let json = r#"{"channels":["push","sms"],"quiet_hours":{"start":"22:00","end":"07:00","utc_offset_minutes":-360}}"#;
        let read: NotifyPreferences = serde_json::from_str(json).unwrap();
        assert_eq!(read.channels, [Channel::Push, Channel::Sms]);
        assert_eq!(serde_json::to_string(&read).unwrap(), json);
    }
}
