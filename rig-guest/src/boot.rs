//! Entry from Xen's HVM direct boot: 32-bit protected mode, paging off, null selectors.
//!
//! The guest loads its own GDT and reloads every segment register while still in 32-bit
//! mode (the direct-boot start state leaves all selectors null, and switching to long mode
//! from there triple-faults), builds identity page tables for the first 4 GiB (4 KiB pages
//! for the first 8 MiB, 2 MiB pages above), enables PAE, EFER.LME and paging, then far-jumps to 64-bit code and calls
//! `rig_main`. A multiboot header and a PVH entry note are included so the same ELF also
//! boots from GRUB or as PVH.

core::arch::global_asm!(
    r#"
    .section .boot.header, "a"
    .balign 4
    .long 0x1BADB002
    .long 0x00000003
    .long -(0x1BADB002 + 0x00000003)

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
    /* PML4[0] -> PDPT; PDPT[i] -> PD i (i < 4) covering 4 GiB with 2 MiB pages, except
     * the first 8 MiB (the image and its arena) which PD 0 maps through four 4 KiB page
     * tables. */
    movl $rig_pdpt, %eax
    orl $3, %eax
    movl %eax, (rig_pml4)
    movl $rig_pdpt, %edi
    movl $rig_pd, %eax
    orl $3, %eax
    xorl %ecx, %ecx
5:
    movl %eax, (%edi,%ecx,8)
    addl $4096, %eax
    incl %ecx
    cmpl $4, %ecx
    jne 5b
    movl $rig_pd, %edi
    xorl %ecx, %ecx
2:
    movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edi,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jne 2b
    movl $rig_pt, %eax
    orl $3, %eax
    xorl %ecx, %ecx
6:
    movl %eax, (%edi,%ecx,8)
    addl $4096, %eax
    incl %ecx
    cmpl $4, %ecx
    jne 6b
    movl $rig_pt, %edi
    xorl %ecx, %ecx
7:
    movl %ecx, %eax
    shll $12, %eax
    orl $3, %eax
    movl %eax, (%edi,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jne 7b
    /* A 64-bit IDT whose 32 exception gates report "EX<letter>" and the frame on port
     * 0xE9, so a fault during or after the switch says which vector it was and where; the
     * 224 interrupt gates above go to rig_irq_ignore (see there). */
    movl $rig_idt, %edi
    movl $rig_exc_stubs, %edx
    xorl %ecx, %ecx
8:
    movl %edx, %eax
    andl $0xFFFF, %eax
    orl $0x180000, %eax
    movl %eax, (%edi)
    movl %edx, %eax
    andl $0xFFFF0000, %eax
    orl $0x8E00, %eax
    movl %eax, 4(%edi)
    movl $0, 8(%edi)
    movl $0, 12(%edi)
    addl $16, %edi
    addl $16, %edx
    incl %ecx
    cmpl $32, %ecx
    jne 8b
    movl $rig_irq_ignore, %edx
13:
    movl %edx, %eax
    andl $0xFFFF, %eax
    orl $0x180000, %eax
    movl %eax, (%edi)
    movl %edx, %eax
    andl $0xFFFF0000, %eax
    orl $0x8E00, %eax
    movl %eax, 4(%edi)
    movl $0, 8(%edi)
    movl $0, 12(%edi)
    addl $16, %edi
    incl %ecx
    cmpl $256, %ecx
    jne 13b
    lidtl (rig_idt_pointer)
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

    .section .text.rig_exc, "ax"
    .code64
    /* The guest polls and never enables interrupts, yet under nested SVM in QEMU TCG it has
     * been seen running with RFLAGS.IF set (the platform code clears it whenever it finds
     * it). An interrupt taken meanwhile (e.g. the event-channel callback vector) is
     * counted and dismissed, returning with IF clear. */
    .balign 16
rig_irq_ignore:
    lock incq rig_irq_count(%rip)
    andq $~0x200, 16(%rsp)
    iretq
    .balign 16
rig_exc_stubs:
    .set rig_vector, 0
    .rept 32
    .balign 16
    movl $(0x41 + rig_vector), %ebx
    jmp rig_exc_common
    .set rig_vector, rig_vector + 1
    .endr
rig_exc_common:
    /* "EX<letter> <qword> <qword> <qword> <rflags>": the top of the exception frame
     * (error code or RIP first), so a fault says where it happened. */
    movw $0xE9, %dx
    movb $0x45, %al
    outb %al, %dx
    movb $0x58, %al
    outb %al, %dx
    movb %bl, %al
    outb %al, %dx
    movq %rsp, %rsi
    movl $3, %edi
10:
    movb $0x20, %al
    outb %al, %dx
    movq (%rsi), %rbx
    movl $16, %ecx
11:
    rolq $4, %rbx
    movb %bl, %al
    andb $0x0F, %al
    addb $0x30, %al
    cmpb $0x39, %al
    jbe 12f
    addb $0x27, %al
12:
    outb %al, %dx
    decl %ecx
    jnz 11b
    addq $8, %rsi
    decl %edi
    jnz 10b
    movb $0x0A, %al
    outb %al, %dx
9:
    cli
    hlt
    jmp 9b

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

rig_idt_pointer:
    .word 256 * 16 - 1
    .long rig_idt

    .section .bss.rig_boot, "aw", @nobits
    .balign 16
rig_idt: .skip 4096
    .balign 8
    .globl rig_irq_count
rig_irq_count: .skip 8
    .balign 4096
rig_pml4: .skip 4096
rig_pdpt: .skip 4096
rig_pd: .skip 16384
rig_pt: .skip 16384
    .balign 16
rig_stack: .skip 65536
rig_stack_top:
    "#,
    options(att_syntax)
);
