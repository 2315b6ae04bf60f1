//! What survives a restart: the checkpoint file ([`checkpoint`]) in the binary format of
//! [`codec`], and the alerts already delivered ([`ledger`]).

pub mod checkpoint;
pub mod codec;
pub mod ledger;
