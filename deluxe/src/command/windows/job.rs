//! A Job Object per call: Windows' way to hold a process *and everything it starts*, and to
//! end them all at once.
//!
//! The program is created suspended, put in a fresh job (which its children then join by
//! default), and only then resumed: nothing it starts can escape the job. The job is made with
//! `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, so closing its handle (dropping the [`Job`], or this
//! process ending in any way) terminates whatever is still in it.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::os::windows::process::CommandExt;
use std::process::Child;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
};

/// The exit code of the processes a cancelled call terminates.
pub(crate) const TERMINATED: u32 = 1;

/// A Job Object that kills its processes when closed.
#[derive(Debug)]
pub(crate) struct Job {
    handle: OwnedHandle,
}

impl Job {
    /// A new, empty job with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no security attributes and no name: an anonymous job only we hold.
        let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just returned by CreateJobObjectW and is owned by nothing else.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid (no limits).
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: the job handle is valid; the pointer and size describe `limits`, which
        // outlives the call.
        let set = unsafe {
            SetInformationJobObject(
                handle.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if set == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { handle })
    }

    /// Sets `command` to start suspended, for [`Job::adopt`].
    pub(crate) fn prepare(command: &mut std::process::Command) {
        command.creation_flags(CREATE_SUSPENDED);
    }

    /// Puts `child` (started suspended by [`Job::prepare`]) in the job, then resumes it. On
    /// error the child is terminated: it never runs outside the job.
    pub(crate) fn adopt(&self, child: &mut Child) -> io::Result<()> {
        let adopted = self.assign(child).and_then(|()| resume(child.id()));
        if adopted.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        adopted
    }

    fn assign(&self, child: &Child) -> io::Result<()> {
        // SAFETY: both handles are valid for the call: the job's is ours, the process's is
        // held by `child`.
        let assigned =
            unsafe { AssignProcessToJobObject(self.handle.as_raw_handle(), child.as_raw_handle()) };
        if assigned == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Lets what is left in the job outlive it: a call that ended normally does not kill the
    /// background processes its program left running (as on Unix).
    pub(crate) fn release(&self) {
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid (no limits).
        let limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: the job handle is valid; the pointer and size describe `limits`, which
        // outlives the call. On error the job keeps its limit, which only kills more.
        let _ = unsafe {
            SetInformationJobObject(
                self.handle.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
    }

    /// Terminates every process in the job (the program and everything it started).
    pub(crate) fn terminate(&self) {
        // SAFETY: the job handle is valid; an error (nothing left) needs no handling.
        let _ = unsafe { TerminateJobObject(self.handle.as_raw_handle(), TERMINATED) };
    }
}

/// Resumes the threads of the suspended process `pid` (its one initial thread).
fn resume(pid: u32) -> io::Result<()> {
    // SAFETY: a snapshot of the system's threads; the handle is checked, then owned.
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if raw == INVALID_HANDLE_VALUE || raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid snapshot handle owned by nothing else.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(raw) };
    // SAFETY: an all-zero THREADENTRY32 is valid; dwSize is set below, as the API requires.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = size_of::<THREADENTRY32>() as u32;
    let mut resumed = 0;
    // SAFETY: the snapshot handle is valid and `entry` is a THREADENTRY32 with its size set.
    let mut more = unsafe { Thread32First(snapshot.as_raw_handle(), &raw mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opening a thread by id; the handle is checked, then owned.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if thread.is_null() {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `thread` was just opened and is owned by nothing else.
            let thread = unsafe { OwnedHandle::from_raw_handle(thread) };
            // SAFETY: a valid thread handle with THREAD_SUSPEND_RESUME access.
            if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot.as_raw_handle(), &raw mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "no thread of the new process {pid} to resume"
        )));
    }
    Ok(())
}
