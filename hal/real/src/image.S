// hal/real/src/image.S: what makes the linked kernel a PVH image.
//
// This file is a source of each kernel executable (tandem.elf, hal-selftest.elf) rather than of
// the tandem_hal_real library, so the note is linked even though no code refers to it.

// The PVH note: type XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", a 64-bit physical entry address.
// The section is 4-byte aligned so the PT_NOTE segment's alignment (which QEMU uses to find the
// descriptor) is 4, as for every other ELF note.
        .section .note.pvh, "a", @note
        .balign 4
        .long 4
        .long 8
        .long 18
        .asciz "Xen"
        .balign 4
        .quad pvh_start32

