//! What happens to an alert between the outbox and a sink: routing ([`route`]), silences
//! ([`silence`]), masking ([`mask`]), and grouping into [`notification`]s for the outputs
//! people read ([`group`]). The worker of each output (`sinks::worker`) applies them in that
//! order.

pub mod group;
pub mod mask;
pub mod notification;
pub mod probe;
pub mod route;
pub mod silence;
