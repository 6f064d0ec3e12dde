//! A hostile virtio device against the driver's split virtqueue: arbitrary
//! used-ring writes interleaved with driver operations must never panic
//! the driver, make it return a chain that is not in flight, or lose a
//! descriptor (`llmos_net::virtq::hostile`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    llmos_net::virtq::hostile::run(data);
});
