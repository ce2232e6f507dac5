//! Test-only classic BPF interpreter for seccomp programs, with the
//! kernel checker's structural rules, so unit tests can assert what a
//! compiled filter returns for a given `seccomp_data`.

use super::compile::{
    BPF_ALU_AND_K, BPF_JA, BPF_JEQ_K, BPF_JGE_K, BPF_JGT_K, BPF_LD_W_ABS, BPF_RET_K, MAX_INSNS,
};

const BPF_JSET_K: u16 = 0x45;

/// `struct seccomp_data` without the instruction pointer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Data {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) args: [u64; 6],
}

impl Data {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

/// What the kernel's seccomp checker insists on: a size limit, known
/// opcodes, aligned in-bounds loads, in-bounds jumps, a final return.
pub(crate) fn check(prog: &[libc::sock_filter]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "length {}",
        prog.len()
    );
    for (pc, i) in prog.iter().enumerate() {
        let rest = prog.len() - pc - 1;
        match i.code {
            BPF_LD_W_ABS => assert!(i.k % 4 == 0 && i.k < 64, "pc {pc}: bad load {}", i.k),
            BPF_ALU_AND_K | BPF_RET_K => {}
            BPF_JA => assert!((i.k as usize) < rest, "pc {pc}: ja out of range"),
            BPF_JEQ_K | BPF_JGT_K | BPF_JGE_K | BPF_JSET_K => {
                assert!(
                    usize::from(i.jt) < rest && usize::from(i.jf) < rest,
                    "pc {pc}: jump out of range"
                )
            }
            c => panic!("pc {pc}: unexpected opcode {c:#x}"),
        }
    }
    assert_eq!(
        prog.last().map(|i| i.code),
        Some(BPF_RET_K),
        "must end in ret"
    );
}

/// Runs `prog` over `d` and returns the SECCOMP_RET_* value.
pub(crate) fn run(prog: &[libc::sock_filter], d: &Data) -> u32 {
    let mem = d.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => {
                let k = i.k as usize;
                a = u32::from_le_bytes(mem[k..k + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => a &= i.k,
            BPF_RET_K => return i.k,
            BPF_JA => pc += i.k as usize,
            code => {
                let taken = match code {
                    BPF_JEQ_K => a == i.k,
                    BPF_JGT_K => a > i.k,
                    BPF_JGE_K => a >= i.k,
                    BPF_JSET_K => a & i.k != 0,
                    c => panic!("unexpected opcode {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }
}
