//! `fwasm build`: compiles C and C++ functions into fwasm modules with clang.
//!
//! The C SDK (`sdk-c/`: `fwasm.h`, Faasm's `faasm/*.h` and their implementation) is embedded
//! in this binary and written to a temporary directory for each build, so `fwasm build` works
//! anywhere clang for `wasm32-wasi` is installed. Every source is compiled with `-O2`, C++
//! with `-fno-exceptions -std=c++17`, and linked together with the SDK into a WASI reactor
//! (`-mexec-model=reactor`) with a 64 KiB stack placed first in memory.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The C API a function is written against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// fwasm's own API (`fwasm.h`): the function defines `fwasm_handle_request`.
    Fwasm,
    /// Faasm's API (`faasm/faasm.h`): the function defines `main`.
    Faasm,
}

impl Api {
    fn describe(self) -> &'static str {
        match self {
            Api::Fwasm => "the fwasm C API",
            Api::Faasm => "the Faasm C API",
        }
    }

    fn stack_size(self) -> u32 {
        match self {
            Api::Fwasm => STACK_SIZE,
            Api::Faasm => FAASM_STACK_SIZE,
        }
    }
}

/// What to build, as `fwasm build` takes it.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// C (`.c`) and C++ (`.cc`, `.cpp`, `.cxx`, `.c++`, `.C`) sources.
    pub sources: Vec<PathBuf>,
    /// The module to write.
    pub output: PathBuf,
    /// The API to build for; `None` takes it from the entry point the compiled sources define
    /// (`main`: Faasm's; `fwasm_handle_request`: fwasm's).
    pub api: Option<Api>,
    /// The WASI sysroot, if clang does not find it by itself (Debian's clang does).
    pub sysroot: Option<PathBuf>,
    /// The clang to run; `None` means `$FWASM_CLANG`, else `clang` or `clang-NN` on `PATH`.
    pub clang: Option<PathBuf>,
    /// Extra include directories for the user's sources.
    pub include_dirs: Vec<PathBuf>,
    /// Extra clang arguments for compiling the user's sources (after fwasm's own).
    pub cflags: Vec<String>,
    /// Extra clang arguments for linking.
    pub ldflags: Vec<String>,
    /// Print every clang command.
    pub verbose: bool,
    /// Print nothing but clang's diagnostics (which also go into the error).
    pub quiet: bool,
}

/// What a successful build produced.
#[derive(Clone, Debug)]
pub struct BuildReport {
    pub output: PathBuf,
    pub api: Api,
    /// Size of the module in bytes.
    pub size: u64,
    /// Initial linear memory, in 64 KiB pages.
    pub initial_memory_pages: u32,
    /// The module's imports as `module.name`.
    pub imports: Vec<String>,
    /// The module's export names.
    pub exports: Vec<String>,
    /// clang's warnings, if any (also printed unless `quiet`).
    pub warnings: String,
}

