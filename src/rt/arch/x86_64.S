/* x86_64.S - the uthread context switch for x86-64 (System V ABI).
 *
 * A suspended context is its stack pointer; the stack holds, from that
 * pointer up: MXCSR (4 bytes) and the x87 control word (2 bytes) in one
 * 8-byte slot, then r15, r14, r13, r12, rbx, rbp, and the return address.
 * Only callee-saved state is kept: the switch is a function call, so the
 * compiler has already saved everything else. MXCSR's control bits and the
 * x87 control word are callee-saved per the ABI, hence kept too.
 */

	.text

/* void ctx_switch(void **save_sp, void *new_sp)
 * Saves the caller's context, storing its stack pointer into *save_sp, and
 * resumes the context whose stack pointer is new_sp. */
	.globl	ctx_switch
	.type	ctx_switch, @function
	.p2align 4
ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)

	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	ctx_switch, .-ctx_switch

/* First code a new context runs: ctx_init() left the entry function in r13
 * and its argument in r12. The entry function never returns. */
	.globl	ctx_trampoline
	.type	ctx_trampoline, @function
	.p2align 4
ctx_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.cfi_endproc
	.size	ctx_trampoline, .-ctx_trampoline

	.section .note.GNU-stack,"",@progbits
