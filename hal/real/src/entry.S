// hal/real/src/entry.S: every way into and out of the kernel, and the context switch.
//
// Interrupts and exceptions: 256 stubs of 16 bytes each (idt_build computes their addresses)
// push a dummy error code when the CPU does not, then the vector, and build a TrapFrame (see
// traps.cpp) on the kernel stack. From user mode the CPU has already switched to TSS.RSP0, the
// running thread's kernel stack, so the user stack and its red zone are never touched.
//
// SYSCALL: switches to the thread's kernel stack through the per-CPU block and builds a
// hal::UserFrame there. Returns with SYSRET, or IRETQ when the frame cannot be returned to with
// SYSRET (see syscall_dispatch).

#define PERCPU_KERNEL_RSP 8
#define PERCPU_USER_RSP 16
#define USER_CS (0x30 | 3)
#define USER_DS (0x28 | 3)
#define MSR_GS_BASE 0xc0000101

// SMAP: stac/clac only when the CPU has SMAP and it is enabled (g_smap_enabled is set once at
// boot); the instructions fault on CPUs without it.
.macro STAC
        cmpb    $0, g_smap_enabled(%rip)
        je      1f
        stac
1:
.endm
.macro CLAC
        cmpb    $0, g_smap_enabled(%rip)
        je      1f
        clac
1:
.endm

.macro PUSH_GPRS
        push    %rax
        push    %rbx
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %rbp
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %r12
        push    %r13
        push    %r14
        push    %r15
.endm
.macro POP_GPRS
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rbp
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
.endm

        .text
        .balign 16
        .global isr_stubs
isr_stubs:
        .set    vec, 0
        .rept   256
        .balign 16
        .if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
        pushq   $0
        .endif
        pushq   $vec
        .if (vec == 2 || vec == 8 || vec == 18)
        jmp     isr_paranoid
        .else
        jmp     isr_common
        .endif
        .set    vec, vec + 1
        .endr

// Ordinary vectors: the privilege level of the interrupted code says whether GS must be swapped.
// Stack on entry: vector, error, rip, cs, rflags, rsp, ss.
isr_common:
        testb   $3, 24(%rsp)
        jz      1f
        swapgs
1:      PUSH_GPRS
        cld
        CLAC
        mov     %rsp, %rdi
        call    trap_dispatch
        POP_GPRS
        testb   $3, 24(%rsp)
        jz      2f
        swapgs
2:      add     $16, %rsp
        iretq

// NMI, double fault and machine check run on IST stacks and may arrive anywhere, including the
// few instructions between SYSCALL and SWAPGS. The GS base MSR is the only reliable witness: a
// kernel per-CPU address is negative, a user value is not (user code cannot set a kernel GS).
isr_paranoid:
        PUSH_GPRS
        cld
        CLAC
        mov     $MSR_GS_BASE, %ecx
        rdmsr
        xor     %ebx, %ebx
        test    %edx, %edx
        js      1f
        swapgs
        mov     $1, %ebx
1:      mov     %rsp, %rdi
        call    trap_dispatch
        test    %ebx, %ebx
        jz      2f
        swapgs
2:      POP_GPRS
        add     $16, %rsp
        iretq

// SYSCALL: RCX = user RIP, R11 = user RFLAGS; FMASK has cleared IF, TF, DF, AC and NT.
        .global syscall_entry
