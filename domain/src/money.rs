//! Money as integer minor units: kopecks. No floating point ever touches an amount.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// An amount of roubles in kopecks (1 RUB = 100 kopecks). Signed so that a refund or a
/// correction can be expressed, but every price the domain computes is non-negative.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kopecks(pub i64);

impl Kopecks {
    /// Zero kopecks.
    pub const ZERO: Kopecks = Kopecks(0);

    /// The amount as a plain integer of kopecks.
    pub fn get(self) -> i64 {
        self.0
    }

    /// Adds without wrapping; `None` on overflow, which no real price reaches.
    pub fn checked_add(self, other: Kopecks) -> Option<Kopecks> {
        self.0.checked_add(other.0).map(Kopecks)
    }
}

impl Add for Kopecks {
    type Output = Kopecks;
    fn add(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_add(other.0))
    }
}

impl AddAssign for Kopecks {
    fn add_assign(&mut self, other: Kopecks) {
        *self = *self + other;
    }
}

impl Sub for Kopecks {
    type Output = Kopecks;
    fn sub(self, other: Kopecks) -> Kopecks {
        Kopecks(self.0.saturating_sub(other.0))
    }
}

impl SubAssign for Kopecks {
    fn sub_assign(&mut self, other: Kopecks) {
        *self = *self - other;
    }
}

impl Neg for Kopecks {
    type Output = Kopecks;
    fn neg(self) -> Kopecks {
        Kopecks(self.0.saturating_neg())
    }
}

impl std::iter::Sum for Kopecks {
    fn sum<I: Iterator<Item = Kopecks>>(iter: I) -> Kopecks {
        iter.fold(Kopecks::ZERO, |total, amount| total + amount)
    }
}

impl Mul<u64> for Kopecks {
    type Output = Kopecks;
    fn mul(self, count: u64) -> Kopecks {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        Kopecks(self.0.saturating_mul(count))
    }
}

impl fmt::Display for Kopecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02} RUB", abs / 100, abs % 100)
    }
}

/// The currency of every amount. Velka runs in roubles; the code is here so that events and API
/// responses say so explicitly rather than leaving it implied.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Currency {
    /// Russian rouble, ISO 4217 "RUB".
    #[default]
    #[serde(rename = "RUB")]
    Rub,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_roubles_and_kopecks() {
        assert_eq!(Kopecks(12_345).to_string(), "123.45 RUB");
        assert_eq!(Kopecks(-5).to_string(), "-0.05 RUB");
    }

    #[test]
    fn multiplication_saturates_instead_of_wrapping() {
        assert_eq!(Kopecks(i64::MAX) * 2, Kopecks(i64::MAX));
        assert_eq!(Kopecks(1500) * 17, Kopecks(25_500));
    }
}
