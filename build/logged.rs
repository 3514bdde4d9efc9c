//! Collects what mdBook logs at `WARN` and `ERROR` (through `tracing`).
//! Shared by `build.rs` and `tests/book.rs` (through `#[path]`).

use std::fmt::{self, Write};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<String>>>);

/// Runs `f`, returning its result and the warnings and errors logged on this
/// thread meanwhile (mdBook does its work on the calling thread).
pub fn warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let collector = Collector::default();
    let result = tracing::subscriber::with_default(collector.clone(), f);
    let logged = collector.0.lock().unwrap().clone();
    (result, logged)
}

impl Subscriber for Collector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line(format!("{} {}: ", metadata.level(), metadata.target()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = if field.name() == "message" {
            write!(self.0, "{value:?}")
        } else {
            write!(self.0, " {}={value:?}", field.name())
        };
    }
}
