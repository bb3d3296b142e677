// hal/real/src/trampoline.S: the real-mode start of a secondary CPU.
//
// smp.cpp copies this blob to physical 0x8000 and sends INIT-SIPI-SIPI with vector 0x08, so the
// CPU starts here in real mode with CS = 0x0800, IP = 0. Every address inside the blob is written
// as TRAMP_BASE + (label - ap_trampoline_start), a constant, so the blob runs at 0x8000 whatever
// its link address. It goes real mode -> 32-bit protected mode -> long mode on the boot page
// tables (which identity-map low memory and map the kernel), then jumps to ap_entry64 in the
// higher half with the CPU index in RDI.

#define TRAMP_BASE 0x8000
#define T(label) (TRAMP_BASE + (label - ap_trampoline_start))

        .section .rodata
        .balign 16
        .global ap_trampoline_start, ap_trampoline_end, ap_trampoline_data
ap_trampoline_start:
        .code16
        cli
        cld
        mov     %cs, %ax
        mov     %ax, %ds
        lgdtl   (tr_gdtr - ap_trampoline_start)
        mov     %cr0, %eax
        or      $1, %eax                // PE
        mov     %eax, %cr0
        ljmpl   $0x18, $T(tr_prot32)

        .code32
tr_prot32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %cr4, %eax
        or      $0x20, %eax             // PAE
        mov     %eax, %cr4
        mov     T(tr_cr3), %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       // EFER: LME, and NXE when the boot CPU enabled it
        rdmsr
        or      T(tr_efer_bits), %eax
        wrmsr
        mov     %cr0, %eax
        or      $0x80010000, %eax       // PG, WP
        mov     %eax, %cr0
        ljmp    $0x08, $T(tr_long64)

        .code64
tr_long64:
        mov     $0x10, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        mov     T(tr_arg), %rdi
        mov     T(tr_entry), %rax
        jmp     *%rax

        .balign 8
tr_gdt:
        .quad   0
        .quad   0x00af9a000000ffff      // 0x08: 64-bit code
        .quad   0x00cf92000000ffff      // 0x10: data
        .quad   0x00cf9a000000ffff      // 0x18: 32-bit code
tr_gdtr:
        .word   tr_gdtr - tr_gdt - 1
        .long   T(tr_gdt)

        // Filled in by smp.cpp for each CPU it starts (one at a time).
        .balign 8
ap_trampoline_data:
tr_cr3:         .quad 0                 // physical boot PML4 (below 4 GiB)
tr_efer_bits:   .quad 0                 // bits to set in EFER
tr_entry:       .quad 0                 // ap_entry64
tr_arg:         .quad 0                 // CPU index
ap_trampoline_end:

        .text
        // Runs on the boot page tables; switches to the kernel's tables and the CPU's own stack,
        // both published by smp.cpp before the SIPI.
        .global ap_entry64
ap_entry64:
        movabs  $g_ap_kernel_cr3, %rax
        mov     (%rax), %rax
        mov     %rax, %cr3
        movabs  $g_ap_stack_top, %rax
        mov     (%rax), %rsp
        xor     %ebp, %ebp
        call    hal_real_ap_main
        ud2
