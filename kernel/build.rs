//! Links the kernel binary at its fixed higher-half address with
//! `linker.ld` (see there for why one layout serves both boot paths).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rustc-link-arg-bin=kernel=-T{dir}/linker.ld");
    println!("cargo:rustc-link-arg-bin=kernel=--no-pie");
    println!("cargo:rustc-link-arg-bin=kernel=-zmax-page-size=4096");
    println!("cargo:rustc-link-arg-bin=kernel=-znorelro");
}
