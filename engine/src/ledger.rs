//! How ledgers write times and amounts: the wallet's CSV (on-chain and Lightning) and a home
//! node's ledger of hosting income use the same forms, so that their rows line up.

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, no leap seconds).
pub fn utc_date(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Millisatoshis as sats, to the millisatoshi: `21000`, `0.215`, `3.5`.
pub fn msat_as_sats(msat: u64) -> String {
    let (sats, rest) = (msat / 1000, msat % 1000);
    if rest == 0 {
        return sats.to_string();
    }
    format!("{sats}.{rest:03}").trim_end_matches('0').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(utc_date(1_796_083_200), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn millisatoshis_are_written_as_sats_to_the_millisatoshi() {
        assert_eq!(msat_as_sats(21_000_000), "21000");
        assert_eq!(msat_as_sats(215), "0.215");
        assert_eq!(msat_as_sats(3_500), "3.5");
        assert_eq!(msat_as_sats(1_010), "1.01");
        assert_eq!(msat_as_sats(0), "0");
    }
}
