//! Synthetic traffic, apart from the product: deterministic generated traffic with labelled
//! incidents ([`gen`]), scoring alerts against the labels ([`eval`]), and `auditwatch demo`
//! ([`demo`]), which runs the real pipeline over generated traffic.

pub mod demo;
pub mod eval;
pub mod gen;
