/* aarch64.S - the uthread context switch for arm64 (AAPCS64).
 *
 * A suspended context is its stack pointer; the 176-byte frame below it
 * holds x19-x28, x29 (fp), x30 (lr), d8-d15 and FPCR. Same contract as
 * x86_64.S: ctx_init() leaves the entry function in x20, its argument in
 * x19 and ctx_trampoline in x30.
 */
	.text

	.globl	ctx_switch
	.type	ctx_switch, %function
	.p2align 4
ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]

	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.size	ctx_switch, .-ctx_switch

	.globl	ctx_trampoline
	.type	ctx_trampoline, %function
	.p2align 4
ctx_trampoline:
	mov	x0, x19
	blr	x20
	brk	#0
	.size	ctx_trampoline, .-ctx_trampoline

	.section .note.GNU-stack,"",%progbits
