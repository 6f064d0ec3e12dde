//! exit_group from a secondary thread while other threads are blocked in
//! a futex wait (a Mutex held by main) and in a console read: the whole
//! process ends with that status.
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn main() {
    let lock = Arc::new(Mutex::new(()));
    let held = lock.lock().unwrap();
    let l2 = lock.clone();
    let _waiter = std::thread::spawn(move || {
        let _g = l2.lock();
        println!("the futex waiter got the lock?!");
    });
    let _reader = std::thread::spawn(|| {
        let mut b = [0u8; 1];
        let _ = std::io::stdin().read(&mut b);
        println!("the console reader returned?!");
    });
    let exiter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        println!("secondary thread calls exit_group(7)");
        std::process::exit(7);
    });
    let _ = exiter.join();
    drop(held);
    println!("main thread survived exit_group?!");
}
