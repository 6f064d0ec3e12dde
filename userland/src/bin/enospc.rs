//! A runaway writer against the RAM filesystem's capacity limit (the image
//! sets `fs_capacity_mib` to 2): writes until ENOSPC, checks that nothing
//! partial is lost and the system keeps working, frees the space and
//! writes again.
use std::fs;
use std::io::Write;

fn fill(path: &str) -> (u64, String) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = [0x5au8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(n) => total += n as u64,
            Err(e) => {
                return (
                    total,
                    format!("{:?} ({})", e.kind(), e.raw_os_error().unwrap_or(0)),
                );
            }
        }
    }
}

fn main() {
    let (n, err) = fill("/tmp/runaway");
    println!("wrote {} KiB, then {err}", n / 1024);
    let len = fs::metadata("/tmp/runaway").unwrap().len();
    println!("file length matches what was written: {}", len == n);
    let data = fs::read("/tmp/runaway").unwrap();
    println!("contents intact: {}", data.iter().all(|&b| b == 0x5a));
    println!(
        "a small new file now: {}",
        match fs::write("/tmp/small", b"x") {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        }
    );
    // Sparse growth costs nothing.
    let f = fs::OpenOptions::new()
        .write(true)
        .open("/tmp/runaway")
        .unwrap();
    println!(
        "sparse growth to 1 GiB: {:?}",
        f.set_len(1 << 30).map_err(|e| e.kind())
    );
    drop(f);
    fs::remove_file("/tmp/runaway").unwrap();
    let (again, _) = fill("/tmp/second");
    println!("after unlinking, the space is back: {}", again == n);
    println!("enospc ok");
}
