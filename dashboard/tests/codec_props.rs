//! Property tests of the blob codecs: any timestamps and any `f64` bit patterns (NaN payloads,
//! infinities, negative zero) round-trip bit-exactly, and damaged blobs are errors, not panics.

use meshmon_dashboard::agg::Bucket;
use meshmon_dashboard::codec::block::Block;
use meshmon_dashboard::codec::chunk::{self, ChunkEncoder};
use proptest::prelude::*;

fn any_f64_bits() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (-1000i32..1000).prop_map(|v| f64::from(v) / 4.0),
        any::<f32>().prop_map(f64::from),
    ]
}

fn any_ts() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), 1_700_000_000_000i64..1_700_000_600_000]
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

proptest! {
    #[test]
    fn chunks_round_trip_bit_exactly(samples in prop::collection::vec((any_ts(), any_f64_bits()), 1..300)) {
        let blob = chunk::encode(&samples);
        let back = chunk::decode(&blob).expect("decodes");
        prop_assert_eq!(bits(&back), bits(&samples));
    }

    #[test]
    fn regular_jittered_series_round_trip(
        start in 0i64..4_000_000_000_000,
        jitter in prop::collection::vec(0i64..5, 1..600),
        values in prop::collection::vec(any_f64_bits(), 600),
    ) {
        let samples: Vec<(i64, f64)> = jitter
            .iter()
            .enumerate()
            .map(|(i, j)| (start + i as i64 * 1000 + j, values[i]))
            .collect();
        let mut enc = ChunkEncoder::new();
        for (i, &(t, v)) in samples.iter().enumerate() {
            enc.push(t, v);
            if i % 97 == 0 {
                // Snapshots mid-way (flushes of an open chunk) decode to the prefix.
                let prefix = chunk::decode(&enc.to_blob()).expect("prefix");
                prop_assert_eq!(bits(&prefix), bits(&samples[..=i]));
            }
        }
        prop_assert_eq!(bits(&chunk::decode(&enc.to_blob()).expect("all")), bits(&samples));
    }

    #[test]
    fn damaged_chunks_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = chunk::decode(&bytes);
        let _ = Block::decode(&bytes, 360);
    }

    #[test]
    fn merge_is_sorted_unique_and_keeps_existing(
        a in prop::collection::btree_map(0i64..500, any::<i32>(), 0..100),
        b in prop::collection::vec((0i64..500, any::<i32>()), 0..100),
    ) {
        let existing: Vec<(i64, f64)> = a.iter().map(|(&t, &v)| (t, f64::from(v))).collect();
        let incoming: Vec<(i64, f64)> = b.iter().map(|&(t, v)| (t, f64::from(v))).collect();
        let m = chunk::merge(&existing, &incoming);
        prop_assert!(m.windows(2).all(|w| w[0].0 < w[1].0));
        for (t, v) in &existing {
            prop_assert!(m.contains(&(*t, *v)));
        }
        for (t, _) in &incoming {
            prop_assert!(m.iter().any(|s| s.0 == *t));
        }
    }

    #[test]
    fn blocks_round_trip(slots in prop::collection::vec(prop::option::of((1u64..100_000, any_f64_bits(), any_f64_bits(), any_f64_bits())), 168)) {
        let block = Block {
            slots: slots
                .into_iter()
                .map(|o| o.map(|(count, a, b, c)| Bucket { count, min: a, max: b, sum: c, p95: a, last: b }))
                .collect(),
        };
        let back = Block::decode(&block.encode(), 168).expect("decodes");
        for (x, y) in back.slots.iter().zip(&block.slots) {
            match (x, y) {
                (Some(x), Some(y)) => {
                    prop_assert_eq!(x.count, y.count);
                    prop_assert_eq!(
                        [x.min, x.max, x.sum, x.p95, x.last].map(f64::to_bits),
                        [y.min, y.max, y.sum, y.p95, y.last].map(f64::to_bits)
                    );
                }
                (None, None) => {}
                _ => prop_assert!(false, "presence differs"),
            }
        }
    }
}
