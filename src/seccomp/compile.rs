//! Plan -> classic BPF.
//!
//! Our own emitter rather than seccompiler's: seccompiler returns its
//! mismatch action as soon as a syscall's rules fail (no way to chain
//! several action groups), checks one arch per program, and spends five
//! instructions per argument-less syscall, which puts Docker's profile over
//! the 4096-instruction limit once i386 and x32 are listed.
//!
//! Layout:
//! ```text
//!   ld arch; jeq X86_64 -> x86_64; jeq I386 -> i386; ret KILL_PROCESS
//! x86_64: ld nr; jge X32_BIT -> x32 (or KILL_PROCESS); <body>
//! x32:    <body>
//! i386:   <body>
//! body:   ld nr
//!         per action: jeq nr1 -> R; jeq nr2 -> R; ... ; R: ret action
//!         per syscall with argument rules: jeq nr -> rules, each ending in
//!           ret, then ret default
//!         jgt max -> ret ENOSYS; ret default
//! ```
//! Every syscall number owns one block, so block order does not change
//! what the program returns.

use super::profile::{AbiPlan, CmpOp, Cond, Decision, Plan};
use super::syscalls::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::SeccompError;

pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
pub(crate) const BPF_ALU_AND_K: u16 = 0x54;
pub(crate) const BPF_JA: u16 = 0x05;
pub(crate) const BPF_JEQ_K: u16 = 0x15;
pub(crate) const BPF_JGT_K: u16 = 0x25;
pub(crate) const BPF_JGE_K: u16 = 0x35;
pub(crate) const BPF_RET_K: u16 = 0x06;

/// BPF_MAXINSNS, the kernel's limit for one seccomp program.
pub(crate) const MAX_INSNS: usize = 4096;

/// Offsets in `struct seccomp_data` (x86 is little-endian: the low half of
/// an argument comes first).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Unconditional syscalls sharing one `ret` per run; keeps every `jeq`
/// offset to that `ret` well inside the 8-bit conditional jump range.
const RUN: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Target {
    Next,
    To(Label),
}

#[derive(Debug)]
enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Bind(Label),
}

