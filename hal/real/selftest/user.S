// hal/real/selftest/user.S: the user-mode program of the HAL selftest.
//
// selftest.cpp copies this position-independent blob to user address 0x400000 and enters it
// with enter_user. It talks to the selftest's kentry::syscall with private call numbers (not
// Linux ones). Where it faults on purpose, R12 holds the address to resume at; the selftest's
// user_fault handler moves RIP there.
//
// The data page is at 0x600000: the kernel writes the timer tick count at 0x600008 and a magic
// value at 0x600010 (which becomes the FS base).

        .section .rodata
        .global user_blob_start, user_blob_end
user_blob_start:
        .code64
        // 1: write a message through copy_from_user.
        lea     u_msg(%rip), %rdi
        mov     $(u_msg_end - u_msg), %esi
        mov     $1, %eax
        syscall

        // 10: a store to a demand-paged address (kentry::page_fault maps it), read back.
        movq    $0x1234, 0x10000000
        mov     0x10000000, %rdi
        mov     $10, %eax
        syscall

        // 2, 3: SSE state survives a context switch to a context that clobbers it.
        movabs  $0x1122334455667788, %rax
        movq    %rax, %xmm0
        movq    %rax, %xmm15
        mov     $2, %eax
        syscall
        movq    %xmm0, %rdi
        movq    %xmm15, %rsi
        mov     $3, %eax
        syscall

        // 5, 6: registers and the 128-byte red zone survive timer interrupts taken in user mode.
        movabs  $0x5a5a5a5a5a5a5a5a, %rax
        lea     -128(%rsp), %rdi
        mov     $16, %ecx
        rep stosq
        mov     $5, %eax
        syscall                         // arms a 1 ms periodic timer
        mov     $0x1111, %rbx
        mov     $0x7777, %rbp
        mov     $0x2222, %r12
        mov     $0x3333, %r13
        mov     $0x4444, %r14
        mov     $0x5555, %r15
1:      cmpq    $3, 0x600008            // wait for three ticks
        jb      1b
        xor     %edi, %edi
        cmp     $0x1111, %rbx
        jne     2f
        cmp     $0x7777, %rbp
        jne     2f
        cmp     $0x2222, %r12
        jne     2f
        cmp     $0x3333, %r13
        jne     2f
        cmp     $0x4444, %r14
        jne     2f
        cmp     $0x5555, %r15
        jne     2f
        movabs  $0x5a5a5a5a5a5a5a5a, %rax
        lea     -128(%rsp), %rdi
        mov     $16, %ecx
        repe scasq
        mov     $0, %edi
        je      3f
2:      mov     $1, %edi
3:      mov     $6, %eax
        syscall

        // An invalid opcode, then a load from an address nobody maps: two user faults.
        lea     4f(%rip), %r12
        ud2
4:      lea     5f(%rip), %r12
        mov     0x30000000, %rax
5:
        // 7, 8: FS base set by the kernel, read through %fs.
        mov     $7, %eax
        syscall
        mov     %fs:0, %rdi
        mov     $8, %eax
        syscall

        // 9: the kernel returns to a non-canonical RIP: that must become a user fault (SIGSEGV),
        // not a kernel #GP on sysret/iretq.
        lea     6f(%rip), %r12
        mov     $9, %eax
        syscall
6:
        // 11: the selectors are Linux's (CS 0x33, SS 0x2b).
        mov     %cs, %edi
        mov     %ss, %esi
        mov     $11, %eax
        syscall

        // int $0x80 has no user gate here: a general protection fault, hence SIGSEGV.
        lea     7f(%rip), %r12
        int     $0x80
7:
        // 60: done.
        mov     $60, %eax
        syscall
        ud2

u_msg:  .ascii  "hello from user mode"
u_msg_end:
user_blob_end:
