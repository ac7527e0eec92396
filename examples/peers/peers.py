#!/usr/bin/env python3
"""The Python peers of deluxe, measured and probed by `cargo run --release --example bench`.

Usage (the bench runs it inside a virtualenv that has daemonocle and python-daemon):
  peers.py spawn CALLS ROUNDS      subprocess.run(["/bin/true"]): microseconds per call, a line a round
  peers.py cycle LIBRARY N DIR     N start/stop cycles of an idle daemon: {"start": us, "stop": us} lines
  peers.py probe LIBRARY DIR       what happens in the situations deluxe's tests cover: one JSON line

LIBRARY is daemonocle or python-daemon. Every line printed is a JSON object.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time


def emit(**fields):
    print(json.dumps(fields), flush=True)


def idle_worker():
    while True:
        time.sleep(3600)


def live(pid):
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def pid_in(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_for_pidfile(pidfile, timeout=30.0):
    """Waits until the pidfile names a live process (python-daemon tells its caller nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = pid_in(pidfile)
        if pid and live(pid):
            return pid
        time.sleep(0.0002)
    raise RuntimeError(f"no live pid in {pidfile} after {timeout}s")


def wait_gone(pid, timeout=30.0):
    """Event-driven, like deluxe and the floor: a pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(timeout * 1000)
    finally:
        os.close(fd)


def launch(start, capture=False):
    """Runs `start` in a forked child, as a program's `main` would (both libraries end the
    calling process); returns the child's exit status, and what it printed if `capture`."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        if capture:
            os.dup2(write, 1)
            os.dup2(write, 2)
        os.close(write)
        code = 0
        try:
            start()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write)
    _, status = os.waitpid(child, 0)
    output = b""
    if capture:
        # All it printed is in the pipe now; a daemon it forked may hold the pipe open, so
        # read what is there without waiting for an end of file.
        os.set_blocking(read, False)
        try:
            while chunk := os.read(read, 65536):
                output += chunk
        except BlockingIOError:
            pass
    os.close(read)
    code = os.waitstatus_to_exitcode(status)
    return (code, output.decode(errors="replace")) if capture else code


def daemons_of_this_probe():
    """Live detached processes forked from this probe (their command line is the probe's)."""
    mine = open("/proc/self/cmdline", "rb").read()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() != mine:
                    continue
            if live(int(entry)):
                found.append(int(entry))
        except OSError:
            pass
    return found


def greeting_worker(port):
    """A worker that serves 127.0.0.1:PORT: each connection gets a line, then is closed."""

    def work():
        with socket.create_server(("127.0.0.1", port)) as server:
            while True:
                connection, _ = server.accept()
                connection.sendall(b"hello\n")
                connection.close()

    return work