/// The SDK files, as they are laid out in the temporary directory.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "include/fwasm.h",
        include_str!("../../../sdk-c/include/fwasm.h"),
    ),
    (
        "include/mpi.h",
        include_str!("../../../sdk-c/include/mpi.h"),
    ),
    (
        "include/faasm/faasm.h",
        include_str!("../../../sdk-c/include/faasm/faasm.h"),
    ),
    (
        "include/faasm/core.h",
        include_str!("../../../sdk-c/include/faasm/core.h"),
    ),
    (
        "include/faasm/input.h",
        include_str!("../../../sdk-c/include/faasm/input.h"),
    ),
    (
        "include/faasm/compare.h",
        include_str!("../../../sdk-c/include/faasm/compare.h"),
    ),
    (
        "include/faasm/array.h",
        include_str!("../../../sdk-c/include/faasm/array.h"),
    ),
    (
        "include/faasm/files.h",
        include_str!("../../../sdk-c/include/faasm/files.h"),
    ),
    (
        "include/faasm/memory.h",
        include_str!("../../../sdk-c/include/faasm/memory.h"),
    ),
    (
        "include/faasm/print.h",
        include_str!("../../../sdk-c/include/faasm/print.h"),
    ),
    (
        "include/faasm/random.h",
        include_str!("../../../sdk-c/include/faasm/random.h"),
    ),
    (
        "include/faasm/state.h",
        include_str!("../../../sdk-c/include/faasm/state.h"),
    ),
    (
        "include/faasm/time.h",
        include_str!("../../../sdk-c/include/faasm/time.h"),
    ),
    (
        "include/faasm/host_interface.h",
        include_str!("../../../sdk-c/include/faasm/host_interface.h"),
    ),
    (
        "include/faasm/migrate.h",
        include_str!("../../../sdk-c/include/faasm/migrate.h"),
    ),
    (
        "include/faasm/shared_mem.h",
        include_str!("../../../sdk-c/include/faasm/shared_mem.h"),
    ),
    (
        "include/netdb.h",
        include_str!("../../../sdk-c/include/netdb.h"),
    ),
    (
        "include/sys/socket.h",
        include_str!("../../../sdk-c/include/sys/socket.h"),
    ),
    (
        "unsupported/dlfcn.h",
        include_str!("../../../sdk-c/include/unsupported/dlfcn.h"),
    ),
    (
        "unsupported/omp.h",
        include_str!("../../../sdk-c/include/unsupported/omp.h"),
    ),
    (
        "unsupported/pthread.h",
        include_str!("../../../sdk-c/include/unsupported/pthread.h"),
    ),
    (
        "unsupported/semaphore.h",
        include_str!("../../../sdk-c/include/unsupported/semaphore.h"),
    ),
    (
        "src/internal.h",
        include_str!("../../../sdk-c/src/internal.h"),
    ),
    ("src/fwasm.c", include_str!("../../../sdk-c/src/fwasm.c")),
    ("src/faasm.c", include_str!("../../../sdk-c/src/faasm.c")),
    ("src/mpi.c", include_str!("../../../sdk-c/src/mpi.c")),
    ("src/socket.c", include_str!("../../../sdk-c/src/socket.c")),
    (
        "src/host_interface.c",
        include_str!("../../../sdk-c/src/host_interface.c"),
    ),
];

const TARGET: &str = "--target=wasm32-wasi";

/// WASI libc's emulations: the define that declares each, and the library that has it.
const EMULATED: &[(&str, &str)] = &[
    (
        "-D_WASI_EMULATED_PROCESS_CLOCKS",
        "-lwasi-emulated-process-clocks",
    ),
    ("-D_WASI_EMULATED_MMAN", "-lwasi-emulated-mman"),
];
/// The stack of a function on fwasm's C API, and of one on Faasm's (Faasm's own size). A large
/// stack costs a call only the pages it touches (the executor's memories are not zeroed
/// again on creation: vendor/README.md).
const STACK_SIZE: u32 = 64 << 10;
const FAASM_STACK_SIZE: u32 = 4 << 20;
const CLANG_NAMES: &[&str] = &[
    "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
];
const APT_INSTALL: &str = "sudo apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 \
                           libc++-14-dev-wasm32 libc++abi-14-dev-wasm32";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    C,
    Cxx,
}

/// Whether `path` names a C or C++ source `fwasm build` takes.
pub fn is_source(path: &Path) -> bool {
    language(path).is_ok()
}

fn language(source: &Path) -> anyhow::Result<Lang> {
    match source.extension().and_then(|e| e.to_str()) {
        Some("c") => Ok(Lang::C),
        Some("cc" | "cpp" | "cxx" | "c++" | "C") => Ok(Lang::Cxx),
        _ => bail!(
            "{}: not a C or C++ source (fwasm build takes .c, .cc, .cpp, .cxx and .c++ files)",
            source.display()
        ),
    }
}

