//! WASI preview1 error numbers (`errno`), as the guest sees them.

/// An error number.
pub type Errno = u16;

/// No error.
pub const SUCCESS: Errno = 0;
/// Permission denied.
pub const ACCES: Errno = 2;
/// Bad descriptor.
pub const BADF: Errno = 8;
/// File exists.
pub const EXIST: Errno = 20;
/// Bad address (a pointer outside linear memory).
pub const FAULT: Errno = 21;
/// File too large.
pub const FBIG: Errno = 22;
/// Invalid argument.
pub const INVAL: Errno = 28;
/// I/O error.
pub const IO: Errno = 29;
/// Is a directory.
pub const ISDIR: Errno = 31;
/// Too many open files.
pub const MFILE: Errno = 33;
/// Name too long.
pub const NAMETOOLONG: Errno = 37;
/// No such file or directory.
pub const NOENT: Errno = 44;
/// No space left (the scratch capacity).
pub const NOSPC: Errno = 51;
/// Function not implemented.
pub const NOSYS: Errno = 52;
/// Not a directory.
pub const NOTDIR: Errno = 54;
/// Directory not empty.
pub const NOTEMPTY: Errno = 55;
/// Not supported.
pub const NOTSUP: Errno = 58;
/// Value too large.
pub const OVERFLOW: Errno = 61;
/// Operation not permitted.
pub const PERM: Errno = 63;
/// Read-only file system.
pub const ROFS: Errno = 69;
/// Illegal seek.
pub const SPIPE: Errno = 70;
/// Outside the run's capabilities.
pub const NOTCAPABLE: Errno = 76;
