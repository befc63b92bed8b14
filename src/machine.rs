//! Facts about the machine a run happens on: memory, the processor and its vector
//! instructions. Used to refuse a model that cannot fit before allocating it, and to say in
//! every report and benchmark which machine produced a number.
//!
//! Linux exposes these as text files under `/proc`; elsewhere the functions return `None`
//! and callers carry on without the fact.

/// Bytes of memory the kernel says a new program can use without swapping (`MemAvailable`).
pub fn available_memory() -> Option<u64> {
    meminfo_kib("MemAvailable:").map(|kib| kib * 1024)
}

/// The memory a model or buffer may take, in bytes: [`available_memory`], or 64 GiB where the
/// system does not say (a bound that still refuses absurd sizes).
pub fn usable_memory() -> u128 {
    available_memory().map_or(64u128 << 30, u128::from)
}

/// Total physical memory in bytes (`MemTotal`).
pub fn total_memory() -> Option<u64> {
    meminfo_kib("MemTotal:").map(|kib| kib * 1024)
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The largest resident memory this process has had, in bytes (`VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The processor's model name, e.g. "AMD EPYC 9R14 96-Core Processor".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The vector instruction set handgrad's kernels run on: the widest this processor offers, or
/// the one `HANDGRAD_ISA` names (`avx512f`, `avx2+fma`, or the architecture's baseline).
pub fn isa() -> &'static str {
    use kernels::peak::Isa;
    match Isa::active() {
        Isa::Avx512 => "avx512f",
        Isa::Avx2Fma => "avx2+fma",
        Isa::Portable if cfg!(target_arch = "x86_64") => "sse2",
        Isa::Portable => std::env::consts::ARCH,
    }
}

/// A byte count for people: "812 MiB", "3.2 GiB".
pub fn human_bytes(bytes: u128) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else if b >= MIB {
        format!("{:.0} MiB", b / MIB)
    } else {
        format!("{:.0} KiB", (b / 1024.0).ceil())
    }
}

/// A count for people: "1,234,567", or "5.2e11" when it is astronomically large.
pub fn human_count(n: u128) -> String {
    if n >= 1_000_000_000_000 {
        return format!("{:.1e}", n as f64);
    }
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_read_as_people_write_them() {
        assert_eq!(human_count(0), "0");
        assert_eq!(human_count(1234567), "1,234,567");
        assert_eq!(human_count(520_000_000_000_000), "5.2e14");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(5 << 20), "5 MiB");
        assert_eq!(human_bytes(100), "1 KiB");
    }
}
