//! The initial user stack, laid out exactly as Linux's `execve` does.
//!
//! From the top of the stack down: an 8-byte zero end marker, the
//! `AT_EXECFN` string, the environment strings, the argument strings, the
//! `AT_PLATFORM` string, the 16 `AT_RANDOM` bytes; then, 16-byte aligned,
//! the auxiliary vector (ending in `AT_NULL`), `envp` (NULL-terminated),
//! `argv` (NULL-terminated) and `argc`, where the stack pointer points.
//! glibc's and musl's start-up code read exactly this.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// `AT_*` keys.
#[allow(missing_docs)]
pub mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
    pub const MINSIGSTKSZ: u64 = 51;
}

/// Most bytes of strings and pointers accepted (Linux's default ARG_MAX
/// is a quarter of the stack limit; this is generous for a unikernel).
pub const MAX_STACK_DATA: usize = 512 * 1024;

/// What goes on the stack.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// `argv` strings (no NULs inside).
    pub args: &'a [&'a [u8]],
    /// `envp` strings (`KEY=value`).
    pub env: &'a [&'a [u8]],
    /// Auxiliary entries; `AT_RANDOM`, `AT_PLATFORM`, `AT_EXECFN` and
    /// `AT_NULL` are added by the builder because they point into the stack.
    pub aux: &'a [(u64, u64)],
    /// The 16 bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
    /// `AT_PLATFORM`, e.g. `x86_64`.
    pub platform: &'a [u8],
    /// `AT_EXECFN`: the path the program was started as.
    pub execfn: &'a [u8],
}

/// The built stack: copy `bytes` to `[sp, top)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The initial stack pointer (16-byte aligned, points at `argc`).
    pub sp: u64,
    /// The stack contents from `sp` to the top.
    pub bytes: Vec<u8>,
}

/// Why the stack cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// A string contains a NUL byte.
    InteriorNul,
    /// Arguments and environment exceed [`MAX_STACK_DATA`] (E2BIG).
    TooLarge,
    /// `top` is not 16-byte aligned or too low.
    BadTop,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StackError::InteriorNul => "an argument or environment string contains a NUL byte",
            StackError::TooLarge => "arguments and environment are too large (E2BIG)",
            StackError::BadTop => "stack top is misaligned",
        })
    }
}