/// The entry points that make a function a Faasm-API one: `main`, as wasi-libc's clang names
/// it (`__main_void` for `main(void)`, `__main_argc_argv` with arguments).
const FAASM_ENTRIES: &[&str] = &["main", "__main_void", "__main_argc_argv", "__original_main"];

/// fwasm's own C API's entry point.
const FWASM_ENTRY: &str = "fwasm_handle_request";

/// The API the compiled `objects` (each with its source) are written against, from the entry
/// point they define, with the source that defines it; `None` if none defines one.
fn api_defined_by(objects: &[(PathBuf, PathBuf)]) -> anyhow::Result<Option<(Api, PathBuf)>> {
    let (mut faasm, mut fwasm) = (None, None);
    for (source, object) in objects {
        let bytes =
            std::fs::read(object).with_context(|| format!("cannot read {}", object.display()))?;
        let defined = defined_functions(&bytes).with_context(|| {
            format!(
                "cannot read the symbols clang wrote for {}",
                source.display()
            )
        })?;
        for name in defined {
            if FAASM_ENTRIES.contains(&name.as_str()) && faasm.is_none() {
                faasm = Some(source.clone());
            }
            if name == FWASM_ENTRY && fwasm.is_none() {
                fwasm = Some(source.clone());
            }
        }
    }
    match (faasm, fwasm) {
        (Some(main), Some(handler)) => bail!(
            "{} defines main (Faasm's API) and {} defines {FWASM_ENTRY} (fwasm's): a function \
             has one entry point; choose one, or say which API with --api faasm|fwasm",
            main.display(),
            handler.display()
        ),
        (Some(main), None) => Ok(Some((Api::Faasm, main))),
        (None, Some(handler)) => Ok(Some((Api::Fwasm, handler))),
        (None, None) => Ok(None),
    }
}

/// The functions a wasm object file defines and others may call (its `linking` section's
/// symbol table, less undefined and file-local symbols). LLVM bitcode (from `-flto`) says
/// nothing here: its sources take the default API, or `--api`.
fn defined_functions(object: &[u8]) -> anyhow::Result<Vec<String>> {
    use wasmparser::{KnownCustom, Linking, Parser, Payload, SymbolFlags, SymbolInfo};
    const BITCODE: &[u8] = b"BC\xC0\xDE";
    let mut names = Vec::new();
    if object.starts_with(BITCODE) {
        return Ok(names);
    }
    for payload in Parser::new(0).parse_all(object) {
        let Payload::CustomSection(section) = payload? else {
            continue;
        };
        let KnownCustom::Linking(linking) = section.as_known() else {
            continue;
        };
        for subsection in linking.subsections() {
            let Linking::SymbolTable(symbols) = subsection? else {
                continue;
            };
            for symbol in symbols {
                let SymbolInfo::Func {
                    flags,
                    name: Some(name),
                    ..
                } = symbol?
                else {
                    continue;
                };
                if !flags.intersects(SymbolFlags::UNDEFINED | SymbolFlags::BINDING_LOCAL) {
                    names.push(name.to_string());
                }
            }
        }
    }
    Ok(names)
}

/// The clang to run: the option, `$FWASM_CLANG`, or the first of `clang`, `clang-NN` on PATH.
pub fn find_clang(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("FWASM_CLANG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in CLANG_NAMES {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "clang was not found on PATH. fwasm build needs clang with the wasm32-wasi target and \
         WASI's libc; on Debian or Ubuntu:\n    {APT_INSTALL}\nor set FWASM_CLANG to a clang \
         that has them (e.g. wasi-sdk's, whose sysroot you then pass with --sysroot)"
    )
}

