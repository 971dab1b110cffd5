//! The compact number encoding of sample values. A value is written as a MessagePack integer
//! when it is integral (exact, 1 to 9 bytes), otherwise as a float32 (5 bytes, about 7
//! significant digits), or as a float64 when float32 cannot hold it (out of range). Readers
//! accept any MessagePack number.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sample value as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() && v.fract() == 0.0 && v.abs() < I64_LIMIT {
            // Exact: |v| < 2^63 and integral.
            return s.serialize_i64(v as i64);
        }
        let f = v as f32;
        if !v.is_finite() || (f.is_finite() && (f != 0.0 || v == 0.0)) {
            s.serialize_f32(f)
        } else {
            s.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_f32<E: de::Error>(self, v: f32) -> Result<Num, E> {
                Ok(Num(f64::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: f64) -> Vec<u8> {
        rmp_serde::to_vec(&Num(v)).expect("encode")
    }

    #[test]
    fn integers_are_exact_and_small() {
        assert_eq!(enc(0.0), vec![0x00]);
        assert_eq!(enc(100.0).len(), 1);
        assert_eq!(enc(-3.0).len(), 1);
        assert_eq!(enc(65_535.0).len(), 3);
        let big = 68_719_476_736.0; // 64 GiB
        assert_eq!(enc(big).len(), 9);
        let back: Num = rmp_serde::from_slice(&enc(big)).expect("decode");
        assert_eq!(back.0, big);
    }

    #[test]
    fn fractions_are_float32() {
        assert_eq!(enc(23.456).len(), 5);
        let back: Num = rmp_serde::from_slice(&enc(23.456)).expect("decode");
        assert!((back.0 - 23.456).abs() < 1e-5);
        assert_eq!(enc(1e300).len(), 9, "out of f32 range stays f64");
        let nan: Num = rmp_serde::from_slice(&enc(f64::NAN)).expect("decode");
        assert!(nan.0.is_nan());
    }
}
