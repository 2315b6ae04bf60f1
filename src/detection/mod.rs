//! The pure core: event time ([`time`]), detector definitions ([`definition`], their [`params`], [`schedule`],
//! the shipped [`pack`] and the [`inline_test`]s inside definition files), what is normal per
//! account and key ([`baseline`]; the terms an account used, [`terms`]) and in the month
//! ([`calendar`]), the detector logic per category ([`detect`]), state, dedup and cooldown
//! ([`engine`]), the output contract ([`alert`]), and the volume model on a bare
//! time series ([`series`]).
//!
//! Nothing here reads the clock, the network or the disk: event time drives every window and
//! baseline, so the same events in the same order give the same alerts.

pub mod alert;
pub mod baseline;
pub mod calendar;
pub mod catch_up;
pub mod credential_profile;
pub mod definition;
pub mod detect;
pub mod engine;
pub mod inline_test;
pub mod key_users;
pub mod pack;
pub mod params;
pub mod schedule;
pub mod series;
pub mod terms;
pub mod time;
