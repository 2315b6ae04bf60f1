//! Synthetic traffic, apart from the product: deterministic generated traffic with labelled
//! incidents ([`gen`]), scoring alerts against the labels ([`eval`]), and `auditwatch demo`
//! ([`demo`]), which runs the real pipeline over generated traffic and delivers to an
//! in-process webhook receiver ([`demo_receiver`]).

pub mod demo;
pub mod demo_receiver;
pub mod eval;
pub mod gen;
