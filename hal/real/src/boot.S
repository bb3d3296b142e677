// hal/real/src/boot.S: the PVH entry point and the climb from 32-bit protected mode to long mode.
//
// QEMU's PVH loader enters pvh_start32 in 32-bit protected mode with paging off, flat segments
// and EBX = physical address of struct hvm_start_info. This code runs at its physical address
// (the .boot sections are linked with VMA = LMA), builds just enough page tables to reach the
// higher half (identity map, direct map and kernel map of the first GiB with 2 MiB pages),
// enables long mode and jumps to the kernel proper, which builds the real tables in C++.

#define KERNEL_BASE 0xffffffff80000000
#define EXIT_PANIC 62

        .section .boot.text, "ax", @progbits
        .code32
        .global pvh_start32
pvh_start32:
        cli
        cld
        mov     %ebx, %esi              // keep the start info address; cpuid clobbers ebx

        // Long mode is required; without it, say so on COM1 and exit with the panic status
        // instead of faulting into a triple fault.
        mov     $0x80000000, %eax
        cpuid
        cmp     $0x80000001, %eax
        jb      no_long_mode
        mov     $0x80000001, %eax
        cpuid
        bt      $29, %edx
        jnc     no_long_mode
        mov     %edx, %ebp              // bit 20: NX

        // Zero the four boot table pages (the loader may not clear NOBITS sections).
        mov     $boot_pml4, %edi
        xor     %eax, %eax
        mov     $(4 * 4096 / 4), %ecx
        rep stosl

        // PML4[0] (identity) and PML4[256] (direct map) share one PDPT; PML4[511] holds the
        // kernel map. Both PDPTs point at the same PD of 2 MiB pages over the first GiB.
        mov     $(boot_pdpt_low + 3), %eax
        mov     %eax, boot_pml4
        mov     %eax, boot_pml4 + 256 * 8
        mov     $(boot_pdpt_high + 3), %eax
        mov     %eax, boot_pml4 + 511 * 8
        mov     $(boot_pd + 3), %eax
        mov     %eax, boot_pdpt_low
        mov     %eax, boot_pdpt_high + 510 * 8
        mov     $boot_pd, %edi
        mov     $0x83, %eax             // present, writable, 2 MiB page
        mov     $512, %ecx
1:      mov     %eax, (%edi)
        add     $0x200000, %eax
        add     $8, %edi
        loop    1b

        mov     %cr4, %eax
        or      $0x20, %eax             // PAE
        mov     %eax, %cr4
        mov     $boot_pml4, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx       // EFER
        rdmsr
        or      $0x100, %eax            // LME
        bt      $20, %ebp
        jnc     2f
        or      $0x800, %eax            // NXE, when the CPU has NX
2:      wrmsr
        mov     %cr0, %eax
        or      $0x80010001, %eax       // PG, WP, PE
        mov     %eax, %cr0
        lgdt    boot_gdtr
        ljmp    $0x10, $long_mode_low

no_long_mode:
        mov     $no_long_mode_msg, %ebx
        mov     $0x3f8, %dx
3:      movb    (%ebx), %al
        test    %al, %al
        jz      4f
        outb    %al, %dx
        inc     %ebx
        jmp     3b
4:      mov     $0xf4, %dx
        mov     $EXIT_PANIC, %eax
        outl    %eax, %dx
5:      hlt
        jmp     5b

        .code64
long_mode_low:
        mov     $0x18, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        xor     %eax, %eax
        mov     %eax, %fs
        mov     %eax, %gs
        movabs  $long_mode_high, %rax
        jmp     *%rax

        .balign 8
        // The kernel's selector values (see arch.h), so that the IDT, which names code selector
        // 0x10, works from the first C++ instruction on, before cpu_init loads the real GDT.
boot_gdt:
        .quad   0
        .quad   0
        .quad   0x00af9a000000ffff      // 0x10: 64-bit code
        .quad   0x00cf92000000ffff      // 0x18: data
boot_gdtr:
        .word   boot_gdtr - boot_gdt - 1
        .quad   boot_gdt

no_long_mode_msg:
        .asciz  "[tandem] PANIC: this CPU has no long mode (use -cpu max)\r\n"

        // The boot page tables stay in use: secondary CPUs start on them (they identity-map the
        // AP trampoline below 1 MiB) before loading the kernel's tables.
        .section .boot.bss, "aw", @nobits
        .balign 4096
        .global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096

        .text
long_mode_high:
        // Clear .bss through its higher-half address; nothing in it is in use yet.
        movabs  $__bss_start, %rdi
        movabs  $__bss_end, %rcx
        sub     %rdi, %rcx
        xor     %eax, %eax
        rep stosb
        movabs  $boot_stack_top, %rsp
        xor     %ebp, %ebp              // ends the frame-pointer chain for backtraces
        mov     %esi, %edi              // hvm_start_info physical address
        call    hal_real_main
        ud2

        .bss
        .balign 16
        .global boot_stack_top
boot_stack:
        .skip   32768
boot_stack_top:
