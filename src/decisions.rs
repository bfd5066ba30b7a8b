//! The choices this crate makes where RFC 4918 and its neighbours leave one open, each with its
//! reason. Other docs link here by number.
#![doc = include_str!("../docs/DECISIONS.md")]
