//! The `events` columns of a segment, appended as the pipeline hands over each decoded event,
//! so the writer only sorts and encodes: decoding every event a second time on the writer
//! thread cost more than all of Arrow, Parquet and zstd together.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};

use crate::input::event::AuditEvent;

/// Column builders in [`super::schema::events`] order, without `origin` (made by the writer from
/// the row's position) and with `raw` as bytes (checked as UTF-8 once per row group, not per
/// row: the decoder already accepted them).
pub(super) struct EventColumns {
    time: TimestampMillisecondBuilder,
    account: StringBuilder,
    tenant: StringBuilder,
    action: StringBuilder,
    outcome: StringBuilder,
    credential_id: StringBuilder,
    credential_kind: StringBuilder,
    credential_owner: StringBuilder,
    session_name: StringBuilder,
    session_instance: StringBuilder,
    invoked_by: StringBuilder,
    mfa: BooleanBuilder,
    source_ip: StringBuilder,
    source_country: StringBuilder,
    source_asn: UInt32Builder,
    source_as_org: StringBuilder,
    source_provider: StringBuilder,
    user_agent: StringBuilder,
    target_system: StringBuilder,
    target_resource: StringBuilder,
    bytes: UInt64Builder,
    records: UInt64Builder,
    reason: StringBuilder,
    attributes: StringBuilder,
    id: StringBuilder,
    raw: BinaryBuilder,
}

impl EventColumns {
    pub fn new() -> EventColumns {
        let text = StringBuilder::new;
        EventColumns {
            time: TimestampMillisecondBuilder::new(),
            account: text(),
            tenant: text(),
            action: text(),
            outcome: text(),
            credential_id: text(),
            credential_kind: text(),
            credential_owner: text(),
            session_name: text(),
            session_instance: text(),
            invoked_by: text(),
            mfa: BooleanBuilder::new(),
            source_ip: text(),
            source_country: text(),
            source_asn: UInt32Builder::new(),
            source_as_org: text(),
            source_provider: text(),
            user_agent: text(),
            target_system: text(),
            target_resource: text(),
            bytes: UInt64Builder::new(),
            records: UInt64Builder::new(),
            reason: text(),
            attributes: text(),
            id: text(),
            raw: BinaryBuilder::new(),
        }
    }

    /// One row: the event as the engine saw it (enriched), and the message it came from.
    pub fn push(&mut self, event: &AuditEvent<'_>, raw: &[u8]) {
        self.time.append_value(event.time);
        self.account.append_value(&event.account);
        self.tenant.append_option(event.tenant.as_deref());
        self.action.append_value(&event.action);
        self.outcome.append_value(event.outcome.as_str());
        let credential = event.credential.as_ref();
        self.credential_id.append_option(credential.map(|c| &c.id));
        self.credential_kind.append_option(credential.and_then(|c| c.kind.as_deref()));
        self.credential_owner.append_option(credential.and_then(|c| c.owner.as_deref()));
        let session = event.session.as_ref();
        self.session_name.append_option(session.map(|s| &s.name));
        self.session_instance.append_option(session.and_then(|s| s.instance.as_deref()));
        self.invoked_by.append_option(event.invoked_by.as_deref());
        self.mfa.append_option(event.mfa);
        match event.source.ip {
            Some(ip) => super::schema::append_display(&mut self.source_ip, ip),
            None => self.source_ip.append_null(),
        }
        self.source_country.append_option(event.source.country.as_deref());
        self.source_asn.append_option(event.source.asn);
        self.source_as_org.append_option(event.source.as_org.as_deref());
        self.source_provider.append_option(event.source.provider.as_deref());
        self.user_agent.append_option(event.source.user_agent.as_deref());
        self.target_system.append_option(event.target.system.as_deref());
        self.target_resource.append_option(event.target.resource.as_deref());
        self.bytes.append_option(event.bytes);
        self.records.append_option(event.records);
        self.reason.append_option(event.reason.as_deref());
        self.attributes.append_option(event.attributes);
        self.id.append_value(&event.id);
        self.raw.append_value(raw);
    }

    /// The columns so far, in the builders' order (the builders are left empty).
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.account.finish()),
            Arc::new(self.tenant.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.outcome.finish()),
            Arc::new(self.credential_id.finish()),
            Arc::new(self.credential_kind.finish()),
            Arc::new(self.credential_owner.finish()),
            Arc::new(self.session_name.finish()),
            Arc::new(self.session_instance.finish()),
            Arc::new(self.invoked_by.finish()),
            Arc::new(self.mfa.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.source_country.finish()),
            Arc::new(self.source_asn.finish()),
            Arc::new(self.source_as_org.finish()),
            Arc::new(self.source_provider.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.target_system.finish()),
            Arc::new(self.target_resource.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.records.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.raw.finish()),
        ]
    }
}
