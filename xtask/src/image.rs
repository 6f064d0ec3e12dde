//! Disk images: `target/images/llmos-bios.img` and `llmos-uefi.img`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use bootparams::BootParams;
use clap::Args;
use llmos_boot::initrd::Initrd;
use llmos_boot::{Firmware, ImageSpec, build_image};

use crate::build::{Variant, build_kernel};
use crate::{paths, progress};

/// What goes into the image (shared by `image` and `run`).
#[derive(Debug, Clone, Default, Args)]
pub struct ContentArgs {
    /// A static Linux ELF to run as the first process instead of the runtime.
    #[arg(long, value_name = "ELF")]
    pub init: Option<PathBuf>,
    /// Arguments for the --init program (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub init_args: Vec<String>,
    /// Extra file for the initrd, as SRC:DEST (repeatable).
    #[arg(long = "add", value_name = "SRC:DEST")]
    pub add: Vec<String>,
    /// A GGUF model to put in the image instead of the default one.
    #[arg(long, value_name = "GGUF", conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Build the image without a model (and, without --init, without the
    /// runtime: the kernel boots and powers off).
    #[arg(long)]
    pub no_model: bool,
    /// CPU baseline for the runtime (a rustc target-cpu: native, x86-64-v2,
    /// …; default x86-64-v3).
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<String>,
    /// Log every syscall of the init program (strace-like) on the console.
    #[arg(long)]
    pub strace: bool,
    /// MiB of file data programs may write to the RAM filesystem (default:
    /// a quarter of the memory free at boot).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub fs_capacity: Option<u64>,
    /// A static IPv4 address with prefix (e.g. 10.0.2.15/24) instead of DHCP.
    #[arg(long, value_name = "CIDR")]
    pub ip: Option<String>,
    /// The default gateway (with --ip).
    #[arg(long, value_name = "IP", requires = "ip")]
    pub gateway: Option<String>,
    /// A DNS server, written to /etc/resolv.conf (with --ip; repeatable).
    #[arg(long, value_name = "IP", requires = "ip")]
    pub dns: Vec<String>,
    /// Restarts of a first process killed by a signal (abort, a fault)
    /// allowed in any 10 minutes; 0 powers off at the first death
    /// (default 5).
    #[arg(long, value_name = "N")]
    pub restarts: Option<u32>,
    /// Milliseconds before the first restart; each further restart in the
    /// window waits twice as long, up to 5 s or this (default 100).
    #[arg(long, value_name = "MS")]
    pub restart_backoff: Option<u32>,
    /// API keys for the runtime's HTTP API, one per line (at least 16
    /// printable characters each). Without it, the runtime makes a key at
    /// boot and shows it on the console only.
    #[arg(long, value_name = "FILE", conflicts_with = "no_model")]
    pub api_key_file: Option<PathBuf>,
    /// Another host name or address the runtime's API answers to
    /// (repeatable; see docs/api.md, "Browsers and web pages").
    #[arg(long = "allow-host", value_name = "NAME", conflicts_with = "no_model")]
    pub allow_hosts: Vec<String>,
    /// A web page origin allowed to call the runtime's API (repeatable).
    #[arg(
        long = "allow-origin",
        value_name = "ORIGIN",
        conflicts_with = "no_model"
    )]
    pub allow_origins: Vec<String>,
    /// A publisher's ed25519 public key (a file of 64 hex digits) that app
    /// signatures are checked against (repeatable), packed at
    /// /etc/llmos/trusted-keys/.
    #[arg(long = "trust-key", value_name = "FILE", conflicts_with = "no_model")]
    pub trust_keys: Vec<PathBuf>,
}

/// Where `--trust-key` files go in the image.
pub const TRUSTED_KEYS_IN_IMAGE: &str = "/etc/llmos/trusted-keys";

/// Checks a `--trust-key` file the way the runtime will: one ed25519
/// public key as 64 hex digits, `#` comments and blank lines aside.
pub fn check_trust_key(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--trust-key {}", path.display()))?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let bytes: Option<[u8; 32]> = match lines.as_slice() {
        [hex] if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let mut b = [0u8; 32];
            for (i, x) in b.iter_mut().enumerate() {
                *x = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
            }
            Some(b)
        }
        _ => None,
    };
    let ok = bytes
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .is_some_and(|k| !k.is_weak());
    if !ok {
        bail!(
            "--trust-key {}: not an ed25519 public key (one line of 64 hex digits)",
            path.display()
        );
    }
    Ok(())
}

