use std::ffi::OsString;
use std::path::PathBuf;

/// `PSS_VA_SPACE_ENTRY`: one region of the address space, as `VirtualQuery` would describe
/// it. Free gaps between mappings are regions too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRegion {
    /// `BaseAddress`.
    pub base_address: u64,
    /// `AllocationBase`: the load address of the image for image regions; the region itself
    /// otherwise (Linux does not remember which `mmap` call made a VMA). 0 for free regions.
    pub allocation_base: u64,
    /// `AllocationProtect`: the protection of the region at `allocation_base`.
    pub allocation_protect: PageProtection,
    /// `RegionSize`.
    pub region_size: u64,
    /// `State`.
    pub state: MemState,
    /// `Protect`.
    pub protect: PageProtection,
    /// `Type`.
    pub mem_type: MemType,
    /// The section information, with `VA_SPACE_SECTION_INFORMATION` and a file-backed region.
    pub section: Option<SectionInformation>,
    /// The `maps` line, `None` for a free gap.
    pub linux: Option<RegionLinux>,
}

/// The image and file facts of a region (`TimeDateStamp` … `MappedFileName`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionInformation {
    /// `TimeDateStamp`: ELF has none, 0.
    pub time_date_stamp: u32,
    /// `SizeOfImage`: the span of the image's mappings (image regions only).
    pub size_of_image: u32,
    /// `ImageBase`: the image's load address (image regions only).
    pub image_base: u64,
    /// `CheckSum`: ELF has none, 0.
    pub check_sum: u32,
    /// `MappedFileName`: the backing file, as `/proc/PID/maps` names it.
    pub mapped_file_name: Option<PathBuf>,
    /// Linux addition: the ELF build-id of an image, when it has one.
    pub build_id: Option<Vec<u8>>,
}

/// The `maps` line behind a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionLinux {
    /// `rwxp`/`rwxs` as in `maps`.
    pub perms: [u8; 4],
    /// File offset.
    pub offset: u64,
    /// Device (major, minor).
    pub dev: (u32, u32),
    /// Inode.
    pub inode: u64,
    /// The path or pseudo-name; empty for anonymous memory.
    pub pathname: OsString,
}

/// `MEM_COMMIT` / `MEM_RESERVE` / `MEM_FREE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MemState {
    /// `MEM_COMMIT`: a mapping with some access.
    Commit = 0x1000,
    /// `MEM_RESERVE`: a private anonymous `PROT_NONE` mapping.
    Reserve = 0x2000,
    /// `MEM_FREE`: no mapping.
    Free = 0x10000,
}

/// `MEM_PRIVATE` / `MEM_MAPPED` / `MEM_IMAGE` (0 for free regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MemType {
    /// Free regions have no type.
    None = 0,
    /// `MEM_PRIVATE`: private anonymous memory (heap, stacks, `MAP_PRIVATE|MAP_ANONYMOUS`).
    Private = 0x20000,
    /// `MEM_MAPPED`: file mappings that are not images, and all shared memory.
    Mapped = 0x40000,
    /// `MEM_IMAGE`: the private mappings of an ELF file that has an executable mapping
    /// (executables, shared libraries), and the vDSO.
    Image = 0x100_0000,
}

impl MemState {
    /// The Windows value.
    pub fn value(self) -> u32 {
        self as u32
    }
}

impl MemType {
    /// The Windows value.
    pub fn value(self) -> u32 {
        self as u32
    }
}

/// A `PAGE_*` protection value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageProtection(pub u32);

impl PageProtection {
    /// Undefined (free regions).
    pub const NONE: PageProtection = PageProtection(0);
    /// `PAGE_NOACCESS`.
    pub const NOACCESS: PageProtection = PageProtection(0x01);
    /// `PAGE_READONLY`.
    pub const READONLY: PageProtection = PageProtection(0x02);
    /// `PAGE_READWRITE`.
    pub const READWRITE: PageProtection = PageProtection(0x04);
    /// `PAGE_WRITECOPY`.
    pub const WRITECOPY: PageProtection = PageProtection(0x08);
    /// `PAGE_EXECUTE`.
    pub const EXECUTE: PageProtection = PageProtection(0x10);
    /// `PAGE_EXECUTE_READ`.
    pub const EXECUTE_READ: PageProtection = PageProtection(0x20);
    /// `PAGE_EXECUTE_READWRITE`.
    pub const EXECUTE_READWRITE: PageProtection = PageProtection(0x40);
    /// `PAGE_EXECUTE_WRITECOPY`.
    pub const EXECUTE_WRITECOPY: PageProtection = PageProtection(0x80);
    /// `PAGE_GUARD` modifier.
    pub const GUARD: PageProtection = PageProtection(0x100);

    /// The Windows value.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The protection Windows would show for a mapping with these `maps` permissions.
    /// Private writable file mappings are copy-on-write (`WRITECOPY`); Windows has no
    /// write-only protection, so `-w-` reads as read-write.
    pub fn from_perms(read: bool, write: bool, exec: bool, cow: bool) -> PageProtection {
        match (exec, read || write, write, cow) {
            (false, false, _, _) => Self::NOACCESS,
            (false, true, false, _) => Self::READONLY,
            (false, true, true, false) => Self::READWRITE,
            (false, true, true, true) => Self::WRITECOPY,
            (true, false, _, _) => Self::EXECUTE,
            (true, true, false, _) => Self::EXECUTE_READ,
            (true, true, true, false) => Self::EXECUTE_READWRITE,
            (true, true, true, true) => Self::EXECUTE_WRITECOPY,
        }
    }
}
