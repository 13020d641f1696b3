//! The modules of a snapshot: each ELF image of its VA space, opened from disk (or, for
//! the vDSO, from this process's own: the kernel's, the same on the host), checked against
//! the build-id captured, with its unwind sections for the unwinder and a symbolizer made
//! on first use. Loaded once per build-id and kept by the [`super::Walker`].

use std::collections::HashMap;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use super::elf_file;
use super::go;
use super::symbols::{Naming, Symbolizer};
use pss_sys::files;
use pss_types::records::{MemType, MemoryRegion};

/// Section bytes shared between the walker's images and the unwinder's modules.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Bytes(Arc<[u8]>);

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// One module mapped in the target.
pub(crate) struct Module {
    /// The path the target mapped it from (the vDSO's pseudo-name).
    pub path: PathBuf,
    /// Where it is mapped: the span of its mappings.
    pub avma: Range<u64>,
    /// The address its stated address 0 is at (load bias).
    pub bias: u64,
    /// Its contents, when found and matching.
    pub image: Option<Arc<Image>>,
}

/// What a module file holds that stacks need, shared by every process mapping it.
pub(crate) struct Image {
    /// Where it was read from.
    pub file: PathBuf,
    /// Its lowest `PT_LOAD` address, rounded down to a page: the bias is the mapping's
    /// start minus this.
    pub first_vaddr: u64,
    /// The unwind sections, as framehop takes them.
    pub unwind: framehop::ExplicitModuleSectionInfo<Bytes>,
    /// For the vDSO: its dynamic symbols (no file holds them for the symbolizer).
    pub own_symbols: Vec<(Range<u64>, String)>,
    /// For a Go program: its runtime's stack-switching functions ([`go`]).
    pub go: Option<go::GoRuntime>,
    /// `(svma range, file offset)` of each loaded segment, to read code bytes.
    segments: Vec<(Range<u64>, u64)>,
    /// For the vDSO: its bytes (no file holds them).
    bytes: Option<Vec<u8>>,
    /// The file, open, to read code bytes from.
    handle: Option<std::fs::File>,
    build_id: Option<Vec<u8>>,
    debuglink: Option<Vec<u8>>,
    symbolizer: OnceLock<Symbolizer>,
}

impl Image {
    /// Reads the ELF file `file` (opened from `path`), every size bounded
    /// ([`elf_file`]); `Err` says what is wrong with it.
    fn from_file(file: std::fs::File, path: &Path) -> Result<Image, String> {
        let cache = elf_file::open(&file)?;
        let elf = object::File::parse(&cache).map_err(|e| e.to_string())?;
        let mut image = Self::from_object(&elf, Some(&file), path.to_owned());
        image.go = go::GoRuntime::of(&elf);
        image.handle = Some(file);
        Ok(image)
    }

    /// The vDSO of this process (the kernel's: the same image in every process of the host).
    fn own_vdso() -> Option<Image> {
        let bytes = pss_sys::vdso::own_image()?;
        let mut image = {
            let elf = object::File::parse(&bytes[..]).ok()?;
            let mut image = Self::from_object(&elf, None, PathBuf::from("[vdso]"));
            image.own_symbols = elf
                .dynamic_symbols()
                .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
                .filter_map(|s| {
                    Some((
                        s.address()..s.address() + s.size(),
                        s.name().ok()?.to_string(),
                    ))
                })
                .collect();
            image
        };
        image.bytes = Some(bytes);
        Some(image)
    }

    /// What stacks need of `elf`; its unwind sections read from `file` (bounded), or from
    /// `elf` itself for the vDSO, which is in memory.
    fn from_object<'d, R: object::ReadRef<'d>>(
        elf: &object::File<'d, R>,
        file: Option<&std::fs::File>,
        path: PathBuf,
    ) -> Image {
        let page = pss_sys::page_size();
        let loads: Vec<_> = elf.segments().collect();
        let first_vaddr = loads.iter().map(|s| s.address()).min().unwrap_or(0) & !(page - 1);
        let range = |name: &str| {
            elf.section_by_name(name)
                .map(|s| s.address()..s.address() + s.size())
        };
        let data = |name: &str| match file {
            Some(f) => elf_file::section(elf, f, name).map(Bytes),
            None => elf
                .section_by_name(name)
                .and_then(|s| s.data().ok())
                .map(|d| Bytes(Arc::from(d))),
        };
        let unwind = framehop::ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: range(".text"),
            got_svma: range(".got"),
            eh_frame_svma: range(".eh_frame"),
            eh_frame: data(".eh_frame"),
            eh_frame_hdr_svma: range(".eh_frame_hdr"),
            eh_frame_hdr: data(".eh_frame_hdr"),
            debug_frame: data(".debug_frame"),
            ..Default::default()
        };
        Image {
            file: path,
            first_vaddr,
            unwind,
            segments: loads
                .iter()
                .map(|s| (s.address()..s.address() + s.size(), s.file_range().0))
                .collect(),
            own_symbols: Vec::new(),
            go: None,
            bytes: None,
            handle: None,
            build_id: elf.build_id().ok().flatten().map(<[u8]>::to_vec),
            debuglink: elf.gnu_debuglink().ok().flatten().map(|(n, _)| n.to_vec()),
            symbolizer: OnceLock::new(),
        }
    }

    /// Its build-id.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// Reads `buf.len()` bytes at stated address `svma` (code, for the signal trampoline).
    pub fn read(&self, svma: u64, buf: &mut [u8]) -> bool {
        let Some((r, off)) = self.segments.iter().find(|(r, _)| r.contains(&svma)) else {
            return false;
        };
        let at = off + (svma - r.start);
        match (&self.bytes, &self.handle) {
            (Some(b), _) => b
                .get(at as usize..at as usize + buf.len())
                .map(|s| buf.copy_from_slice(s))
                .is_some(),
            (None, Some(f)) => f.read_exact_at(buf, at).is_ok(),
            (None, None) => false,
        }
    }

    /// Its symbolizer, made on first use (`naming`: see [`super::Walker::symbols_only`];
    /// the first use decides).
    pub fn symbolizer(&self, naming: &Naming) -> Option<&Symbolizer> {
        if self.bytes.is_some() {
            // The vDSO's symbols are in its dynamic symbol table only; addr2line reads
            // files, and the vDSO's few functions are named by the module.
            return None;
        }
        Some(self.symbolizer.get_or_init(|| {
            Symbolizer::new(
                self.handle.as_ref(),
                &self.file,
                self.build_id.as_deref(),
                self.debuglink.as_deref(),
                naming,
            )
        }))
    }
}