syscall_entry:
        swapgs
        mov     %rsp, %gs:PERCPU_USER_RSP
        mov     %gs:PERCPU_KERNEL_RSP, %rsp
        pushq   $0                      // padding: keeps the frame 16-byte aligned
        pushq   $0                      // fs_base, filled in by syscall_dispatch
        push    %r11                    // rflags
        push    %rcx                    // rip
        push    %r15
        push    %r14
        push    %r13
        push    %r12
        push    %r11
        push    %r10
        push    %r9
        push    %r8
        pushq   %gs:PERCPU_USER_RSP     // rsp
        push    %rbp
        push    %rdi
        push    %rsi
        push    %rdx
        push    %rcx
        push    %rbx
        push    %rax
        xor     %ebp, %ebp
        mov     %rsp, %rdi
        call    syscall_dispatch        // returns with interrupts disabled
        test    %eax, %eax
        jnz     1f
        mov     0(%rsp), %rax
        mov     8(%rsp), %rbx
        mov     24(%rsp), %rdx
        mov     32(%rsp), %rsi
        mov     40(%rsp), %rdi
        mov     48(%rsp), %rbp
        mov     64(%rsp), %r8
        mov     72(%rsp), %r9
        mov     80(%rsp), %r10
        mov     96(%rsp), %r12
        mov     104(%rsp), %r13
        mov     112(%rsp), %r14
        mov     120(%rsp), %r15
        mov     128(%rsp), %rcx         // rip
        mov     136(%rsp), %r11         // rflags
        mov     56(%rsp), %rsp          // the user stack: no kernel stack access from here on
        swapgs
        sysretq
1:      mov     %rsp, %rdi
        jmp     user_return_iret

// [[noreturn]] void user_return_iret(const hal::UserFrame* frame): interrupts disabled, kernel GS.
// Pushes an IRETQ frame below the current stack pointer and loads every register from `frame`.
        .global user_return_iret
user_return_iret:
        mov     %rdi, %rbx
        pushq   $USER_DS
        pushq   56(%rbx)                // rsp
        pushq   136(%rbx)               // rflags
        pushq   $USER_CS
        pushq   128(%rbx)               // rip
        mov     0(%rbx), %rax
        mov     16(%rbx), %rcx
        mov     24(%rbx), %rdx
        mov     32(%rbx), %rsi
        mov     40(%rbx), %rdi
        mov     48(%rbx), %rbp
        mov     64(%rbx), %r8
        mov     72(%rbx), %r9
        mov     80(%rbx), %r10
        mov     88(%rbx), %r11
        mov     96(%rbx), %r12
        mov     104(%rbx), %r13
        mov     112(%rbx), %r14
        mov     120(%rbx), %r15
        mov     8(%rbx), %rbx
        swapgs
        iretq

// void context_switch_asm(u64* save_rsp, u64 new_rsp): saves the callee-saved registers on the
// current stack, parks its pointer in *save_rsp and resumes the other stack.
        .global context_switch_asm
context_switch_asm:
        push    %rbp
        push    %rbx
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, (%rdi)
        mov     %rsi, %rsp
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        ret

// The first resumption of a context made by context_create: R12 = entry, R13 = arg.
        .global context_start
context_start:
        mov     %r13, %rdi
        xor     %ebp, %ebp
        call    *%r12
        call    context_entry_returned
        ud2

// u64 user_copy_asm(void* dst, const void* src, u64 length): returns the bytes left uncopied,
// 0 on success. A fault on the rep movsb is redirected to the fixup by the page-fault handler;
// rep movsb leaves RCX, RSI and RDI at the faulting byte, so the count is exact.
        .global user_copy_asm, user_copy_insn, user_copy_fixup
user_copy_asm:
        mov     %rdx, %rcx
        STAC
user_copy_insn:
        rep movsb
        CLAC
        xor     %eax, %eax
        ret
user_copy_fixup:
        CLAC
        mov     %rcx, %rax
        ret

// int user_cmpxchg_asm(u32* user, u32 expected, u32 desired, u32* seen): 0, or 1 on a fault.
        .global user_cmpxchg_asm, user_cmpxchg_insn, user_cmpxchg_fixup
user_cmpxchg_asm:
        mov     %esi, %eax
        STAC
user_cmpxchg_insn:
        lock cmpxchg %edx, (%rdi)
        CLAC
        mov     %eax, (%rcx)
        xor     %eax, %eax
        ret
user_cmpxchg_fixup:
        CLAC
        mov     $1, %eax
        ret
