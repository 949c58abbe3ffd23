//! The shared wasmtime engines and the epoch ticker that bounds every plugin call in time.
//!
//! Two engines exist, created once per process: a plain one, and a fuel-metered one for
//! plugins that declare a `fuel` budget. Fuel instrumentation slows every compiled loop, so
//! plugins without a budget do not pay for it; modules compiled for one engine never run on
//! the other (the disk cache key includes the engine's compatibility hash).

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the ticker advances the engines' epoch: the granularity of timeouts.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Stack available to plugin code; deep recursion traps instead of exhausting the host.
const MAX_WASM_STACK: usize = 512 * 1024;

struct Engines {
    plain: Engine,
    metered: Engine,
}

static ENGINES: OnceLock<Result<Engines, String>> = OnceLock::new();

fn config(metered: bool) -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(metered)
        // Plugins must be deterministic: the same rows give the same number on every
        // machine, so NaN bit patterns are canonicalised.
        .cranelift_nan_canonicalization(true)
        .max_wasm_stack(MAX_WASM_STACK);
    config
}

fn engines() -> Result<&'static Engines, String> {
    ENGINES
        .get_or_init(|| {
            let plain = Engine::new(&config(false))
                .map_err(|e| format!("cannot start the WebAssembly engine: {e}"))?;
            let metered = Engine::new(&config(true))
                .map_err(|e| format!("cannot start the WebAssembly engine: {e}"))?;
            start_ticker(vec![plain.clone(), metered.clone()])?;
            Ok(Engines { plain, metered })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The engine for a plugin: the fuel-metered one when it has a fuel budget.
pub fn engine(metered: bool) -> Result<&'static Engine, String> {
    let engines = engines()?;
    Ok(if metered {
        &engines.metered
    } else {
        &engines.plain
    })
}

/// One background thread advances the epoch of both engines every [`TICK`]; a store whose
/// deadline (in ticks) passes traps with `Trap::Interrupt` at the next loop back-edge or call.
/// Without the thread no deadline would ever fire, so failing to start it fails the engines,
/// and every plugin load says why, rather than running plugins without a time limit.
fn start_ticker(engines: Vec<Engine>) -> Result<(), String> {
    std::thread::Builder::new()
        .name("mlc-wasm-epoch".into())
        .spawn(move || {
            // Epochs follow the wall clock, not the number of wake-ups: on a loaded machine
            // the thread wakes late and catches up, so a timeout does not stretch.
            let start = std::time::Instant::now();
            let mut ticks: u128 = 0;
            loop {
                std::thread::sleep(TICK);
                let due = start.elapsed().as_nanos() / TICK.as_nanos().max(1);
                while ticks < due {
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                    ticks += 1;
                }
            }
        })
        .map(drop)
        .map_err(|e| {
            format!(
                "cannot start the plugin timeout thread ({e}): plugins cannot run without their time limit"
            )
        })
}

/// Ticks to allow for `budget` of wall-clock time: rounded up, plus one because the current
/// tick may be about to end.
pub(crate) fn ticks_for(budget: Duration) -> u64 {
    let tick = TICK.as_nanos().max(1);
    let ticks = budget.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}