/// A tiny assembler with forward labels. Conditional jumps reach 255
/// instructions; `finish` turns a branch that ends up further into a short
/// hop to an inserted `ja`, repeating until the layout is stable.
#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    fn ld(&mut self, off: u32) {
        self.items.push(Item::Stmt {
            code: BPF_LD_W_ABS,
            k: off,
        });
    }

    fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt {
            code: BPF_ALU_AND_K,
            k,
        });
    }

    fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: BPF_RET_K, k });
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    fn finish(self) -> Result<Vec<libc::sock_filter>, SeccompError> {
        let internal = |what: &str| SeccompError::Internal(what.to_string());
        // Per jump item: (jt needs a trampoline, jf needs a trampoline).
        let mut far = vec![(false, false); self.items.len()];
        let (pos, labels) = loop {
            let mut pos = Vec::with_capacity(self.items.len());
            let mut labels = vec![None; self.labels];
            let mut at = 0usize;
            for (i, item) in self.items.iter().enumerate() {
                pos.push(at);
                at += match item {
                    Item::Stmt { .. } | Item::Ja(_) => 1,
                    Item::Bind(l) => {
                        labels[l.0] = Some(at);
                        0
                    }
                    Item::Jump { .. } => 1 + usize::from(far[i].0) + usize::from(far[i].1),
                };
            }
            let labels: Vec<usize> = labels
                .into_iter()
                .collect::<Option<_>>()
                .ok_or_else(|| internal("unbound label"))?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                let Item::Jump { jt, jf, .. } = item else {
                    continue;
                };
                let after = pos[i] + 1 + usize::from(far[i].0) + usize::from(far[i].1);
                let (jt_far, jf_far) = &mut far[i];
                for (target, is_far) in [(jt, jt_far), (jf, jf_far)] {
                    let t = match target {
                        Target::Next => after,
                        Target::To(l) => labels[l.0],
                    };
                    if t < after {
                        return Err(internal("backward jump"));
                    }
                    if !*is_far && t - (pos[i] + 1) > usize::from(u8::MAX) {
                        *is_far = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break (pos, labels);
            }
        };

        let target_of = |t: Target, after: usize| match t {
            Target::Next => after,
            Target::To(l) => labels[l.0],
        };
        let ja = |from: usize, to: usize| libc::sock_filter {
            code: BPF_JA,
            jt: 0,
            jf: 0,
            k: (to - from - 1) as u32,
        };
        let mut out = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            match *item {
                Item::Bind(_) => {}
                Item::Stmt { code, k } => out.push(libc::sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Item::Ja(l) => out.push(ja(pos[i], labels[l.0])),
                Item::Jump { code, k, jt, jf } => {
                    let p = pos[i];
                    let (jt_far, jf_far) = far[i];
                    let after = p + 1 + usize::from(jt_far) + usize::from(jf_far);
                    let (jt_t, jf_t) = (target_of(jt, after), target_of(jf, after));
                    // Trampolines sit right after the jump: jt's first.
                    let jt_slot = p + 1;
                    let jf_slot = p + 1 + usize::from(jt_far);
                    let jt_off = if jt_far { 0 } else { jt_t - p - 1 };
                    let jf_off = if jf_far {
                        jf_slot - p - 1
                    } else {
                        jf_t - p - 1
                    };
                    out.push(libc::sock_filter {
                        code,
                        jt: jt_off as u8,
                        jf: jf_off as u8,
                        k,
                    });
                    if jt_far {
                        out.push(ja(jt_slot, jt_t));
                    }
                    if jf_far {
                        out.push(ja(jf_slot, jf_t));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn arg_lo(index: u8) -> u32 {
    OFF_ARGS + 8 * u32::from(index)
}

fn arg_hi(index: u8) -> u32 {
    arg_lo(index) + 4
}

/// Falls through when `c` holds, jumps to `fail` otherwise.
fn emit_cond(a: &mut Asm, c: &Cond, wide: bool, fail: Label) {
    use Target::{Next, To};
    let fail = To(fail);
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    if !wide {
        a.ld(arg_lo(c.index));
        match c.op {
            CmpOp::Eq => a.jump(BPF_JEQ_K, vl, Next, fail),
            CmpOp::Ne => a.jump(BPF_JEQ_K, vl, fail, Next),
            CmpOp::Gt => a.jump(BPF_JGT_K, vl, Next, fail),
            CmpOp::Ge => a.jump(BPF_JGE_K, vl, Next, fail),
            CmpOp::Lt => a.jump(BPF_JGE_K, vl, fail, Next),
            CmpOp::Le => a.jump(BPF_JGT_K, vl, fail, Next),
            CmpOp::MaskedEq { mask } => {
                a.and(mask as u32);
                a.jump(BPF_JEQ_K, vl, Next, fail);
            }
        }
        return;
    }
    // 64-bit compares: decide on the high halves, and look at the low
    // halves only when the high halves are equal.
    let ok = a.label();
    a.ld(arg_hi(c.index));
    match c.op {
        CmpOp::Eq => {
            a.jump(BPF_JEQ_K, vh, Next, fail);
            a.ld(arg_lo(c.index));
            a.jump(BPF_JEQ_K, vl, Next, fail);
        }
        CmpOp::Ne => {
            a.jump(BPF_JEQ_K, vh, Next, To(ok));
            a.ld(arg_lo(c.index));
            a.jump(BPF_JEQ_K, vl, fail, Next);
        }
        CmpOp::Gt | CmpOp::Ge => {
            a.jump(BPF_JGT_K, vh, To(ok), Next);
            a.jump(BPF_JEQ_K, vh, Next, fail);
            a.ld(arg_lo(c.index));
            let code = if c.op == CmpOp::Gt {
                BPF_JGT_K
            } else {
                BPF_JGE_K
            };
            a.jump(code, vl, Next, fail);
        }
        CmpOp::Lt | CmpOp::Le => {
            a.jump(BPF_JGE_K, vh, Next, To(ok));
            a.jump(BPF_JEQ_K, vh, Next, fail);
            a.ld(arg_lo(c.index));
            // Lt fails on lo >= v, Le on lo > v.
            let code = if c.op == CmpOp::Lt {
                BPF_JGE_K
            } else {
                BPF_JGT_K
            };
            a.jump(code, vl, fail, Next);
        }
        CmpOp::MaskedEq { mask } => {
            a.and((mask >> 32) as u32);
            a.jump(BPF_JEQ_K, vh, Next, fail);
            a.ld(arg_lo(c.index));
            a.and(mask as u32);
            a.jump(BPF_JEQ_K, vl, Next, fail);
        }
    }
    a.bind(ok);
}

/// One ABI's body; expects nothing in A.
fn emit_body(a: &mut Asm, plan: &AbiPlan, p: &Plan) {
    use Target::{Next, To};
    a.ld(OFF_NR);

    // Argument-less syscalls, grouped by action (first-seen order).
    let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
    for (&nr, d) in &plan.syscalls {
        if let Decision::Always { ret, .. } = d {
            match groups.iter_mut().find(|g| g.0 == *ret) {
                Some(g) => g.1.push(nr),
                None => groups.push((*ret, vec![nr])),
            }
        }
    }
    for (ret, nrs) in &groups {
        for run in nrs.chunks(RUN) {
            let hit = a.label();
            let miss = a.label();
            for (i, &nr) in run.iter().enumerate() {
                let jf = if i + 1 == run.len() { To(miss) } else { Next };
                a.jump(BPF_JEQ_K, nr, To(hit), jf);
            }
            a.bind(hit);
            a.ret(*ret);
            a.bind(miss);
        }
    }

    // Syscalls with argument rules. A is the syscall number on entry to
    // each block and is left untouched on the path that skips a block.
    let wide = plan.abi.wide_args();
    for (&nr, d) in &plan.syscalls {
        let Decision::Rules(rules) = d else { continue };
        if rules.is_empty() {
            continue;
        }
        let skip = a.label();
        a.jump(BPF_JEQ_K, nr, Next, To(skip));
        for rule in rules {
            let fail = a.label();
            for c in &rule.conds {
                emit_cond(a, c, wide, fail);
            }
            a.ret(rule.ret);
            a.bind(fail);
        }
        a.ret(p.default_ret);
        a.bind(skip);
    }

    if p.enosys_tail {
        let dflt = a.label();
        a.jump(BPF_JGT_K, plan.abi.max_number(), Next, To(dflt));
        a.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        a.bind(dflt);
    }
    a.ret(p.default_ret);
}

pub(crate) fn emit(p: &Plan) -> Result<Vec<libc::sock_filter>, SeccompError> {
    use Target::{Next, To};
    // libseccomp's default bad-arch action.
    const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    let find = |abi: Abi| p.abis.iter().find(|x| x.abi == abi);
    let (x86_64, x32, i386) = (find(Abi::X86_64), find(Abi::X32), find(Abi::X86));

    let mut a = Asm::default();
    let l_amd64 = a.label();
    let l_i386 = a.label();
    a.ld(OFF_ARCH);
    if x86_64.is_some() || x32.is_some() {
        a.jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, To(l_amd64), Next);
    }
    if i386.is_some() {
        a.jump(BPF_JEQ_K, AUDIT_ARCH_I386, To(l_i386), Next);
    }
    a.ret(BAD_ARCH);

    a.bind(l_amd64);
    if x86_64.is_some() || x32.is_some() {
        a.ld(OFF_NR);
        let l_x32 = a.label();
        let l_native = a.label();
        match (x86_64, x32) {
            (Some(_), Some(_)) => a.jump(BPF_JGE_K, X32_SYSCALL_BIT, To(l_x32), To(l_native)),
            // An x32 call in an x86_64-only filter is a foreign ABI.
            (Some(_), None) => a.jump(BPF_JGE_K, X32_SYSCALL_BIT, Next, To(l_native)),
            _ => a.jump(BPF_JGE_K, X32_SYSCALL_BIT, To(l_x32), Next),
        }
        if x86_64.is_none() || x32.is_none() {
            a.ret(BAD_ARCH);
        }
        a.bind(l_native);
        if let Some(plan) = x86_64 {
            emit_body(&mut a, plan, p);
        }
        a.bind(l_x32);
        if let Some(plan) = x32 {
            emit_body(&mut a, plan, p);
        }
    }

    a.bind(l_i386);
    if let Some(plan) = i386 {
        emit_body(&mut a, plan, p);
    }

    let program = a.finish()?;
    if program.len() > MAX_INSNS {
        return Err(SeccompError::TooLong {
            len: program.len(),
            max: MAX_INSNS,
        });
    }
    Ok(program)
}
