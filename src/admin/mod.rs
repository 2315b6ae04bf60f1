//! Operating the service: Prometheus [`metrics`] and the admin HTTP server ([`http`]).

pub mod http;
pub mod metrics;
