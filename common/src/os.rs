//! The `Os` edge: what the drivers need from the Windows kernel, as a trait.
//!
//! Real implementation: windows-sys kernel calls in `common::wdm`. Host implementation:
//! the simulator's model of a Windows guest. Methods are added here as subsystems need
//! them; each takes plain Rust values so the cores stay testable.
#![forbid(unsafe_code)]

/// A page of guest memory owned by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Kernel virtual address (host address in the simulator).
    pub va: usize,
    /// Guest physical frame number.
    pub pfn: u64,
}

/// What the drivers need from the Windows kernel.
pub trait Os: Sync {
    /// Allocate one zeroed, non-paged page with a known frame number.
    fn alloc_page(&self) -> Option<Page>;
    /// Return a page obtained from [`Os::alloc_page`].
    fn free_page(&self, page: Page);
    /// Number of active processors.
    fn processor_count(&self) -> u32;
    /// Index of the processor the caller runs on.
    fn current_processor(&self) -> u32;
    /// System time in 100 ns units since 1601-01-01 (`KeQuerySystemTime`).
    fn system_time(&self) -> i64;
    /// Write a formatted log line to the kernel debugger sink.
    fn debug_print(&self, line: &str);
}