/// Where the code interpreter's WASI runtimes go in the image.
pub const LANG_IN_IMAGE: &str = "/apps/lang";

/// Where the apps go in the image: `/apps/<name>/`.
pub const APPS_IN_IMAGE: &str = "/apps";

/// Where apps keep their data in llmos (the RAM filesystem).
pub const APP_DATA_IN_IMAGE: &str = "/var/lib/llmos/apps";

/// The apps, built and packed, as initrd entries under [`APPS_IN_IMAGE`].
pub fn app_entries() -> Result<Vec<Extra>> {
    let mut v = Vec::new();
    for (name, dir) in crate::apps::packed(&crate::apps::build()?)? {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            let file = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            v.push((p, format!("{APPS_IN_IMAGE}/{name}/{file}")));
        }
    }
    Ok(v)
}

/// The runtime's arguments for the apps in the image.
pub fn app_args() -> [String; 4] {
    [
        "--apps-dir".into(),
        APPS_IN_IMAGE.into(),
        "--app-data".into(),
        APP_DATA_IN_IMAGE.into(),
    ]
}

/// Where `--api-key-file` goes in the image.
pub const API_KEYS_IN_IMAGE: &str = "/etc/llmos/api-keys";

/// Checks an API key file the way the runtime will (so a bad file fails
/// the build, not the boot).
pub fn check_key_file(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--api-key-file {}", path.display()))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let k = line.trim();
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        if k.len() < 16 || !k.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "--api-key-file {} line {}: a key must be at least 16 printable ASCII characters without spaces",
                path.display(),
                i + 1
            );
        }
        n += 1;
    }
    if n == 0 {
        bail!(
            "--api-key-file {} holds no key (one key per line)",
            path.display()
        );
    }
    Ok(())
}

impl ContentArgs {
    /// Rejects options whose machinery has not landed yet.
    pub fn check_supported(&self) -> Result<()> {
        if self.init.is_none() && !self.init_args.is_empty() {
            bail!("arguments after `--` are for the --init program, but no --init was given");
        }
        for a in &self.add {
            parse_add(a)?;
        }
        if let Some(m) = &self.model {
            model_entry(m)?;
        }
        if let Some(k) = &self.api_key_file {
            if self.init.is_some() {
                bail!("--api-key-file is for the runtime; it does not go with --init");
            }
            check_key_file(k)?;
        }
        if self.init.is_some()
            && !(self.allow_hosts.is_empty()
                && self.allow_origins.is_empty()
                && self.trust_keys.is_empty())
        {
            bail!(
                "--allow-host, --allow-origin and --trust-key are for the runtime; they do not go with --init"
            );
        }
        for k in &self.trust_keys {
            check_trust_key(k)?;
        }
        crate::runtime::check_cpu(self.cpu())
    }

    /// The restart budget the options ask for (`None`: the kernel's
    /// default).
    pub fn restart(&self) -> Option<bootparams::Restart> {
        if self.restarts.is_none() && self.restart_backoff.is_none() {
            return None;
        }
        let d = bootparams::Restart::DEFAULT;
        let backoff_ms = self.restart_backoff.unwrap_or(d.backoff_ms);
        Some(bootparams::Restart {
            max_restarts: self.restarts.unwrap_or(d.max_restarts),
            backoff_ms,
            max_backoff_ms: d.max_backoff_ms.max(backoff_ms),
            ..d
        })
    }

    /// The runtime's CPU baseline.
    pub fn cpu(&self) -> &str {
        self.cpu.as_deref().unwrap_or(crate::runtime::DEFAULT_CPU)
    }

