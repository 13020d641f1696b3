//! Facts of the host a minidump records (not of the target, and never read from it): the
//! CPU, the kernel's version, the distribution — `MINIDUMP_SYSTEM_INFO` and the Linux
//! `cpuinfo` and `lsb-release` streams, as Breakpad's Linux writer fills them.

use minidump_common::format as md;

use super::blob::Blob;
use super::context::processor_architecture;

/// What the host files said (empty where one could not be read).
pub(crate) struct Host {
    /// `/proc/cpuinfo`.
    pub cpuinfo: Vec<u8>,
    /// `/etc/lsb-release`, or `/etc/os-release` where there is none.
    pub lsb_release: Vec<u8>,
    /// `/proc/sys/kernel/osrelease` (`6.18.0-1-amd64`).
    release: String,
    /// `/proc/sys/kernel/version` (`#1 SMP PREEMPT_DYNAMIC …`).
    version: String,
}

impl Host {
    /// Reads the host's files.
    pub fn read() -> Host {
        let text = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Host {
            cpuinfo: std::fs::read("/proc/cpuinfo").unwrap_or_default(),
            lsb_release: std::fs::read("/etc/lsb-release")
                .or_else(|_| std::fs::read("/etc/os-release"))
                .unwrap_or_default(),
            release: text("/proc/sys/kernel/osrelease"),
            version: text("/proc/sys/kernel/version"),
        }
    }

    /// The first value of `key` in `cpuinfo`.
    fn cpu_field(&self, key: &str) -> Option<String> {
        String::from_utf8_lossy(&self.cpuinfo)
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
    }

    fn cpu_number(&self, key: &str) -> u32 {
        self.cpu_field(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn processors(&self) -> u8 {
        let n = String::from_utf8_lossy(&self.cpuinfo)
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
            .count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Appends `MINIDUMP_SYSTEM_INFO` (and its version string); returns where it is.
    pub fn put_system_info(&self, blob: &mut Blob) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
        let mut numbers = self
            .release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor, build) = (
            numbers.next().unwrap_or(0),
            numbers.next().unwrap_or(0),
            numbers.next().unwrap_or(0),
        );
        let machine = std::env::consts::ARCH;
        let csd = blob.string(&format!(
            "Linux {} {} {machine}",
            self.release, self.version
        ));
        let (family, model, stepping) = (
            self.cpu_number("cpu family"),
            self.cpu_number("model"),
            self.cpu_number("stepping"),
        );
        let info = md::MINIDUMP_SYSTEM_INFO {
            processor_architecture: processor_architecture(),
            processor_level: family as u16,
            processor_revision: ((model << 8) | stepping) as u16,
            number_of_processors: self.processors(),
            product_type: 0,
            major_version: major,
            minor_version: minor,
            build_number: build,
            platform_id: md::PlatformId::Linux as u32,
            csd_version_rva: csd,
            suite_mask: 0,
            reserved2: 0,
            cpu: md::CPU_INFORMATION {
                data: self.cpu_information(family, model, stepping),
            },
        };
        let at = blob.put(info);
        md::MINIDUMP_LOCATION_DESCRIPTOR {
            data_size: (blob.pos() - u64::from(at)) as u32,
            rva: at,
        }
    }

    /// `X86CpuInfo`: the vendor and the `cpuid` version word, as `cpuinfo` gives them.
    fn cpu_information(&self, family: u32, model: u32, stepping: u32) -> [u8; 24] {
        let mut data = [0u8; 24];
        if cfg!(target_arch = "x86_64") {
            let vendor = self.cpu_field("vendor_id").unwrap_or_default();
            let n = vendor.len().min(12);
            data[..n].copy_from_slice(&vendor.as_bytes()[..n]);
            // cpuid leaf 1 EAX: stepping, model, family, extended model, extended family.
            let (base_family, ext_family) = if family > 15 {
                (15, family - 15)
            } else {
                (family, 0)
            };
            let version = (stepping & 0xf)
                | (model & 0xf) << 4
                | base_family << 8
                | (model >> 4) << 16
                | ext_family << 20;
            data[12..16].copy_from_slice(&version.to_le_bytes());
        }
        data
    }
}