/// Builds the function; see the module documentation.
pub fn build(opts: &BuildOptions) -> anyhow::Result<BuildReport> {
    if opts.sources.is_empty() {
        bail!("give at least one C or C++ source");
    }
    let langs = opts
        .sources
        .iter()
        .map(|s| language(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for source in &opts.sources {
        if !source.is_file() {
            bail!("{}: no such file", source.display());
        }
    }
    let clang = find_clang(opts.clang.as_deref())?;
    let say = |line: String| {
        if !opts.quiet {
            eprintln!("{line}");
        }
    };

    let out_name = opts.output.display();
    say(format!("building {out_name}"));
    let temp = tempfile::Builder::new()
        .prefix("fwasm-build-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sdk = temp.path().join("sdk");
    for (path, text) in SDK_FILES {
        let file = sdk.join(path);
        std::fs::create_dir_all(file.parent().expect("SDK files are in directories"))?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    let include = sdk.join("include");

    let mut run = Runner {
        clang: &clang,
        opts,
        warnings: String::new(),
        color: std::io::stderr().is_terminal(),
    };
    let system = SystemIncludes::find(&clang, opts, langs.contains(&Lang::Cxx))?;
    let mut objects = Vec::new();
    for (i, (source, lang)) in opts.sources.iter().zip(&langs).enumerate() {
        say(format!("  compiling {}", source.display()));
        let object = temp.path().join(format!("{i}-{}.o", stem(source)));
        let mut args = compile_args(*lang, source, &object, &include, &system, opts);
        for dir in &opts.include_dirs {
            let mut inc = OsString::from("-I");
            inc.push(dir);
            args.push(inc);
        }
        args.extend(opts.cflags.iter().map(OsString::from));
        run.clang(&args, &format!("compile {}", source.display()))?;
        objects.push(object);
    }
    // The API is what the compiled code defines as its entry point, whatever it includes.
    let compiled: Vec<(PathBuf, PathBuf)> = opts
        .sources
        .iter()
        .cloned()
        .zip(objects.iter().cloned())
        .collect();
    let detected = match opts.api {
        Some(_) => None,
        None => api_defined_by(&compiled)?,
    };
    let api = match (opts.api, &detected) {
        (Some(api), _) => api,
        (None, Some((api, _))) => *api,
        (None, None) => Api::Fwasm,
    };
    match (opts.api, &detected) {
        (Some(_), _) => say(format!("  building against {} (--api)", api.describe())),
        (None, Some((Api::Faasm, source))) => say(format!(
            "  {} defines main: building against {}",
            source.display(),
            api.describe()
        )),
        (None, Some((Api::Fwasm, source))) => say(format!(
            "  {} defines {FWASM_ENTRY}: building against {}",
            source.display(),
            api.describe()
        )),
        (None, None) => say(format!(
            "  no source defines main or {FWASM_ENTRY}: building against {}",
            api.describe()
        )),
    }
    let mut sdk_sources = vec!["fwasm.c", "mpi.c", "socket.c"];
    if api == Api::Faasm {
        sdk_sources.extend(["faasm.c", "host_interface.c"]);
    }
    say(format!(
        "  compiling the C SDK ({})",
        sdk_sources.join(", ")
    ));
    for name in sdk_sources {
        let source = sdk.join("src").join(name);
        let object = temp.path().join(format!("sdk-{}.o", stem(&source)));
        let mut args = compile_args(Lang::C, &source, &object, &include, &system, opts);
        args.push("-Wall".into());
        run.clang(&args, &format!("compile the C SDK's {name}"))?;
        objects.push(object);
    }

    say(format!("  linking {out_name}"));
    let linked = temp.path().join("out.wasm");
    let mut args: Vec<OsString> = vec![TARGET.into()];
    if langs.contains(&Lang::Cxx) {
        args.push("--driver-mode=g++".into()); // links libc++ and libc++abi
    }
    args.extend(sysroot_arg(opts));
    for arg in [
        "-mexec-model=reactor",
        "-O2",
        &format!("-Wl,-z,stack-size={}", api.stack_size()),
        "-Wl,--stack-first",
        "-Wl,--strip-debug",
    ] {
        args.push(arg.into());
    }
    args.extend(objects.iter().map(|o| o.as_os_str().to_owned()));
    args.extend(EMULATED.iter().map(|(_, lib)| OsString::from(*lib)));
    // printf and scanf of long double, as Faasm's toolchain links them.
    args.push("-lc-printscan-long-double".into());
    args.push("-o".into());
    args.push(linked.as_os_str().to_owned());
    args.extend(opts.ldflags.iter().map(OsString::from));
    run.clang(&args, &format!("link {out_name}"))?;

    let module = std::fs::read(&linked).context("cannot read the linked module")?;
    let info = inspect(&module).context("clang produced a module fwasm cannot read")?;
    // The same check an upload makes, so a module that builds also uploads.
    let abi = fwasm_executor::validate(&module)
        .with_context(|| "the linked module is not a valid fwasm function; is the SDK complete?")?
        .abi;
    let expected = match api {
        Api::Fwasm => fwasm_executor::Abi::FwasmV1,
        Api::Faasm => fwasm_executor::Abi::FaasmC,
    };
    if abi != expected {
        bail!("the linked module speaks {abi}, not {expected}; is the SDK complete?");
    }
    if let Some(dir) = opts.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&opts.output, &module)
        .with_context(|| format!("cannot write {}", opts.output.display()))?;
    let size = module.len() as u64;
    say(format!(
        "built {out_name}: {} ({size} bytes), {} of initial memory, {}",
        human_size(size),
        human_size(u64::from(info.initial_pages) * 65536),
        api.describe()
    ));
    Ok(BuildReport {
        output: opts.output.clone(),
        api,
        size,
        initial_memory_pages: info.initial_pages,
        imports: info.imports,
        exports: info.exports,
        warnings: run.warnings,
    })
}

/// The header directories clang searches for wasm32-wasi that are WASI's (its libc and libc++)
/// or clang's own, per language: not the build machine's `/usr/include`, which Debian's clang
/// searches after WASI's.
struct SystemIncludes {
    c: Vec<PathBuf>,
    cxx: Vec<PathBuf>,
}

impl SystemIncludes {
    fn find(clang: &Path, opts: &BuildOptions, cxx: bool) -> anyhow::Result<Self> {
        Ok(Self {
            c: search_list(clang, opts, Lang::C)?,
            cxx: match cxx {
                true => search_list(clang, opts, Lang::Cxx)?,
                false => Vec::new(),
            },
        })
    }

    fn of(&self, lang: Lang) -> &[PathBuf] {
        match lang {
            Lang::C => &self.c,
            Lang::Cxx => &self.cxx,
        }
    }
}

/// clang's `#include <...>` search list for `lang`, WASI's and clang's own directories only.
fn search_list(clang: &Path, opts: &BuildOptions, lang: Lang) -> anyhow::Result<Vec<PathBuf>> {
    let mut command = Command::new(clang);
    command.arg(TARGET);
    if lang == Lang::Cxx {
        command.arg("--driver-mode=g++");
    }
    command.args(sysroot_arg(opts));
    let language = match lang {
        Lang::C => "c",
        Lang::Cxx => "c++",
    };
    command.args(["-E", "-v", "-x", language, "-"]);
    command.stdin(std::process::Stdio::null());
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", clang.display()))?;
    let text = String::from_utf8_lossy(&output.stderr);
    let listed = text
        .lines()
        .skip_while(|line| !line.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|line| !line.starts_with("End of search list."))
        .map(|line| PathBuf::from(line.trim()));
    let wasi = |dir: &Path| {
        let text = dir.to_string_lossy();
        let under_sysroot = opts
            .sysroot
            .as_ref()
            .is_some_and(|root| dir.starts_with(root));
        text.contains("wasm32-wasi") || text.contains("/lib/clang/") || under_sysroot
    };
    let kept: Vec<PathBuf> = listed.filter(|dir| wasi(dir)).collect();
    if !output.status.success() || !kept.iter().any(|dir| dir.join("stdio.h").is_file()) {
        bail!(
            "{} lists no WASI header directory for wasm32-wasi (no stdio.h among {kept:?}); \
             install WASI's libc (on Debian or Ubuntu: {APT_INSTALL}) or pass --sysroot",
            clang.display()
        );
    }
    Ok(kept)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".into())
}

fn sysroot_arg(opts: &BuildOptions) -> Option<OsString> {
    opts.sysroot.as_ref().map(|dir| {
        let mut arg = OsString::from("--sysroot=");
        arg.push(dir);
        arg
    })
}

fn compile_args(
    lang: Lang,
    source: &Path,
    object: &Path,
    include: &Path,
    system: &SystemIncludes,
    opts: &BuildOptions,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![TARGET.into()];
    if lang == Lang::Cxx {
        args.extend(["--driver-mode=g++", "-fno-exceptions", "-std=c++17"].map(OsString::from));
    }
    args.extend(sysroot_arg(opts));
    args.extend(["-O2", "-D__fwasm__=1"].map(OsString::from));
    // WASI libc's emulations of clock() and anonymous mmap (memory from the heap), which
    // Faasm's toolchain also gives functions.
    args.extend(EMULATED.iter().map(|(define, _)| OsString::from(*define)));
    let mut inc = OsString::from("-I");
    inc.push(include);
    args.push(inc);
    // Headers of features a function cannot use, which fail saying so, before the build
    // machine's own (which clang would otherwise find after WASI's).
    let mut unsupported = OsString::from("-I");
    unsupported.push(include.with_file_name("unsupported"));
    args.push(unsupported);
    // WASI's headers and clang's own, and never the build machine's (a glibc header found
    // for one WASI lacks fails deep inside glibc instead of saying what is missing).
    args.push("-nostdinc".into());
    for dir in system.of(lang) {
        args.push("-isystem".into());
        args.push(dir.as_os_str().to_owned());
    }
    args.extend(["-c".into(), source.as_os_str().to_owned(), "-o".into()]);
    args.push(object.as_os_str().to_owned());
    args
}

struct Runner<'a> {
    clang: &'a Path,
    opts: &'a BuildOptions,
    warnings: String,
    color: bool,
}

impl Runner<'_> {
    /// Runs clang; its diagnostics are printed (unless quiet) and, on failure, make the error.
    fn clang(&mut self, args: &[OsString], what: &str) -> anyhow::Result<()> {
        let mut command = Command::new(self.clang);
        command.args(args);
        if self.color && !self.opts.quiet {
            command.arg("-fcolor-diagnostics");
        }
        if self.opts.verbose && !self.opts.quiet {
            let line: Vec<String> = std::iter::once(self.clang.as_os_str())
                .chain(command.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            eprintln!("    {}", line.join(" "));
        }
        let output = command.output().map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "cannot run {}: no such program. fwasm build needs clang for wasm32-wasi; \
                     on Debian or Ubuntu:\n    {APT_INSTALL}\n(--clang or FWASM_CLANG choose \
                     another clang)",
                    self.clang.display()
                )
            } else {
                anyhow::anyhow!("cannot run {}: {err}", self.clang.display())
            }
        })?;
        let diagnostics = String::from_utf8_lossy(&output.stderr).into_owned();
        if !self.opts.quiet {
            eprint!("{diagnostics}");
        }
        if output.status.success() {
            self.warnings.push_str(&diagnostics);
            return Ok(());
        }
        let mut message = format!("clang could not {what}");
        if self.opts.quiet {
            let _ = write!(message, ":\n{}", diagnostics.trim_end());
        } else {
            message.push_str(" (its messages are above)");
        }
        if let Some(hint) = hint(&diagnostics) {
            let _ = write!(message, "\nhint: {hint}");
        }
        bail!(message)
    }
}

