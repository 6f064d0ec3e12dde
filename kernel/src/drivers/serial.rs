//! The 16550 UART on COM1: the kernel's console and log sink.
//!
//! [`Uart16550`] owns a UART's eight I/O ports and implements
//! [`embedded_io::Write`]. The console is one `Uart16550` behind a spin
//! lock, taken with interrupts off so an interrupt handler that logs cannot
//! deadlock against the code it interrupted. [`emergency_writer`] bypasses
//! the lock for the panic path, where the lock may be held by the code that
//! failed.

use core::convert::Infallible;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;
use x86_64::instructions::port::Port;

/// The COM1 I/O base.
pub const COM1: u16 = 0x3f8;

/// Line status register bits.
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Bounds the wait for the transmitter so a missing UART cannot hang boot.
const TX_SPIN_LIMIT: u32 = 100_000;

/// A 16550-compatible UART.
pub struct Uart16550 {
    base: u16,
    present: bool,
}

impl Uart16550 {
    /// Takes the UART at I/O base `base`.
    ///
    /// # Safety
    ///
    /// `base..base + 8` must be a 16550's ports, and the caller must not let
    /// two handles drive the same UART at once (the panic path's
    /// [`emergency_writer`] is the one documented exception).
    pub const unsafe fn new(base: u16) -> Self {
        Self {
            base,
            present: true,
        }
    }

    fn outb(&mut self, offset: u16, value: u8) {
        let mut port = Port::<u8>::new(self.base + offset);
        // SAFETY: the constructor's contract makes these ports this UART's
        // registers, which only this handle drives.
        unsafe { port.write(value) }
    }

    fn inb(&mut self, offset: u16) -> u8 {
        let mut port = Port::<u8>::new(self.base + offset);
        // SAFETY: as in `outb`; reading UART registers has no side effects
        // beyond the UART itself.
        unsafe { port.read() }
    }

    /// Programs 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on,
    /// UART interrupts off; then checks the UART is really there with the
    /// scratch register.
    pub fn init(&mut self) {
        self.outb(1, 0x00); // IER: no interrupts
        self.outb(3, 0x80); // LCR: DLAB on
        self.outb(0, 0x01); // divisor low: 115200 / 1
        self.outb(1, 0x00); // divisor high
        self.outb(3, 0x03); // LCR: 8N1, DLAB off
        self.outb(2, 0xc7); // FCR: enable + clear FIFOs, 14-byte threshold
        self.outb(4, 0x03); // MCR: DTR + RTS
        self.outb(7, 0x5a);
        self.present = self.inb(7) == 0x5a;
    }

    /// Whether the scratch-register probe found a UART.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// A received byte, if one is waiting (line status: data ready).
    pub fn try_read_byte(&mut self) -> Option<u8> {
        if !self.present || self.inb(5) & 1 == 0 {
            return None;
        }
        Some(self.inb(0))
    }

    fn write_byte(&mut self, byte: u8) {
        if !self.present {
            return;
        }
        let mut spins = 0;
        while self.inb(5) & LSR_THR_EMPTY == 0 {
            spins += 1;
            if spins > TX_SPIN_LIMIT {
                return; // drop the byte rather than hang
            }
            core::hint::spin_loop();
        }
        self.outb(0, byte);
        AT_LINE_START.store(byte == b'\n', Ordering::Relaxed);
    }
}

impl embedded_io::ErrorType for Uart16550 {
    type Error = Infallible;
}

impl embedded_io::Write for Uart16550 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            self.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Whether the last byte written ended a line, so the panic path knows if
/// it must start a fresh line.
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

// SAFETY: COM1 is the standard PC serial port; this is the only regular
// handle to it.
static CONSOLE: Mutex<Uart16550> = Mutex::new(unsafe { Uart16550::new(COM1) });

/// Programs COM1. Called once, first thing at boot.
pub fn init() {
    CONSOLE.lock().init();
}

/// Runs `f` with exclusive access to the console, interrupts off.
pub fn with_console<R>(f: impl FnOnce(&mut Uart16550) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut CONSOLE.lock()))
}

/// A writer for the panic and fatal-exception paths that does not take the
/// console lock (the failing code may hold it) and starts on a fresh line.
pub fn emergency_writer() -> impl fmt::Write {
    // SAFETY: only used on the way to power-off, with interrupts disabled
    // on this CPU; at worst its bytes interleave with a half-written line,
    // which is why it starts a new line first.
    let mut uart = unsafe { Uart16550::new(COM1) };
    if !AT_LINE_START.load(Ordering::Relaxed) {
        embedded_io::Write::write_all(&mut uart, b"\r\n").ok();
    }
    EmergencyWriter(uart)
}

struct EmergencyWriter(Uart16550);

impl fmt::Write for EmergencyWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        kcore::bootlog::CrlfWriter::new(&mut self.0).write_str(s)
    }
}