    /// The first process and the initrd's extra files: `--init` if given;
    /// else the runtime's chat console on the model (`--model`, or the
    /// default model, fetched once); with `--no-model` and no `--init`,
    /// none.
    pub fn resolve(&self) -> Result<(Option<InitProgram>, Vec<Extra>)> {
        let mut extra = self.extra_files()?;
        let init = match &self.init {
            Some(source) => Some(InitProgram {
                source: source.clone(),
                args: self.init_args.clone(),
            }),
            None if self.no_model => None,
            None => {
                let dest = match &self.model {
                    Some(m) => model_entry(m)?.1,
                    None => {
                        let entry = model_entry(&crate::model::default_model()?)?;
                        let dest = entry.1.clone();
                        extra.push(entry);
                        dest
                    }
                };
                let mut args = runtime_args(&dest);
                // The code interpreter's runtimes, mapped in place like the
                // model.
                let (python, quickjs) = crate::lang::runtimes()?;
                for p in [python, quickjs] {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    extra.push((p, format!("{LANG_IN_IMAGE}/{name}")));
                }
                args.extend(["--lang-dir".to_owned(), LANG_IN_IMAGE.to_owned()]);
                extra.extend(app_entries()?);
                args.extend(app_args());
                if let Some(k) = &self.api_key_file {
                    check_key_file(k)?;
                    extra.push((k.clone(), API_KEYS_IN_IMAGE.to_owned()));
                    args.extend(["--api-key-file".to_owned(), API_KEYS_IN_IMAGE.to_owned()]);
                }
                for h in &self.allow_hosts {
                    args.extend(["--allow-host".to_owned(), h.clone()]);
                }
                for o in &self.allow_origins {
                    args.extend(["--allow-origin".to_owned(), o.clone()]);
                }
                for (i, k) in self.trust_keys.iter().enumerate() {
                    check_trust_key(k)?;
                    let dest = format!("{TRUSTED_KEYS_IN_IMAGE}/{i}.pub");
                    extra.push((k.clone(), dest.clone()));
                    args.extend(["--trust-key".to_owned(), dest]);
                }
                Some(InitProgram {
                    source: stripped_runtime(self.cpu())?,
                    args,
                })
            }
        };
        Ok((init, extra))
    }
}

/// An extra initrd file: (source on the host, destination).
pub type Extra = (PathBuf, String);

/// The port of the runtime's HTTP API in the guest.
pub const API_PORT: u16 = 8080;