/// Advice for the errors a missing package or a missing entry point causes.
fn hint(diagnostics: &str) -> Option<String> {
    let has = |needle: &str| diagnostics.contains(needle);
    let install = |what: &str, package: &str| {
        format!("{what} is missing; on Debian or Ubuntu: sudo apt-get install {package}")
    };
    if has("undefined symbol: fwasm_handle_request") {
        return Some(
            "a function using fwasm.h defines `void fwasm_handle_request(const fwasm_request \
             *req, fwasm_response *res)` (or `FWASM_HANDLER(req, res) { ... }`); a Faasm \
             function defines main (or build with --api faasm)"
                .into(),
        );
    }
    if has("undefined symbol: faasm") || has("undefined symbol: getConfFlag") {
        return Some(
            "Faasm's API is linked in for --api faasm, or when a source defines main".into(),
        );
    }
    if has("undefined symbol: main")
        || has("undefined symbol: __main_argc_argv")
        || has("undefined symbol: __main_void")
    {
        return Some("a Faasm-API function defines `int main(...)`, its entry point".into());
    }
    if let Some(library) = [
        "-lwasi-emulated-process-clocks",
        "-lwasi-emulated-mman",
        "-lc-printscan-long-double",
    ]
    .into_iter()
    .find(|library| has(&format!("unable to find library {library}")))
    {
        return Some(format!(
            "this WASI sysroot has no {library} (WASI libc's, which Debian's wasi-libc and \
             wasi-sdk ship): use a complete WASI libc, e.g. {APT_INSTALL}"
        ));
    }
    if has("cannot use 'throw' with exceptions disabled")
        || has("cannot use 'try' with exceptions disabled")
    {
        return Some(
            "fwasm functions are built without C++ exceptions (-fno-exceptions): return an \
             error code instead of throwing"
                .into(),
        );
    }
    if has("is not supported on this single threaded system") {
        return Some(
            "fwasm functions cannot use threads (std::thread and friends): a function runs on \
             one thread; chain calls to run work in parallel"
                .into(),
        );
    }
    if has("No available targets") || has("unknown target triple") {
        return Some(format!(
            "this clang cannot target WebAssembly; install Debian's clang ({APT_INSTALL}) or \
             set FWASM_CLANG to one that can"
        ));
    }
    if has("\"wasm-ld\"") || has("wasm-ld: not found") || has("'wasm-ld'") {
        return Some(install("the WebAssembly linker wasm-ld", "lld"));
    }
    if has("libclang_rt.builtins-wasm32") {
        return Some(install(
            "clang's runtime for wasm32",
            "libclang-rt-14-dev-wasm32",
        ));
    }
    if has("-lc++")
        || has("c++abi")
        || has("'string' file not found")
        || has("'vector' file not found")
        || has("'iostream' file not found")
        || has("'cstdint' file not found")
    {
        return Some(
            install(
                "the C++ library for wasm32-wasi",
                "libc++-14-dev-wasm32 libc++abi-14-dev-wasm32",
            ) + " (or pass --sysroot)",
        );
    }
    if has("'stdio.h' file not found")
        || has("'stdlib.h' file not found")
        || has("'string.h' file not found")
        || has("unable to find library -lc")
        || has("crt1-reactor.o")
    {
        return Some(install("WASI's libc", "wasi-libc") + " (or pass --sysroot DIR)");
    }
    None
}