/// Builds the initial stack below `top`.
pub fn build(top: u64, spec: &Spec<'_>) -> Result<Built, StackError> {
    if top % 16 != 0 || top < 4 * 4096 {
        return Err(StackError::BadTop);
    }
    let strings = spec
        .args
        .iter()
        .chain(spec.env.iter())
        .chain([&spec.execfn, &spec.platform]);
    let mut string_bytes = 0usize;
    for s in strings {
        if s.contains(&0) {
            return Err(StackError::InteriorNul);
        }
        string_bytes = string_bytes
            .checked_add(s.len() + 1)
            .ok_or(StackError::TooLarge)?;
    }
    let pointers = 1 + spec.args.len() + 1 + spec.env.len() + 1 + 2 * (spec.aux.len() + 4);
    if string_bytes + 8 * pointers + 64 > MAX_STACK_DATA {
        return Err(StackError::TooLarge);
    }

    // Strings area, filled downward from top - 8 (end marker).
    let mut cursor = top - 8;
    let place = |s: &[u8], cursor: &mut u64| -> u64 {
        *cursor -= s.len() as u64 + 1;
        *cursor
    };
    let execfn_at = place(spec.execfn, &mut cursor);
    let env_at: Vec<u64> = spec
        .env
        .iter()
        .rev()
        .map(|s| place(s, &mut cursor))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let args_at: Vec<u64> = spec
        .args
        .iter()
        .rev()
        .map(|s| place(s, &mut cursor))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let platform_at = place(spec.platform, &mut cursor);
    cursor &= !0xf;
    cursor -= 16;
    let random_at = cursor;

    // Pointer area.
    let mut words: Vec<u64> = Vec::with_capacity(pointers);
    words.push(spec.args.len() as u64);
    words.extend(&args_at);
    words.push(0);
    words.extend(&env_at);
    words.push(0);
    for &(k, v) in spec.aux {
        words.extend([k, v]);
    }
    words.extend([
        at::RANDOM,
        random_at,
        at::PLATFORM,
        platform_at,
        at::EXECFN,
        execfn_at,
        at::NULL,
        0,
    ]);
    let mut sp = cursor - 8 * words.len() as u64;
    sp &= !0xf;

    let len = (top - sp) as usize;
    let mut bytes = vec![0u8; len];
    let off = |addr: u64| (addr - sp) as usize;
    for (i, w) in words.iter().enumerate() {
        let o = off(sp) + 8 * i;
        bytes[o..o + 8].copy_from_slice(&w.to_le_bytes());
    }
    let mut put = |addr: u64, s: &[u8]| {
        let o = off(addr);
        bytes[o..o + s.len()].copy_from_slice(s);
        bytes[o + s.len()] = 0;
    };
    put(execfn_at, spec.execfn);
    for (a, s) in env_at.iter().zip(spec.env) {
        put(*a, s);
    }
    for (a, s) in args_at.iter().zip(spec.args) {
        put(*a, s);
    }
    put(platform_at, spec.platform);
    let r = off(random_at);
    bytes[r..r + 16].copy_from_slice(&spec.random);
    Ok(Built { sp, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the stack back the way a C runtime does.
    fn word(b: &Built, addr: u64) -> u64 {
        let o = (addr - b.sp) as usize;
        u64::from_le_bytes(b.bytes[o..o + 8].try_into().unwrap())
    }

    fn cstr(b: &Built, addr: u64) -> Vec<u8> {
        let o = (addr - b.sp) as usize;
        let end = b.bytes[o..].iter().position(|&c| c == 0).unwrap();
        b.bytes[o..o + end].to_vec()
    }

    #[test]
    fn layout_matches_linux() {
        let top = 0x7fff_0000_0000u64;
        let spec = Spec {
            args: &[b"hello", b"a b", b""],
            env: &[b"PATH=/bin", b"HOME=/"],
            aux: &[(at::PAGESZ, 4096), (at::ENTRY, 0x401000)],
            random: [7; 16],
            platform: b"x86_64",
            execfn: b"/bin/hello",
        };
        let b = build(top, &spec).unwrap();
        assert_eq!(b.sp % 16, 0);
        assert_eq!(b.sp + b.bytes.len() as u64, top);
        assert_eq!(word(&b, b.sp), 3, "argc");
        let argv: Vec<Vec<u8>> = (0..3)
            .map(|i| cstr(&b, word(&b, b.sp + 8 + 8 * i)))
            .collect();
        assert_eq!(argv, [b"hello".to_vec(), b"a b".to_vec(), b"".to_vec()]);
        assert_eq!(word(&b, b.sp + 8 * 4), 0, "argv terminator");
        let envp = b.sp + 8 * 5;
        assert_eq!(cstr(&b, word(&b, envp)), b"PATH=/bin");
        assert_eq!(cstr(&b, word(&b, envp + 8)), b"HOME=/");
        assert_eq!(word(&b, envp + 16), 0);
        let mut aux = envp + 24;
        let mut seen = Vec::new();
        loop {
            let (k, v) = (word(&b, aux), word(&b, aux + 8));
            if k == at::NULL {
                break;
            }
            seen.push((k, v));
            aux += 16;
        }
        assert_eq!(seen[0], (at::PAGESZ, 4096));
        assert_eq!(seen[1], (at::ENTRY, 0x401000));
        let get = |k| seen.iter().find(|(kk, _)| *kk == k).unwrap().1;
        let r = get(at::RANDOM);
        assert_eq!(r % 16, 0);
        let o = (r - b.sp) as usize;
        assert_eq!(&b.bytes[o..o + 16], &[7; 16]);
        assert_eq!(cstr(&b, get(at::PLATFORM)), b"x86_64");
        assert_eq!(cstr(&b, get(at::EXECFN)), b"/bin/hello");
        assert_eq!(word(&b, top - 8), 0, "end marker");
    }

    #[test]
    fn rejects_bad_input() {
        let base = Spec {
            args: &[b"x"],
            env: &[],
            aux: &[],
            random: [0; 16],
            platform: b"x86_64",
            execfn: b"/x",
        };
        assert_eq!(build(0x7000_0000_0008, &base), Err(StackError::BadTop));
        let nul = Spec {
            args: &[b"a\0b"],
            ..base.clone()
        };
        assert_eq!(build(0x7000_0000_0000, &nul), Err(StackError::InteriorNul));
        let big = vec![b'a'; MAX_STACK_DATA];
        let args: [&[u8]; 1] = [&big];
        let large = Spec {
            args: &args,
            ..base.clone()
        };
        assert_eq!(build(0x7000_0000_0000, &large), Err(StackError::TooLarge));
        assert!(
            build(0x7000_0000_0000, &Spec { args: &[], ..base }).is_ok(),
            "argc 0 is allowed"
        );
    }
}
