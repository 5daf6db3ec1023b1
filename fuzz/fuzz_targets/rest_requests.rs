//! What the coordinator's REST API decodes, through its own code
//! (`nexus_coordinator::fuzzing`): the trigger's path, deploy uploads (tar, multipart, one
//! component) resolved as a deploy resolves them, the JSON bodies of the main requests with
//! the parsing behind them, query strings, conditional headers. The first byte picks which;
//! the properties each checks are in `coordinator/src/api/fuzzing.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nexus_coordinator::fuzzing::rest_request(data);
});