/// What an image is known by: the build-id captured (if any) and the path mapped.
type ImageKey = (Option<Vec<u8>>, PathBuf);

/// Images already read (or looked for in vain), by build-id and path.
#[derive(Default)]
pub(crate) struct ImageCache {
    images: HashMap<ImageKey, Option<Arc<Image>>>,
}

impl ImageCache {
    /// How many images' files were read for names.
    pub fn files_read_for_names(&self) -> usize {
        self.images
            .values()
            .flatten()
            .filter(|i| i.symbolizer.get().is_some_and(Symbolizer::files_read))
            .count()
    }

    /// The image of `region`'s module (mapped from `path`), found for process `pid`
    /// ([`find_image`]); with a warning when none matches the build-id captured.
    fn image(
        &mut self,
        pid: u32,
        region: &MemoryRegion,
        path: &Path,
        captured_id: Option<&[u8]>,
        warnings: &mut Vec<String>,
    ) -> Option<Arc<Image>> {
        let key = (captured_id.map(<[u8]>::to_vec), path.to_owned());
        if let Some(found) = self.images.get(&key) {
            return found.clone();
        }
        let found = find_image(pid, region, path, captured_id, warnings).map(Arc::new);
        self.images.insert(key, found.clone());
        found
    }
}

/// The module file behind `region` of process `pid` — the very file mapped, through
/// `map_files` where we may, else at `path` (in our root, then in the process's) if it is
/// still the inode mapped — read and checked against the build-id captured. Never a link
/// the target planted, a FIFO, a device, a file on FUSE ([`files`]).
fn find_image(
    pid: u32,
    region: &MemoryRegion,
    path: &Path,
    captured_id: Option<&[u8]>,
    warnings: &mut Vec<String>,
) -> Option<Image> {
    if path.as_os_str() == "[vdso]" {
        let image = Image::own_vdso()?;
        if captured_id.is_some_and(|id| image.build_id() != Some(id)) {
            warnings.push("the vDSO differs from this host's (a snapshot from another kernel): its frames have no unwind data".into());
            return None;
        }
        return Some(image);
    }
    let (dev, ino) = region
        .linux
        .as_ref()
        .map_or(((0, 0), 0), |l| (l.dev, l.inode));
    let span = (
        region.base_address,
        region.base_address + region.region_size,
    );
    let opened = files::open_mapping_file(pid as i32, span, path, (dev, ino))
        .map_err(|e| e.to_string())
        .and_then(|f| Image::from_file(f, path));
    let shown = path.display();
    match opened {
        Ok(image) if captured_id.is_some_and(|id| image.build_id() != Some(id)) => {
            warnings.push(format!(
                "{shown} is not the file the process had mapped (its build-id differs: replaced since?); its frames have no unwind data or names"
            ));
            None
        }
        Ok(image) => Some(image),
        Err(why) => {
            warnings.push(format!(
                "{shown} cannot be read ({why}); its frames have no unwind data or names"
            ));
            None
        }
    }
}

/// The modules of a VA space: one per ELF image (its first region), read through `cache`.
pub(crate) fn modules(
    pid: u32,
    regions: &[MemoryRegion],
    cache: &mut ImageCache,
    warnings: &mut Vec<String>,
) -> Vec<Module> {
    regions
        .iter()
        .filter(|r| r.mem_type == MemType::Image)
        .filter_map(|r| {
            let s = r.section.as_ref()?;
            (s.image_base == r.base_address).then_some((r, s))
        })
        .filter_map(|(r, s)| {
            let path = s.mapped_file_name.clone()?;
            let image = cache.image(pid, r, &path, s.build_id.as_deref(), warnings);
            let start = r.base_address;
            let bias = start.wrapping_sub(image.as_ref().map_or(0, |i| i.first_vaddr));
            Some(Module {
                path,
                avma: start..start + u64::from(s.size_of_image),
                bias,
                image,
            })
        })
        .collect()
}
