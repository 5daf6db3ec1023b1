//! `abuser`: goes past one of the runtime's caps on purpose (test fixture, spin-sdk 5.2,
//! `wasi:http/incoming-handler@0.2.0`). The query picks the abuse:
//!
//! | query | what it does | answer when the host allows it |
//! |---|---|---|
//! | `resources=N` | holds `N` empty `fields` resources at once | `200 held=N` |
//! | `headers=N&value_bytes=M` | appends `N` headers of `M`-byte values to one `fields` | `200 appended=N` |
//! | `response_headers=N` | answers with `N` headers | `200` |
//! | `outbound=N&url=U[&request_headers=H]` | GETs `U` `N` times in turn, each with `H` extra headers | `200 sent=N` |
//! | `kv_value_bytes=N` | sets an `N`-byte value in the `default` store | `200 stored=N` |
//! | `fill=WORD&mib=M` | fills `M` MiB of fresh heap with a marker derived from `WORD` | `200 filled=M` |
//! | `scan=WORD&mib=M` | takes `M` MiB of heap uninitialised, then scans all of linear memory for the marker | `200 found=<runs>` |
//!
//! A refusal the guest can see (an outbound or key-value error) is a `500` with its `Debug`
//! text; a refusal that traps the guest is the host's to report. `fill` and `scan` together
//! scan after filling, which shows the scanner finds what is there.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{Fields, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

/// Consecutive marker words that count as a run: a scanner holds its marker in a local or
/// two, never in this many words in a row.
const RUN_WORDS: usize = 16;

/// Runs the abuse the query names.
#[http_component]
async fn handle_abuser(request: Request) -> Response {
    let query = Query::parse(request.query());
    match abuse(&query).await {
        Ok(response) => response,
        Err(reason) => Response::new(500, reason),
    }
}

async fn abuse(query: &Query) -> Result<Response, String> {
    let number = |name: &str| -> Result<usize, String> {
        query
            .require(name)?
            .parse()
            .map_err(|_| format!("{name} is not a number"))
    };
    if query.get("resources").is_some() {
        let wanted = number("resources")?;
        let held: Vec<Fields> = (0..wanted).map(|_| Fields::new()).collect();
        return Ok(Response::new(200, format!("held={}", held.len())));
    }
    if query.get("headers").is_some() {
        let (count, value_bytes) = (number("headers")?, number("value_bytes")?);
        let fields = Fields::new();
        let value = vec![b'v'; value_bytes];
        for index in 0..count {
            fields
                .append(&format!("x-abuse-{index}"), &value)
                .map_err(|error| format!("{error:?}"))?;
        }
        return Ok(Response::new(200, format!("appended={count}")));
    }
    if query.get("response_headers").is_some() {
        let mut response = Response::builder();
        response.status(200);
        for index in 0..number("response_headers")? {
            response.header(format!("x-abuse-{index}"), "1");
        }
        return Ok(response.body("headers").build());
    }
    if query.get("outbound").is_some() {
        let url = query.require("url")?;
        let wanted = number("outbound")?;
        let extra_headers = query
            .get("request_headers")
            .map_or(Ok(0), |_| number("request_headers"))?;
        for sent in 0..wanted {
            let mut outgoing = Request::get(url);
            for index in 0..extra_headers {
                outgoing.header(format!("x-abuse-{index}"), "1");
            }
            let result: Result<Response, _> = spin_sdk::http::send(outgoing.build()).await;
            if let Err(error) = result {
                return Err(format!("sent={sent} error={error:?}"));
            }
        }
        return Ok(Response::new(200, format!("sent={wanted}")));
    }
    if query.get("kv_value_bytes").is_some() {
        let bytes = number("kv_value_bytes")?;
        let store = Store::open_default().map_err(|error| format!("{error:?}"))?;
        store
            .set("abuse", &vec![b'x'; bytes])
            .map_err(|error| format!("{error:?}"))?;
        return Ok(Response::new(200, format!("stored={bytes}")));
    }
    let mut answer = Vec::new();
    if let Some(word) = query.get("fill") {
        let mib = number("mib")?;
        fill(marker(word), mib);
        answer.push(format!("filled={mib}"));
    }
    if let Some(word) = query.get("scan") {
        let runs = scan(marker(word), number("mib")?);
        answer.push(format!("found={runs}"));
    }
    if answer.is_empty() {
        return Err("no abuse named in the query".to_owned());
    }
    Ok(Response::new(200, answer.join(" ")))
}

/// The word written and looked for: FNV-1a of `word`, never zero (fresh memory is zero).
fn marker(word: &str) -> u64 {
    let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash | 1
}

/// Fills `mib` MiB of newly allocated heap with `marker` and leaves it there for whoever gets
/// this memory next.
fn fill(marker: u64, mib: usize) {
    let words = mib * 1024 * 1024 / 8;
    let mut heap = vec![0_u64; words];
    for word in heap.iter_mut() {
        // Volatile, so the writes are not dropped as dead stores to memory that is leaked.
        unsafe { std::ptr::write_volatile(word, marker) };
    }
    std::mem::forget(heap);
}

/// Takes `mib` MiB of heap without initialising it (growing linear memory as the filler did),
/// then counts the runs of [`RUN_WORDS`] marker words anywhere in linear memory.
fn scan(marker: u64, mib: usize) -> usize {
    let size = mib * 1024 * 1024;
    let Ok(layout) = std::alloc::Layout::from_size_align(size, 8) else {
        return 0;
    };
    // Uninitialised on purpose: whatever the host left in these pages is what is read.
    let taken = unsafe { std::alloc::alloc(layout) };
    std::hint::black_box(taken);
    let memory_bytes = core::arch::wasm32::memory_size(0) * 65536;
    let (mut runs, mut streak) = (0, 0);
    // Address 0 is valid wasm memory, but Rust must not read through a null pointer.
    for address in (8..memory_bytes).step_by(8) {
        // Every address below `memory_size` is readable in wasm; volatile keeps the reads.
        let word = unsafe { std::ptr::read_volatile(address as *const u64) };
        if word == marker {
            streak += 1;
            if streak == RUN_WORDS {
                runs += 1;
            }
        } else {
            streak = 0;
        }
    }
    runs
}