def greeted(port):
    """Whether a new connection to 127.0.0.1:PORT gets its line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            return connection.recv(16) == b"hello\n"
    except OSError:
        return False


def restart_refusals(pidfile):
    """daemonocle's restart of a daemon serving TCP while a client connects every millisecond:
    the connections refused (or cut) out of those tried."""
    import daemonocle

    with socket.create_server(("127.0.0.1", 0)) as probe_port:
        port = probe_port.getsockname()[1]

    def daemon():
        return daemonocle.Daemon(
            worker=greeting_worker(port), pid_file=pidfile, workdir="/", detach=True
        )

    launch(lambda: daemon().do_action("start"))
    deadline = time.monotonic() + 30
    while not greeted(port):
        if time.monotonic() > deadline:
            raise RuntimeError("the serving daemon never answered")
        time.sleep(0.01)
    done = threading.Event()
    tried, refused = [0], [0]

    def client():
        while not done.is_set():
            tried[0] += 1
            refused[0] += not greeted(port)
            time.sleep(0.001)

    thread = threading.Thread(target=client)
    thread.start()
    launch(lambda: daemon().do_action("restart"))
    done.set()
    thread.join()
    daemon().stop()
    return refused[0], tried[0]


def daemonocle_daemon(pidfile, workdir="/"):
    import daemonocle

    return daemonocle.Daemon(worker=idle_worker, pid_file=pidfile, workdir=workdir, detach=True)


def python_daemon_start(pidfile, workdir="/"):
    import daemon
    import daemon.pidfile

    def start():
        context = daemon.DaemonContext(
            working_directory=workdir,
            pidfile=daemon.pidfile.TimeoutPIDLockFile(pidfile),
        )
        with context:
            idle_worker()

    return start


def start_stop(library, pidfile):
    """One cycle: the library's start, until it says (or, for python-daemon, shows) the daemon
    is up; then its stop until the daemon is gone."""
    t0 = time.perf_counter()
    if library == "daemonocle":
        daemon = daemonocle_daemon(pidfile)
        status = launch(lambda: daemon.do_action("start"))
        if status != 0:
            raise RuntimeError(f"daemonocle start exited {status}")
        pid = pid_in(pidfile)
    else:
        launch(python_daemon_start(pidfile))
        pid = wait_for_pidfile(pidfile)
    started = time.perf_counter()
    if library == "daemonocle":
        daemon.stop()
    else:
        # python-daemon has no stop: what its users do, SIGTERM and wait.
        os.kill(pid, signal.SIGTERM)
        wait_gone(pid)
    stopped = time.perf_counter()
    return (started - t0) * 1e6, (stopped - started) * 1e6


def probe(library, directory):
    """What each situation deluxe's tests cover does with this library."""
    facts = {"library": library}
    pidfile = os.path.join(directory, f"{library}.pid")

    # A second start while the daemon runs: is the caller told (the running pid, an exit
    # code), and how many daemons are there afterwards?
    if library == "daemonocle":
        launch(lambda: daemonocle_daemon(pidfile).do_action("start"))
        pid = pid_in(pidfile)
        second, said = launch(lambda: daemonocle_daemon(pidfile).do_action("start"), capture=True)
    else:
        launch(python_daemon_start(pidfile))
        pid = wait_for_pidfile(pidfile)
        second, said = launch(python_daemon_start(pidfile), capture=True)
        time.sleep(0.5)
    facts["second_start_exit"] = second
    facts["second_start_reported_pid"] = str(pid) in said
    facts["daemons_after_second_start"] = len(daemons_of_this_probe())
    os.kill(pid, signal.SIGTERM)
    wait_gone(pid)
    time.sleep(0.5)
    facts["daemon_took_over_after_first_stopped"] = bool(daemons_of_this_probe())
    for leftover in daemons_of_this_probe():
        os.kill(leftover, signal.SIGTERM)
        wait_gone(leftover)

    # A start that fails after the fork (the pidfile's directory does not exist): is the
    # caller told?
    missing = os.path.join(directory, "missing", "x.pid")
    if library == "daemonocle":
        code = launch(lambda: daemonocle_daemon(missing).do_action("start"))
        facts["created_missing_pidfile_dir"] = os.path.isdir(os.path.dirname(missing))
        leftover = pid_in(missing)
        if leftover and live(leftover):
            os.kill(leftover, signal.SIGTERM)
            wait_gone(leftover)
    else:
        code = launch(python_daemon_start(missing))
        facts["created_missing_pidfile_dir"] = os.path.isdir(os.path.dirname(missing))
    facts["missing_pidfile_dir_start_exit"] = code

    # A stale pidfile naming an unrelated live process: does stop signal it?
    if library == "daemonocle":
        bystander = subprocess.Popen(["sleep", "1000"])
        with open(pidfile, "w") as f:
            f.write(f"{bystander.pid}\n")
        daemonocle_daemon(pidfile).stop(timeout=2)
        time.sleep(0.2)
        facts["stale_pidfile_unrelated_process_signalled"] = bystander.poll() is not None
        bystander.kill()
        bystander.wait()
    else:
        facts["stale_pidfile_unrelated_process_signalled"] = None  # no stop to ask

    # A restart while clients connect: how many connections are refused?
    if library == "daemonocle":
        refused, tried = restart_refusals(os.path.join(directory, "restart.pid"))
        facts["restart_refused"] = [refused, tried]
    else:
        facts["restart_refused"] = None  # no restart to ask

    # A pidfile that is a symbolic link to another file: is that file left alone?
    victim = os.path.join(directory, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    link = os.path.join(directory, "link.pid")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(victim, link)
    if library == "daemonocle":
        launch(lambda: daemonocle_daemon(link).do_action("start"))
        pid = pid_in(link)
    else:
        launch(python_daemon_start(link))
        time.sleep(0.5)
        pid = pid_in(link)
    with open(victim) as f:
        facts["symlink_target_untouched"] = f.read() == "precious\n"
    for leftover in daemons_of_this_probe():
        os.kill(leftover, signal.SIGTERM)
        wait_gone(leftover)
    emit(**facts)


def main():
    action = sys.argv[1]
    if action == "spawn":
        calls, rounds = int(sys.argv[2]), int(sys.argv[3])
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(calls):
                subprocess.run(["/bin/true"], stdin=subprocess.DEVNULL, capture_output=True, check=True)
            emit(us=(time.perf_counter() - t0) * 1e6 / calls)
    elif action == "cycle":
        library, count, directory = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        pidfile = os.path.join(directory, f"{library}-cycle.pid")
        for _ in range(count):
            start, stop = start_stop(library, pidfile)
            emit(start=start, stop=stop)
    elif action == "probe":
        probe(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
