//! The engine as a checkpoint-barrier participant. Its section is [`Engine::save`]; the capture
//! (encoding every account's state) is the barrier's intake stall, and the buffer comes back
//! after the write, since a fresh 40+ MB buffer would page-fault its way through every capture.

use crate::detection::definition::Detector;
use crate::detection::engine::{Engine, EngineOptions, Forgotten};
use crate::pipeline::barrier::{MakeDurable, Participant};
use crate::state::checkpoint::Checkpoint;
use crate::state::codec::{CodecError, Reader, Writer};

pub const SECTION: &str = "engine";

pub struct EngineState {
    pub engine: Engine,
    spare: Vec<u8>,
}

impl EngineState {
    /// The engine of a restored checkpoint, or a new one.
    pub fn restore(
        checkpoint: Option<&Checkpoint>,
        detectors: Vec<Detector>,
        options: EngineOptions,
    ) -> Result<EngineState, CodecError> {
        let engine = match checkpoint.and_then(|c| c.section(SECTION)) {
            Some(bytes) => Engine::restore(detectors, options, &mut Reader::new(bytes))?,
            None => Engine::new(detectors, options),
        };
        Ok(EngineState::new(engine))
    }

    pub fn new(engine: Engine) -> EngineState {
        EngineState { engine, spare: Vec::new() }
    }
}

/// Erasure in a checkpoint: restore the engine from `checkpoint`, forget `account` in each of
/// `tenants` (and the state of its `keys`), and put the engine's section back. The caller
/// writes the checkpoint.
pub fn forget_in(
    checkpoint: &mut Checkpoint,
    detectors: Vec<Detector>,
    options: EngineOptions,
    tenants: &[String],
    account: &str,
    keys: &[String],
) -> Result<Forgotten, CodecError> {
    let mut engine = EngineState::restore(Some(checkpoint), detectors, options)?.engine;
    let mut forgotten = Forgotten::default();
    for tenant in tenants {
        let f = engine.forget(tenant, account, keys);
        forgotten.account |= f.account;
        forgotten.keys += f.keys;
        forgotten.key_references += f.key_references;
        forgotten.spray_entries += f.spray_entries;
        forgotten.creator_references += f.creator_references;
        forgotten.incidents += f.incidents;
    }
    let mut w = Writer { buf: Vec::new() };
    engine.save(&mut w);
    match checkpoint.sections.iter_mut().find(|(name, _)| name == SECTION) {
        Some((_, body)) => *body = w.buf,
        None => checkpoint.sections.push((SECTION.to_string(), w.buf)),
    }
    Ok(forgotten)
}

impl Participant for EngineState {
    fn name(&self) -> &'static str {
        SECTION
    }

    fn capture(&mut self, _epoch: u64) -> MakeDurable {
        let mut w = Writer { buf: std::mem::take(&mut self.spare) };
        w.buf.clear();
        self.engine.save(&mut w);
        let bytes = w.buf;
        Box::new(move || Ok(bytes))
    }

    fn durable(&mut self, _epoch: u64, section: Vec<u8>) {
        self.spare = section;
    }
}
