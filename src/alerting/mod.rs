//! What happens to an alert between the outbox and a sink: routing, silences, masking, and
//! grouping into notifications for the outputs people read.

pub mod notification;
