//! Entry from Xen's HVM direct boot: 32-bit protected mode, paging off, null selectors.
//!
//! The guest loads its own GDT and reloads every segment register while still in 32-bit
//! mode (the direct-boot start state leaves all selectors null, and switching to long mode
//! from there triple-faults), builds identity page tables for the first 1 GiB with 2 MiB
//! pages, enables PAE, EFER.LME and paging, then far-jumps to 64-bit code and calls
//! `rig_main`. A multiboot header and a PVH entry note are included so the same ELF also
//! boots from GRUB or as PVH.

core::arch::global_asm!(
    r#"
    .section .boot.header, "a"
    .balign 4
    .long 0x1BADB002
    .long 0x00000003
    .long -(0x1BADB002 + 0x00000003)

    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long rig_start32

    .section .boot.text, "ax"
    .code32
    .globl rig_start32
rig_start32:
    cli
    lgdtl (rig_gdt_pointer)
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    ljmpl $0x08, $1f
1:
    movl $rig_stack_top, %esp
    movl $rig_pdpt, %eax
    orl $3, %eax
    movl %eax, (rig_pml4)
    movl $rig_pd, %eax
    orl $3, %eax
    movl %eax, (rig_pdpt)
    movl $rig_pd, %edi
    xorl %ecx, %ecx
2:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jne 2b
    movl $rig_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $0xC0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmpl $0x18, $3f

    .code64
3:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $rig_stack_top, %rsp
    andq $-16, %rsp
    call rig_main
4:
    cli
    hlt
    jmp 4b

    .section .rodata.rig_gdt, "a"
    .balign 16
rig_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00AF9A000000FFFF
rig_gdt_end:
rig_gdt_pointer:
    .word rig_gdt_end - rig_gdt - 1
    .long rig_gdt

    .section .bss.rig_boot, "aw", @nobits
    .balign 4096
rig_pml4: .skip 4096
rig_pdpt: .skip 4096
rig_pd: .skip 4096
    .balign 16
rig_stack: .skip 65536
rig_stack_top:
    "#,
    options(att_syntax)
);
