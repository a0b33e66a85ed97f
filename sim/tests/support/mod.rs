//! Support code for the xenstored conformance suite.
#![allow(dead_code)]

pub mod harness;
pub mod realxs;
