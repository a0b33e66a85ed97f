//! `hvm/`: HVM-specific headers.

pub mod hvm_info_table;
pub mod hvm_op;
pub mod params;
