//! The engine as a checkpoint-barrier participant. Its section is [`Engine::save`]; the capture
//! (encoding every account's state) is the barrier's intake stall, and the buffer comes back
//! after the write, since a fresh 40+ MB buffer would page-fault its way through every capture.

use crate::detection::definition::Detector;
use crate::detection::engine::{Engine, EngineOptions};
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