fn human_size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// What `build` reads back from the module it linked.
struct ModuleInfo {
    initial_pages: u32,
    imports: Vec<String>,
    exports: Vec<String>,
}

/// Reads a module's imports, exports and initial memory with wasmi (which also checks it is
/// valid): just enough to report on what clang produced.
fn inspect(module: &[u8]) -> anyhow::Result<ModuleInfo> {
    let module = wasmi::Module::new(&wasmi::Engine::default(), module)?;
    let imports: Vec<_> = module.imports().collect();
    let exports: Vec<_> = module.exports().collect();
    let types = imports
        .iter()
        .map(|i| i.ty())
        .chain(exports.iter().map(|e| e.ty()));
    let initial_pages = types
        .filter_map(|ty| ty.memory())
        .map(|memory| u32::try_from(memory.minimum()).unwrap_or(u32::MAX))
        .next()
        .unwrap_or(0);
    Ok(ModuleInfo {
        initial_pages,
        imports: imports
            .iter()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect(),
        exports: exports.iter().map(|e| e.name().to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_c_or_cxx_by_extension() {
        assert!(language(Path::new("a.c")).ok() == Some(Lang::C));
        for cxx in ["a.cc", "a.cpp", "a.cxx", "a.c++", "a.C"] {
            assert!(language(Path::new(cxx)).ok() == Some(Lang::Cxx), "{cxx}");
        }
        assert!(language(Path::new("a.rs")).is_err());
        assert!(language(Path::new("Makefile")).is_err());
    }

    #[test]
    fn missing_entry_points_and_packages_get_hints() {
        let hint = |d: &str| hint(d).unwrap_or_default();
        assert!(
            hint("wasm-ld: error: unable to find library -lc-printscan-long-double")
                .contains("has no -lc-printscan-long-double")
        );
        assert!(hint("error: cannot use 'throw' with exceptions disabled").contains("exceptions"));
        assert!(
            hint("error: <thread> is not supported on this single threaded system")
                .contains("cannot use threads")
        );
        assert!(
            hint("wasm-ld: error: x.o: undefined symbol: fwasm_handle_request")
                .contains("FWASM_HANDLER")
        );
        assert!(hint("wasm-ld: error: undefined symbol: main").contains("int main"));
        assert!(hint("fatal error: 'stdio.h' file not found").contains("wasi-libc"));
        assert!(hint("fatal error: 'string' file not found").contains("libc++-14-dev-wasm32"));
        assert!(hint("x.c:1:1: error: expected identifier").is_empty());
    }

    /// Builds two of the examples in integration/functions-c, one per API, with the clang
    /// scripts/test installs.
    #[test]
    fn examples_build_into_modules_with_the_abi_exports() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration/functions-c");
        let out = tempfile::tempdir().unwrap();
        for (source, api) in [("echo.c", Api::Fwasm), ("state_offset.cpp", Api::Faasm)] {
            let report = build(&BuildOptions {
                sources: vec![examples.join(source)],
                output: out.path().join(source).with_extension("wasm"),
                quiet: true,
                ..BuildOptions::default()
            })
            .unwrap_or_else(|err| panic!("building {source} (is clang installed?): {err:#}"));
            assert_eq!(report.api, api, "{source}");
            assert!(
                report.size > 0 && report.size == std::fs::metadata(&report.output).unwrap().len()
            );
            // fwasm's 64 KiB stack, or Faasm's 4 MiB one, and a few pages of data.
            let stack_pages = api.stack_size() / 65536;
            assert!(
                (stack_pages..=stack_pages + 3).contains(&report.initial_memory_pages),
                "{source}: {} pages",
                report.initial_memory_pages
            );
            for export in [
                "memory",
                "_initialize",
                "fwasm_abi_v1",
                "fwasm_alloc",
                "fwasm_handle",
            ] {
                assert!(
                    report.exports.iter().any(|e| e == export),
                    "{source} lacks {export}"
                );
            }
            assert_eq!(
                report.exports.iter().any(|e| e == "fwasm_faasm_api"),
                api == Api::Faasm
            );
            for import in &report.imports {
                assert!(
                    import.starts_with("fwasm_v1.")
                        || import.starts_with("wasi_snapshot_preview1."),
                    "{source} imports {import}"
                );
            }
        }
    }

    #[test]
    fn inspect_reads_memory_imports_and_exports() {
        let module = wat::parse_str(
            r#"(module (import "fwasm_v1" "log" (func (param i32 i32 i32) (result i32)))
                 (memory (export "memory") 2) (func (export "f")))"#,
        )
        .unwrap();
        let info = inspect(&module).expect("a valid module");
        assert_eq!(info.initial_pages, 2);
        assert_eq!(info.imports, ["fwasm_v1.log"]);
        let mut exports = info.exports;
        exports.sort();
        assert_eq!(exports, ["f", "memory"]);
        assert!(inspect(&module[..20]).is_err());
    }
}
