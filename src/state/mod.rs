//! What survives a restart: the checkpoint file ([`checkpoint`], in the binary format of
//! [`codec`]) with a section per barrier participant, the engine's own ([`engine_state`]), and
//! the durable [`outbox`] of alerts and dead letters that the sinks read from.

pub mod checkpoint;
pub mod codec;
pub mod engine_state;
pub mod outbox;
