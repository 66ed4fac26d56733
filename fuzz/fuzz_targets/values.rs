#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ray_operator_fuzz::values(data));
