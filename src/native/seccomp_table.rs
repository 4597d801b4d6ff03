//! Docker's default seccomp profile as data, entry for entry.
//!
//! Translated from moby/moby `profiles/seccomp/default.json` at commit
//! 00f3d189e420d485e42d15fe494f96d272284e0e, with moby/moby#46762 applied (the three
//! `io_uring_*` calls taken out of the allow list, as Docker 25 and later ship it: io_uring runs
//! operations that seccomp never sees). The entries keep the JSON's order and fields: `names`,
//! `action` (+ `errnoRet`), `args`, `includes` (`arches`, `caps`, `minKernel`) and `excludes`
//! (`arches`, `caps`). Architectures are named as the JSON (and Go) names them. Everything not
//! allowed fails with `defaultErrnoRet`, EPERM. What this crate adds on top (memfd, `execveat`)
//! is in `seccomp.rs`, not here, so this table stays comparable with its source.

/// `defaultErrnoRet`.
pub const DEFAULT_ERRNO: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Errno(u32),
}

/// An argument condition: `SCMP_CMP_EQ`, `SCMP_CMP_NE`, `SCMP_CMP_MASKED_EQ` (mask, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Eq(u8, u64),
    Ne(u8, u64),
    MaskedEq(u8, u64, u64),
}

#[derive(Debug)]
pub struct Entry {
    /// Space-separated syscall names.
    pub names: &'static str,
    pub action: Action,
    /// All must hold (libseccomp ANDs the conditions of one rule).
    pub args: &'static [Arg],
    /// `includes.arches`: empty for every architecture.
    pub arches: &'static [&'static str],
    /// `includes.caps`: every one must be held.
    pub caps: &'static [&'static str],
    /// `includes.minKernel` (major, minor).
    pub min_kernel: Option<(u32, u32)>,
    /// `excludes.arches`.
    pub not_arches: &'static [&'static str],
    /// `excludes.caps`: none may be held.
    pub not_caps: &'static [&'static str],
}

const fn allow(names: &'static str) -> Entry {
    Entry {
        names,
        action: Action::Allow,
        args: &[],
        arches: &[],
        caps: &[],
        min_kernel: None,
        not_arches: &[],
        not_caps: &[],
    }
}

const fn on_arches(names: &'static str, arches: &'static [&'static str]) -> Entry {
    Entry {
        arches,
        ..allow(names)
    }
}

const fn with_caps(names: &'static str, caps: &'static [&'static str]) -> Entry {
    Entry {
        caps,
        ..allow(names)
    }
}

const fn with_args(names: &'static str, args: &'static [Arg]) -> Entry {
    Entry {
        args,
        ..allow(names)
    }
}

/// The namespace flags of `clone`: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID |
/// NEWNET, 2114060288 in the JSON.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

pub const PROFILE: &[Entry] = &[
    allow(
        "accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 \
         clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime \
         clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect \
         copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old \
         epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit \
         exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir \
         fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr \
         flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync \
         ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents \
         getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 \
         getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid \
         getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname \
         getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr \
         inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy \
         io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit \
         ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown \
         lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek \
         lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir \
         mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify \
         mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 \
         mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap \
         name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open \
         pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll \
         ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 \
         pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv \
         recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat \
         renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask \
         rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 \
         rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam sched_get_priority_max \
         sched_get_priority_min sched_getscheduler sched_rr_get_interval \
         sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam \
         sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop \
         semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 \
         setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority \
         setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 \
         setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid \
         setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 \
         sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx \
         symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create \
         timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime \
         timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime \
         timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat \
         utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev",
    ),
    Entry {
        min_kernel: Some((4, 8)),
        ..allow("process_vm_readv process_vm_writev ptrace")
    },
    // Every family but AF_VSOCK (40).
    with_args("socket", &[Arg::Ne(0, 40)]),
    // PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and the query 0xffffffff.
    with_args("personality", &[Arg::Eq(0, 0)]),
    with_args("personality", &[Arg::Eq(0, 8)]),
    with_args("personality", &[Arg::Eq(0, 131_072)]),
    with_args("personality", &[Arg::Eq(0, 131_080)]),
    with_args("personality", &[Arg::Eq(0, 4_294_967_295)]),
    on_arches("sync_file_range2 swapcontext", &["ppc64le"]),
    on_arches(
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
        &["arm", "arm64"],
    ),
    on_arches("arch_prctl", &["amd64", "x32"]),
    on_arches("modify_ldt", &["amd64", "x32", "x86"]),
    on_arches(
        "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
        &["s390", "s390x"],
    ),
    on_arches("riscv_flush_icache", &["riscv64"]),
    with_caps("open_by_handle_at", &["CAP_DAC_READ_SEARCH"]),
    with_caps(
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
         mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname \
         sethostname setns syslog umount umount2 unshare",
        &["CAP_SYS_ADMIN"],
    ),
    // Without CAP_SYS_ADMIN, `clone` only without namespace flags (flags are argument 1 on s390).
    Entry {
        not_caps: &["CAP_SYS_ADMIN"],
        not_arches: &["s390", "s390x"],
        ..with_args("clone", &[Arg::MaskedEq(0, CLONE_NAMESPACE_FLAGS, 0)])
    },
    Entry {
        arches: &["s390", "s390x"],
        not_caps: &["CAP_SYS_ADMIN"],
        ..with_args("clone", &[Arg::MaskedEq(1, CLONE_NAMESPACE_FLAGS, 0)])
    },
    // ENOSYS, so that C libraries fall back to `clone`, whose flags can be checked.
    Entry {
        action: Action::Errno(38),
        not_caps: &["CAP_SYS_ADMIN"],
        ..allow("clone3")
    },
    with_caps("reboot", &["CAP_SYS_BOOT"]),
    with_caps("chroot", &["CAP_SYS_CHROOT"]),
    with_caps(
        "delete_module init_module finit_module",
        &["CAP_SYS_MODULE"],
    ),
    with_caps("acct", &["CAP_SYS_PACCT"]),
    with_caps(
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
        &["CAP_SYS_PTRACE"],
    ),
    with_caps("iopl ioperm", &["CAP_SYS_RAWIO"]),
    with_caps(
        "settimeofday stime clock_settime clock_settime64",
        &["CAP_SYS_TIME"],
    ),
    with_caps("vhangup", &["CAP_SYS_TTY_CONFIG"]),
    with_caps(
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
        &["CAP_SYS_NICE"],
    ),
    with_caps("syslog", &["CAP_SYSLOG"]),
    with_caps("bpf", &["CAP_BPF"]),
    with_caps("perf_event_open", &["CAP_PERFMON"]),
];