/// The runtime's arguments as the default first process, with the model
/// at `model` inside the image: the API on every interface (so a key is
/// required) and the chat console on the serial line.
pub fn runtime_args(model: &str) -> Vec<String> {
    ["serve", "--model", model, "--listen", "0.0.0.0:8080"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

impl ContentArgs {
    /// The static network configuration from --ip/--gateway/--dns.
    pub fn static_net(&self) -> Result<Option<bootparams::StaticNet>> {
        let Some(ip) = &self.ip else {
            return Ok(None);
        };
        let mut spec = ip.clone();
        spec.push(',');
        spec.push_str(self.gateway.as_deref().unwrap_or(""));
        for d in &self.dns {
            spec.push(',');
            spec.push_str(d);
        }
        parse_static_net(&spec).map(Some)
    }

    /// Extra initrd entries: `--add` files and the `--model` GGUF.
    pub fn extra_files(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut extra = self
            .add
            .iter()
            .map(|a| parse_add(a))
            .collect::<Result<Vec<_>>>()?;
        if let Some(m) = &self.model {
            extra.push(model_entry(m)?);
        }
        Ok(extra)
    }
}

/// Parses `ADDRESS/PREFIX,GATEWAY[,DNS…]` (an empty gateway means none).
pub fn parse_static_net(spec: &str) -> Result<bootparams::StaticNet> {
    let mut parts = spec.split(',');
    let cidr = parts.next().unwrap_or("");
    let (addr, prefix) = cidr
        .split_once('/')
        .with_context(|| format!("--ip {cidr:?}: use ADDRESS/PREFIX, e.g. 10.0.2.15/24"))?;
    let address: std::net::Ipv4Addr = addr
        .parse()
        .with_context(|| format!("--ip {cidr:?}: {addr:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .with_context(|| format!("--ip {cidr:?}: the prefix must be 0 to 32"))?;
    let gateway = match parts.next().unwrap_or("") {
        "" => None,
        g => Some(
            g.parse::<std::net::Ipv4Addr>()
                .with_context(|| format!("--gateway {g:?} is not an IPv4 address"))?
                .octets(),
        ),
    };
    let dns = parts
        .map(|d| {
            d.parse::<std::net::Ipv4Addr>()
                .map(|a| a.octets())
                .with_context(|| format!("--dns {d:?} is not an IPv4 address"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(bootparams::StaticNet {
        address: address.octets(),
        prefix,
        gateway,
        dns,
    })
}

/// Where a model goes in the initrd: `/models/<file name>`. The file must
/// exist and start with the GGUF magic.
pub fn model_entry(path: &Path) -> Result<(PathBuf, String)> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .with_context(|| format!("--model {}: cannot read the file", path.display()))?;
    if &magic != b"GGUF" {
        bail!(
            "--model {}: not a GGUF file (it starts with {:02x?}, not \"GGUF\")",
            path.display(),
            magic
        );
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--model {}: the file name is not UTF-8", path.display()))?;
    Ok((path.to_owned(), format!("/models/{name}")))
}

/// Options of `cargo xtask image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(flatten)]
    content: ContentArgs,
}

/// Paths of one image pair.
#[derive(Debug, Clone)]
pub struct Images {
    /// BIOS image.
    pub bios: PathBuf,
    /// UEFI image.
    pub uefi: PathBuf,
}

/// What `cargo xtask image` writes: the disk images (for USB sticks and
/// firmware boots) and the kernel and initrd they hold, which QEMU can also
/// load itself (PVH direct boot, `-kernel`/`-initrd`).
#[derive(Debug, Clone)]
pub struct Built {
    /// The disk images.
    pub images: Images,
    /// The kernel ELF (without debug sections).
    pub kernel: PathBuf,
    /// The initrd.
    pub initrd: PathBuf,
}

impl Built {
    /// A QEMU configuration that loads the kernel and initrd directly.
    pub fn direct_config(&self) -> llmos_qemu::Config {
        llmos_qemu::Config::direct(&self.kernel, &self.initrd)
    }
}

/// Writes a BIOS and a UEFI image for `kernel` (+ optional ramdisk) into
/// `dir`, named `<prefix>bios.img` / `<prefix>uefi.img`.
pub fn write_pair(
    kernel: &Path,
    ramdisk: Option<&Path>,
    dir: &Path,
    prefix: &str,
) -> Result<Images> {
    let spec = ImageSpec {
        kernel: kernel.to_owned(),
        ramdisk: ramdisk.map(Path::to_owned),
    };
    let bios = dir.join(format!("{prefix}bios.img"));
    let uefi = dir.join(format!("{prefix}uefi.img"));
    progress::spin(&format!("writing {}", bios.display()), || {
        build_image(&spec, Firmware::Bios, &bios)
    })?;
    progress::spin(&format!("writing {}", uefi.display()), || {
        build_image(&spec, Firmware::Uefi, &uefi)
    })?;
    Ok(Images { bios, uefi })
}

/// Checks that `path` is a static x86_64 Linux executable llmos can run,
/// with the same validation the kernel applies.
pub fn check_program(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading --init program {}", path.display()))?;
    kcore::elf::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{} cannot run on llmos: {e}", path.display()))?;
    Ok(())
}

/// Parses `--add SRC:DEST` (DEST absolute in the image).
pub fn parse_add(spec: &str) -> Result<(PathBuf, String)> {
    let (src, dest) = spec.rsplit_once(':').with_context(|| {
        format!("--add {spec:?}: use SRC:DEST, e.g. --add ./notes.txt:/data/notes.txt")
    })?;
    if !dest.starts_with('/') {
        bail!("--add {spec:?}: the destination must be an absolute path in the image");
    }
    let src = PathBuf::from(src);
    if !src.is_file() {
        bail!("--add {spec:?}: {} is not a file", src.display());
    }
    Ok((src, dest.to_owned()))
}

/// An init program and where it goes.
#[derive(Debug, Clone)]
pub struct InitProgram {
    /// The ELF on the host.
    pub source: PathBuf,
    /// Arguments after argv[0].
    pub args: Vec<String>,
}

/// The runtime built for `cpu`, without debug sections, as images carry
/// it (hosted mode runs the debug copy).
pub fn stripped_runtime(cpu: &str) -> Result<PathBuf> {
    strip_debug(&crate::runtime::build(cpu)?)
}

/// A copy of the ELF file `src` without its debug sections (symbols stay,
/// so backtraces still name functions), written to `target/stripped/`
/// under a name of its own for each source path. Written every time (it takes
/// milliseconds): cargo can put an older build at the same path, for
/// example the other kernel variant, so times say nothing. What goes on an
/// image is stripped; the debug copy stays where it was built.
pub fn strip_debug(src: &Path) -> Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    let name = src
        .file_name()
        .with_context(|| format!("{} has no file name", src.display()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::path::absolute(src)?.hash(&mut h);
    let dir = paths::target()
        .join("stripped")
        .join(format!("{:016x}", h.finish()));
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(name);
    // llvm-objcopy from the pinned toolchain (llvm-tools-preview, which
    // setup installs); binutils' objcopy otherwise.
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(paths::root())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let llvm = sysroot.map(|r| r.join("lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-objcopy"));
    let tool = match llvm {
        Some(l) if l.exists() => l,
        _ => PathBuf::from("objcopy"),
    };
    let tmp = out.with_extension("stripping");
    let status = Command::new(&tool)
        .arg("--strip-debug")
        .arg(src)
        .arg(&tmp)
        .status()
        .with_context(|| format!("running {}", tool.display()))?;
    if !status.success() {
        bail!("{} --strip-debug {} failed", tool.display(), src.display());
    }
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// Writes an initrd holding `params` and, if given, the init program (at
/// `/bin/<file name>`, which becomes `params.init`) to `out`.
pub fn write_initrd(params: &BootParams, init: Option<&InitProgram>, out: &Path) -> Result<()> {
    write_initrd_with(params, init, &[], out)
}

/// Like [`write_initrd`], with extra files (`--add`).
pub fn write_initrd_with(
    params: &BootParams,
    init: Option<&InitProgram>,
    extra: &[(PathBuf, String)],
    out: &Path,
) -> Result<()> {
    let mut rd = Initrd::new();
    for (src, dest) in extra {
        rd.add_file(dest, src, 0o644)?;
    }
    let mut params = params.clone();
    if let Some(p) = init {
        check_program(&p.source)?;
        let name = p
            .source
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", p.source.display()))?;
        let dest = format!("/bin/{name}");
        rd.add_file(&dest, &p.source, 0o755)?;
        let mut args = vec![dest.clone()];
        args.extend(p.args.iter().cloned());
        params.init = Some(bootparams::Init {
            path: dest,
            args,
            env: bootparams::default_env(),
        });
    }
    rd.add_bytes(&format!("/{}", bootparams::PATH), params.encode(), 0o644)?;
    rd.add_dir("/tmp")?;
    progress::spin(&format!("writing {}", out.display()), || rd.write(out))
}

/// Builds the kernel, the initrd and the contract images.
pub fn build_images(content: &ContentArgs) -> Result<Built> {
    content.check_supported()?;
    let kernel = build_kernel(Variant::Normal)?;
    progress::header("writing the initrd and disk images");
    let initrd = paths::images().join("initrd.cpio");
    let params = BootParams {
        trace_syscalls: content.strace,
        fs_capacity_mib: content.fs_capacity,
        net: content.static_net()?,
        restart: content.restart(),
        ..BootParams::default()
    };
    let (init, extra) = content.resolve()?;
    write_initrd_with(&params, init.as_ref(), &extra, &initrd)?;
    let images = write_pair(&kernel, Some(&initrd), &paths::images(), "llmos-")?;
    Ok(Built {
        images,
        kernel,
        initrd,
    })
}

/// Builds the test programs, the normal kernel and one initrd per case of
/// `llmos_tests::cases::CASES` in `target/images/prog/<case>.cpio`; the
/// tests have QEMU load the kernel (the test-hooks kernel, which
/// [`build_test_images`] builds, for cases with a `test_hook`) and initrd
/// directly.
pub fn build_program_images(runtime: &Path) -> Result<()> {
    let bin = crate::userland::build()?;
    // The cases boot target/images/kernel.elf.
    build_kernel(Variant::Normal)?;
    let dir = paths::images().join("prog");
    std::fs::create_dir_all(&dir)?;
    write_mmap_data()?;
    progress::header("writing test-program images");
    for case in llmos_tests::cases::CASES {
        let initrd = dir.join(format!("{}.cpio", case.name));
        let params = BootParams {
            trace_syscalls: case.strace,
            fs_capacity_mib: case.fs_capacity_mib,
            net: case.net.map(parse_static_net).transpose()?,
            restart: case.restart,
            test_hook: case.test_hook.map(String::from),
            ..BootParams::default()
        };
        let init = InitProgram {
            source: match case.lang {
                llmos_tests::cases::Lang::Runtime => runtime.to_path_buf(),
                _ => bin.join(case.program),
            },
            args: case.args.iter().map(|s| (*s).to_owned()).collect(),
        };
        let extra: Vec<(PathBuf, String)> = case
            .add
            .iter()
            .map(|(src, dest)| {
                let src = if let Some(rel) = src.strip_prefix("$IMAGES/") {
                    paths::images().join(rel)
                } else if let Some(rel) = src.strip_prefix("$MODELS/") {
                    paths::target().join("models").join(rel)
                } else if let Some(rel) = src.strip_prefix("$LANG/") {
                    paths::target().join("lang").join(rel)
                } else if let Some(rel) = src.strip_prefix("$APPS/") {
                    crate::apps::dir().join(rel)
                } else {
                    paths::root().join(src)
                };
                (src, (*dest).to_owned())
            })
            .collect();
        write_initrd_with(&params, Some(&init), &extra, &initrd)?;
        // Stale disk images from before the cases booted directly.
        let _ = std::fs::remove_file(dir.join(format!("{}-bios.img", case.name)));
    }
    Ok(())
}

/// Writes the mmap test's generated file unless it is already there.
fn write_mmap_data() -> Result<()> {
    let rel = llmos_tests::cases::MMAP_DATA.trim_start_matches("$IMAGES/");
    let path = paths::images().join(rel);
    let current =
        std::fs::metadata(&path).is_ok_and(|m| m.len() == llmos_tests::cases::MMAP_DATA_LEN as u64);
    if !current {
        progress::spin(&format!("writing {}", path.display()), || {
            std::fs::write(&path, llmos_tests::cases::mmap_data())
                .with_context(|| format!("writing {}", path.display()))
        })?;
    }
    Ok(())
}

/// Test scenarios the test-hooks kernel understands (see
/// `kernel/src/test_hooks.rs`).
pub const TEST_SCENARIOS: &[&str] = &[
    "panic",
    "page-fault",
    "stack-overflow",
    "heap-growth",
    "heap-growth-failure",
    "panic-with-locks-held",
    "recursive-panic",
    "net-link",
];

/// Builds the test-hooks kernel and one image pair per scenario in
/// `target/images/test/`: `<scenario>-bios.img`, `<scenario>-uefi.img`,
/// each with an initrd whose boot parameters name the scenario.
pub fn build_test_images() -> Result<()> {
    let kernel = build_kernel(Variant::TestHooks)?;
    let dir = paths::images().join("test");
    std::fs::create_dir_all(&dir)?;
    progress::header("writing test images");
    for scenario in TEST_SCENARIOS {
        if !scenario
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            bail!("bad scenario name {scenario:?}");
        }
        let initrd = dir.join(format!("{scenario}.cpio"));
        let params = BootParams {
            test_hook: Some((*scenario).to_owned()),
            ..BootParams::default()
        };
        write_initrd(&params, None, &initrd)?;
        write_pair(&kernel, Some(&initrd), &dir, &format!("{scenario}-"))?;
    }
    // An initrd whose second header is garbage: the kernel must refuse it
    // with a reason, not panic.
    let corrupt = dir.join("corrupt.cpio");
    let mut bytes = std::fs::read(paths::images().join("initrd.cpio")).or_else(|_| {
        write_initrd(&BootParams::default(), None, &corrupt)?;
        std::fs::read(&corrupt).map_err(anyhow::Error::from)
    })?;
    let second = bytes
        .windows(6)
        .skip(1)
        .position(|w| w == b"070701")
        .map(|p| p + 1)
        .ok_or_else(|| anyhow::anyhow!("initrd has a single entry"))?;
    bytes[second + 6..second + 14].copy_from_slice(b"zzzzzzzz");
    std::fs::write(&corrupt, &bytes)?;
    write_pair(&kernel, Some(&corrupt), &dir, "corrupt-initrd-")?;
    Ok(())
}

/// `cargo xtask image`.
pub fn image(args: &ImageArgs) -> Result<Built> {
    let built = build_images(&args.content)?;
    eprintln!(
        "BIOS image: {}\nUEFI image: {}\nkernel and initrd (QEMU direct boot): {} {}",
        built.images.bios.display(),
        built.images.uefi.display(),
        built.kernel.display(),
        built.initrd.display()
    );
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_key_files_are_checked_at_build_time() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pub");
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&f, format!("# publisher\n{hex}\n")).unwrap();
        check_trust_key(&f).unwrap();
        for bad in ["", "abcd", &"z".repeat(64), &format!("{hex}\n{hex}")] {
            std::fs::write(&f, bad).unwrap();
            let e = check_trust_key(&f).unwrap_err().to_string();
            assert!(e.contains("not an ed25519 public key"), "{e}");
        }
    }

    #[test]
    fn content_options_are_checked() {
        let c = ContentArgs {
            init_args: vec!["x".into()],
            ..Default::default()
        };
        let err = c.check_supported().unwrap_err().to_string();
        assert!(err.contains("no --init was given"), "{err}");
        let c = ContentArgs {
            init: Some("/bin/true".into()),
            ..Default::default()
        };
        assert!(c.check_supported().is_ok());
        let c = ContentArgs {
            add: vec!["a:b".into()],
            ..Default::default()
        };
        let err = c.check_supported().unwrap_err().to_string();
        assert!(err.contains("absolute path"), "{err}");
        let c = ContentArgs {
            add: vec!["/nonexistent:/x".into()],
            ..Default::default()
        };
        let err = c.check_supported().unwrap_err().to_string();
        assert!(err.contains("is not a file"), "{err}");
        let c = ContentArgs {
            add: vec!["Cargo.toml:/etc/x".into()],
            ..Default::default()
        };
        assert!(c.check_supported().is_ok());
        let c = ContentArgs {
            model: Some("Cargo.toml".into()),
            ..Default::default()
        };
        let err = c.check_supported().unwrap_err().to_string();
        assert!(err.contains("not a GGUF file"), "{err}");
        let c = ContentArgs {
            model: Some("/nonexistent.gguf".into()),
            ..Default::default()
        };
        let err = c.check_supported().unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
        let dir = std::env::temp_dir().join(format!("llmos-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gguf = dir.join("tiny.gguf");
        std::fs::write(&gguf, b"GGUF\x03\0\0\0").unwrap();
        let c = ContentArgs {
            model: Some(gguf.clone()),
            ..Default::default()
        };
        assert_eq!(
            c.extra_files().unwrap(),
            [(gguf, "/models/tiny.gguf".to_owned())]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let n = parse_static_net("10.0.2.15/24,10.0.2.2,10.0.2.3,1.1.1.1").unwrap();
        assert_eq!(
            (n.address, n.prefix, n.gateway, n.dns.len()),
            ([10, 0, 2, 15], 24, Some([10, 0, 2, 2]), 2)
        );
        assert_eq!(parse_static_net("10.0.0.1/8,").unwrap().gateway, None);
        for bad in [
            "10.0.2.15",
            "10.0.2.15/33",
            "x/24",
            "10.0.0.1/8,gw",
            "10.0.0.1/8,,dns",
        ] {
            assert!(parse_static_net(bad).is_err(), "{bad}");
        }
        let c = ContentArgs {
            no_model: true,
            ..Default::default()
        };
        assert!(c.check_supported().is_ok());
        let c = ContentArgs {
            cpu: Some("v3; rm".into()),
            ..Default::default()
        };
        assert!(c.check_supported().is_err());
        // With --no-model and no --init the image has no first process.
        let c = ContentArgs {
            no_model: true,
            ..Default::default()
        };
        let (init, extra) = c.resolve().unwrap();
        assert!(init.is_none() && extra.is_empty());
        assert_eq!(
            runtime_args("/models/m.gguf"),
            [
                "serve",
                "--model",
                "/models/m.gguf",
                "--listen",
                "0.0.0.0:8080"
            ]
        );
    }
}

#[cfg(test)]
mod program_checks {
    use super::*;

    #[test]
    fn dynamic_programs_are_refused_before_imaging() {
        // The host's own /bin/sh is dynamically linked.
        let err = check_program(Path::new("/bin/sh")).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        let err = check_program(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("reading --init program"), "{err}");
    }
}
