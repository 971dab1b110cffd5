//! The bytes of Prometheus remote write 1.0: the `WriteRequest` protobuf messages (written
//! by hand from `prompb/remote.proto` and `types.proto`, encoded by `prost`'s derive), and
//! the request body (the encoded message in the snappy block format, not framed).
//!
//! Not here: which samples go in a request ([`super::outbox`]) or HTTP ([`super`]).

use meshmon_proto::prometheus;
use std::collections::BTreeMap;

/// `prometheus.WriteRequest` (metadata, field 3, is optional in 1.0 and not sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series with their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// `__name__` and the other labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Builds a request from meshmon samples: names, labels and scaling from
/// `meshmon_proto::prometheus`, one `TimeSeries` per series, samples in time order.
pub fn request(samples: &[crate::Sample]) -> WriteRequest {
    let mut series: BTreeMap<(&str, &meshmon_proto::SeriesKey), Vec<(i64, f64)>> = BTreeMap::new();
    for s in samples {
        series
            .entry((s.host.as_str(), &s.series))
            .or_default()
            .push((s.ts_ms, s.value));
    }
    let timeseries = series
        .into_iter()
        .map(|((host, key), mut points)| {
            let family = prometheus::family(&key.name);
            let mut labels: Vec<Label> = std::iter::once(Label {
                name: "__name__".into(),
                value: family.name,
            })
            .chain(
                prometheus::labels(host, key)
                    .into_iter()
                    .map(|(name, value)| Label { name, value }),
            )
            .collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            TimeSeries {
                labels,
                samples: points
                    .into_iter()
                    .map(|(timestamp, v)| Sample {
                        value: v * family.scale,
                        timestamp,
                    })
                    .collect(),
            }
        })
        .collect();
    WriteRequest { timeseries }
}

/// The HTTP body: the protobuf encoding, snappy-compressed (block format).
pub fn body(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new().compress_vec(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::SeriesKey;
    use meshmon_proto::metrics::Metric;

    fn s(host: &str, key: SeriesKey, ts_ms: i64, value: f64) -> crate::Sample {
        crate::Sample {
            host: host.into(),
            series: key,
            ts_ms,
            value,
        }
    }

    #[test]
    fn samples_become_sorted_series_in_base_units_and_round_trip() {
        let rx = SeriesKey::labelled(Metric::NetRxBytes, "eth0");
        let cpu = SeriesKey::new(Metric::CpuUsagePct);
        let req = request(&[
            s("b", cpu.clone(), 2000, 50.0),
            s("a", rx.clone(), 2000, 300.0),
            s("a", rx, 1000, 100.0),
            s("a", cpu, 1000, 25.0),
        ]);
        assert_eq!(req.timeseries.len(), 3);
        let names: Vec<Vec<(&str, &str)>> = req
            .timeseries
            .iter()
            .map(|t| {
                t.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            names[1],
            [
                ("__name__", "meshmon_network_receive_bytes_total"),
                ("host", "a"),
                ("iface", "eth0")
            ]
        );
        assert_eq!(
            req.timeseries[1].samples,
            [
                Sample {
                    value: 100.0,
                    timestamp: 1000
                },
                Sample {
                    value: 300.0,
                    timestamp: 2000
                }
            ],
            "time order"
        );
        assert_eq!(names[0][0], ("__name__", "meshmon_cpu_usage_ratio"));
        assert!((req.timeseries[0].samples[0].value - 0.25).abs() < 1e-12);

        let bytes = body(&req).expect("compress");
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&bytes)
            .expect("snappy");
        let back: WriteRequest = prost::Message::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(back, req);
    }
}
