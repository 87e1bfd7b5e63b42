//! `compression` and `grpc_web`: route settings the edge reads when it answers, not
//! request-phase verdicts. This module owns their compiled form; the encoding and the
//! bridging themselves live in the edge (`edge/src/compress.rs`, `edge/src/grpc_web.rs`).

use crate::problem::Problem;

pub use crate::spec::{CompressionSpec, GrpcWebSpec};

/// A content coding the gateway can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Zstd,
    Br,
    Gzip,
}

impl Coding {
    /// Every coding, in the default preference order.
    pub const ALL: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

    /// The name as in specs and in `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Br => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding named `name` (exact, lower case, as specs are written).
    pub fn from_name(name: &str) -> Option<Coding> {
        Coding::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The level used when the policy sets none: what the reference tools default to for
    /// on-the-fly work (gzip 6 as `gzip` and nginx, zstd 3 as `zstd`), brotli 4 (its
    /// default 11 costs ~10x the CPU of gzip 6 for a few percent).
    pub fn default_level(self) -> u32 {
        match self {
            Coding::Zstd => 3,
            Coding::Br => 4,
            Coding::Gzip => 6,
        }
    }
}

/// Lowest and highest `level`: one scale for every coding, used as each library's own
/// level (gzip 1-9 is all of gzip's; brotli's 1-9 of 0-11 and zstd's 1-9 of 1-22 are the
/// levels fast enough to compress answers as they stream).
pub const LEVELS: std::ops::RangeInclusive<u32> = 1..=9;

/// A compiled `compression` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    algorithms: Vec<Coding>,
    min_bytes: u64,
    level: Option<u32>,
}

impl Compression {
    pub fn compile(spec: &CompressionSpec) -> Result<Self, Vec<Problem>> {
        let mut problems = crate::problem::Problems::new();
        spec.validate(&mut problems);
        if !problems.is_empty() {
            return Err(problems.into_vec());
        }
        let algorithms = match &spec.algorithms {
            Some(names) => names.iter().filter_map(|n| Coding::from_name(n)).collect(),
            None => Coding::ALL.to_vec(),
        };
        Ok(Self {
            algorithms,
            min_bytes: spec
                .min_bytes
                .unwrap_or(crate::spec::DEFAULT_COMPRESSION_MIN_BYTES),
            level: spec.level,
        })
    }

    /// The codings the route offers, most preferred first (ties between equal q-values
    /// go to the earlier one).
    pub fn algorithms(&self) -> &[Coding] {
        &self.algorithms
    }

    /// Answers with a known length below this stay identity.
    pub fn min_bytes(&self) -> u64 {
        self.min_bytes
    }

    /// The level for `coding`: the policy's, else the coding's default.
    pub fn level(&self, coding: Coding) -> u32 {
        self.level.unwrap_or_else(|| coding.default_level())
    }
}

impl CompressionSpec {
    pub(crate) fn validate(&self, p: &mut crate::problem::Problems) {
        if let Some(names) = &self.algorithms {
            if names.is_empty() {
                p.push("algorithms", "must name at least one of zstd, br, gzip");
            }
            for (i, name) in names.iter().enumerate() {
                if Coding::from_name(name).is_none() {
                    p.push(
                        format!("algorithms[{i}]"),
                        format!("unknown algorithm {name:?}: must be zstd, br or gzip"),
                    );
                } else if names[..i].contains(name) {
                    p.push(
                        format!("algorithms[{i}]"),
                        format!("{name} is listed twice"),
                    );
                }
            }
        }
        if let Some(level) = self.level {
            if !LEVELS.contains(&level) {
                p.push(
                    "level",
                    format!("must be {} to {}", LEVELS.start(), LEVELS.end()),
                );
            }
        }
    }
}

/// A compiled `grpc_web` policy: the route bridges gRPC-Web calls to its gRPC upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrpcWeb;

impl GrpcWeb {
    pub fn compile(_spec: &GrpcWebSpec) -> Result<Self, Vec<Problem>> {
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<Compression, Vec<Problem>> {
        let spec: CompressionSpec = serde_json::from_value(json).expect("spec");
        Compression::compile(&spec)
    }

    #[test]
    fn defaults_to_zstd_br_gzip_over_1024_bytes() {
        let c = spec(serde_json::json!({})).expect("compiles");
        assert_eq!(c.algorithms(), &[Coding::Zstd, Coding::Br, Coding::Gzip]);
        assert_eq!(c.min_bytes(), 1024);
        assert_eq!(c.level(Coding::Gzip), 6);
        assert_eq!(c.level(Coding::Zstd), 3);
    }

    #[test]
    fn keeps_the_preference_order_and_level_written() {
        let c =
            spec(serde_json::json!({"algorithms": ["gzip", "zstd"], "min_bytes": 0, "level": 9}))
                .expect("compiles");
        assert_eq!(c.algorithms(), &[Coding::Gzip, Coding::Zstd]);
        assert_eq!(c.min_bytes(), 0);
        assert_eq!(c.level(Coding::Zstd), 9);
    }

    #[test]
    fn refuses_unknown_repeated_or_no_algorithms_and_bad_levels_with_their_paths() {
        let problems =
            spec(serde_json::json!({"algorithms": ["gzip", "deflate", "gzip"], "level": 10}))
                .expect_err("refused");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["algorithms[1]", "algorithms[2]", "level"]);
        assert!(problems[0].message.contains("deflate"), "{problems:?}");
        let problems =
            spec(serde_json::json!({"algorithms": [], "level": 0})).expect_err("refused");
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["algorithms", "level"]);
        assert!(serde_json::from_value::<CompressionSpec>(serde_json::json!({"lvl": 1})).is_err());
        let grpc_web = |json| serde_json::from_value::<crate::PolicySpec>(json);
        assert!(grpc_web(serde_json::json!({"type": "grpc_web"})).is_ok());
        assert!(grpc_web(serde_json::json!({"type": "grpc_web", "text": true})).is_err());
    }
}
