"""How long AWS tools wait for quilt-credproc, next to a bare interpreter start (issue 4).

Run it after the README's install, from the project folder:

    make install && .venv/bin/python benchmarks/bench.py        # or: make bench

It starts the stand-in catalog from examples/ on 127.0.0.1, logs in three times in a throwaway
home folder, and times the real console script in fresh child processes. Each round runs every
command once, in an order rotated from round to round, so that a noisy machine slows all of
them alike; the targets are judged on per-round ratios and differences. `--script PATH`
measures another install, e.g. one made by pipx or uv: the bare start and the import references
then run on the interpreter named in that launcher's first line. The exit status is 1 when a
target is missed or the comparison cannot be trusted, so the script can serve as a check.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import marshal
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN_SCRIPT = os.path.join(ROOT, "examples", "standin_catalog.py")

CACHED_MAX_WALL_RATIO = 1.5
CACHED_MAX_RSS_RATIO = 1.3
REFRESH_MAX_EXTRA_MS = 60.0
# The refresh home gets credentials that are always within the helper's 20-minute margin and an
# access token within its 60-second margin, so every call renews both: the slowest refresh.
STALE_CREDENTIALS_TTL = 600
STALE_ACCESS_TOKEN_TTL = 30
FRESH_TTL = 3600
IMPORT_REFERENCE = "import requests, filelock"  # what the refresh path cannot do without
WARMUP_RUNS = 3
# Modules whose presence right after start-up means `python -c pass` here already pays for
# what the fast path avoids, which would flatter every ratio against it.
HEAVY_AT_START = ("re", "pathlib", "typing")

_PROBE = """\
import sys
at_start = sorted(sys.modules)
import json, os, site
from importlib import metadata

def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

def ours(name):
    try:
        return metadata.distribution("quilt-credproc").read_text(name)
    except metadata.PackageNotFoundError:
        return None

def editable():
    text = ours("direct_url.json")
    return bool(text and json.loads(text).get("dir_info", {}).get("editable"))

def code_pth():
    found = []
    for folder in site.getsitepackages():
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".pth"):
                with open(os.path.join(folder, name), encoding="utf-8") as file:
                    if any(line.startswith("import") for line in file):
                        found.append(name)
    return found

print(json.dumps({
    "python": sys.version.split()[0],
    "implementation": sys.implementation.name,
    "at_start": at_start,
    "pip": version("pip"),
    "boto3": version("boto3") is not None,
    "editable": editable(),
    "installer": (ours("INSTALLER") or "unknown").strip(),
    "code_pth": code_pth(),
}))
"""


@dataclass(frozen=True)
class Run:
    started_ms: float  # from the start of its batch
    ended_ms: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def wall_ms(self) -> float:
        return self.ended_ms - self.started_ms


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    env: dict[str, str]
    # (most token requests, exact credentials requests) one call may make; None: not checked.
    requests: tuple[int, int] | None = None


@dataclass
class Samples:
    runs: list[Run] = field(default_factory=list)

    def wall(self) -> list[float]:
        return [run.wall_ms for run in self.runs]

    def rss(self) -> list[float]:
        return [run.rss_mb for run in self.runs]


class BenchError(Exception):
    """Something other than speed went wrong: the benchmark cannot give a verdict."""


# -- child processes -------------------------------------------------------------------------

# A child's peak RSS as wait4 reports it also counts the memory of the process it was forked
# from (the parent's whole image, when forked with vfork or posix_spawn as subprocess does).
# So the children are forked by this small interpreter, started with -S -I, which imports
# nothing but built-in modules; the benchmark reports the floor this leaves (what `true` shows),
# well under a bare Python start. It reads batches of jobs framed by a 4-byte length, starts
# every job of a batch at once, and answers with each child's start, end, status and peak RSS.
_SPAWNER = """\
import marshal, posix, time

def read(count):
    data = b""
    while len(data) < count:
        chunk = posix.read(0, count - len(data))
        if not chunk:
            raise SystemExit(0)
        data += chunk
    return data

def start(argv, env, cwd, out, err):
    pid = posix.fork()
    if pid == 0:
        try:
            posix.chdir(cwd)
            posix.dup2(posix.open("/dev/null", posix.O_RDONLY), 0)
            for fd, name in ((1, out), (2, err)):
                flags = posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC
                posix.dup2(posix.open(name, flags, 0o600), fd)
            posix.execve(argv[0], argv, env)
        except OSError as exc:
            posix.write(2, f"cannot start {argv[0]}: {exc}\\n".encode())
        finally:
            posix._exit(127)
    return pid

while True:
    jobs = marshal.loads(read(int.from_bytes(read(4), "big")))
    first = time.perf_counter()
    started = {}
    for index, job in enumerate(jobs):
        begun = time.perf_counter() - first
        started[start(*job)] = (index, begun)
    results = [None] * len(jobs)
    while started:
        pid, status, usage = posix.wait4(-1, 0)
        index, begun = started.pop(pid)
        results[index] = (begun, time.perf_counter() - first, status, usage.ru_maxrss)
    reply = marshal.dumps(results)
    reply = len(reply).to_bytes(4, "big") + reply
    while reply:
        reply = reply[posix.write(1, reply):]
"""
# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
_RSS_PER_MB = 1024 * 1024 if sys.platform == "darwin" else 1024


class Spawner:
    """Starts children from a process small enough not to inflate their peak RSS."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-I", "-c", _SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, argv: Sequence[str], env: dict[str, str]) -> Run:
        return self.run_at_once([(argv, env)])[0]

    def run_at_once(self, jobs: Sequence[tuple[Sequence[str], dict[str, str]]]) -> list[Run]:
        """Start all `jobs` as fast as one process can fork, and wait for every one.

        Each child starts in its user's home: from the project folder, `python -c` and
        `python -m` would import the package from the current directory, not the install.
        """
        files = [
            (os.path.join(self.folder, f"{index}.out"), os.path.join(self.folder, f"{index}.err"))
            for index in range(len(jobs))
        ]
        request = marshal.dumps(
            [
                (list(argv), env, env["HOME"], out, err)
                for (argv, env), (out, err) in zip(jobs, files)
            ]
        )
        answer = self._exchange(len(request).to_bytes(4, "big") + request)
        return [
            Run(
                begun * 1000,
                ended * 1000,
                maxrss / _RSS_PER_MB,
                os.waitstatus_to_exitcode(status),
                _read(out),
                _read(err),
            )
            for (begun, ended, status, maxrss), (out, err) in zip(answer, files)
        ]

    def _exchange(self, request: bytes) -> list[tuple[float, float, int, int]]:
        pipe_in, pipe_out = self.process.stdin, self.process.stdout
        if pipe_in is None or pipe_out is None:
            raise BenchError("the spawner has no pipes")
        try:
            pipe_in.write(request)
            pipe_in.flush()
        except BrokenPipeError:
            raise BenchError("the spawner died") from None
        head = pipe_out.read(4)
        if len(head) != 4:
            raise BenchError("the spawner died")
        # The bytes come from the spawner this process started, never from outside.
        body = pipe_out.read(int.from_bytes(head, "big"))
        answer: list[tuple[float, float, int, int]] = marshal.loads(body)  # noqa: S302
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def child_env(home: str) -> dict[str, str]:
    """The environment of a user whose home is `home`, with nothing that alters start-up.

    PYTHON* variables go: PYTHONDONTWRITEBYTECODE, for one, would make every call compile
    quilt-credproc's modules from source, which no ordinary install does.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "QUILT_", "PYTHON"))
    }
    env.update(
        HOME=home,
        XDG_DATA_HOME=os.path.join(home, ".local", "share"),
        XDG_CONFIG_HOME=os.path.join(home, ".config"),
        XDG_CACHE_HOME=os.path.join(home, ".cache"),
        AWS_CONFIG_FILE=os.path.join(home, ".aws", "config"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, ".aws", "credentials"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def launcher_python(script: str) -> list[str]:
    """The interpreter, with its flags, that a console-script launcher runs."""
    with open(script, "rb") as file:
        head = file.read(512).decode("utf-8", "replace").splitlines()
    if head and head[0].startswith("#!") and "python" in head[0]:
        return head[0][2:].split()
    # pip writes a /bin/sh trampoline when the interpreter's path is long or has spaces.
    for line in head[1:3]:
        if line.startswith("'''exec' "):
            return [line.split('"')[1]]
    raise BenchError(f"cannot tell which Python {script} runs; is it a console-script launcher?")


def run_plainly(
    argv: Sequence[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run an untimed step: a login, a look at the environment."""
    return subprocess.run(
        argv, cwd=env["HOME"], env=env, input=stdin, capture_output=True, text=True, check=False
    )


# -- the stand-in catalog --------------------------------------------------------------------


class Standin:
    """examples/standin_catalog.py in its own process, so it never competes for our GIL."""

    def __init__(self, folder: str) -> None:
        state = os.path.join(folder, "standin.json")
        self.process = subprocess.Popen(
            [sys.executable, STANDIN_SCRIPT, "--state-file", state, "--lifetime", "3000"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        urls = self._wait_for(state)
        self.catalog_url: str = urls["catalog_url"]
        self.registry_url: str = urls["registry_url"]
        self._port = int(self.registry_url.rsplit(":", 1)[1])

    def _wait_for(self, state: str) -> dict[str, str]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the stand-in exited at once (status {self.process.returncode})")
            with contextlib.suppress(FileNotFoundError), open(state, encoding="utf-8") as file:
                return dict(json.load(file))
            time.sleep(0.02)
        raise BenchError("the stand-in did not start within 30 s")

    def control(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        try:
            payload = json.dumps(body or {})
            connection.request(method, f"/_standin/{action}", body=payload)
            response = connection.getresponse()
            answer = json.loads(response.read() or b"null")
        finally:
            connection.close()
        if response.status != 200:
            raise BenchError(f"the stand-in refused {action}: {answer}")
        return answer

    def counts(self) -> tuple[int, int]:
        stats = self.control("GET", "stats")
        return int(stats["token_requests"]), int(stats["credentials_requests"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def running_standin(folder: str) -> Iterator[Standin]:
    standin = Standin(folder)
    try:
        yield standin
    finally:
        standin.stop()


def log_in(standin: Standin, script: str, env: dict[str, str], *, ttl: int, token_ttl: int) -> None:
    standin.control("POST", "configure", {"credentials_ttl": ttl, "access_token_ttl": token_ttl})
    code = standin.control("POST", "code")["code"]
    argv = [script, "setup", "--catalog", standin.catalog_url, "--no-browser"]
    done = run_plainly(argv, env, stdin=code + "\n")
    if done.returncode != 0:
        raise BenchError(f"setup failed ({done.returncode}): {done.stderr.strip()}")


# -- measuring -------------------------------------------------------------------------------


def check_answer(command: Command, run: Run) -> str:
    """The AccessKeyId a credentials answer carries; BenchError if the answer is wrong."""
    if run.returncode != 0:
        raise BenchError(f"{command.name} exited {run.returncode}: {run.stderr.strip()}")
    try:
        answer = json.loads(run.stdout)
    except ValueError as exc:
        raise BenchError(f"{command.name} printed no JSON: {run.stdout[:80]!r}") from exc
    if answer.get("Version") != 1 or not answer.get("AccessKeyId"):
        raise BenchError(f"{command.name} printed a wrong answer: {sorted(answer)}")
    return str(answer["AccessKeyId"])


def measure(spawner: Spawner, command: Command, standin: Standin) -> Run:
    before = standin.counts() if command.requests is not None else (0, 0)
    run = spawner.run(command.argv, command.env)
    if command.requests is None:
        if run.returncode != 0:
            raise BenchError(f"{command.name} exited {run.returncode}: {run.stderr.strip()}")
        return run
    check_answer(command, run)
    after = standin.counts()
    tokens, creds = after[0] - before[0], after[1] - before[1]
    most_tokens, exact_creds = command.requests
    if tokens > most_tokens or creds != exact_creds:
        raise BenchError(
            f"{command.name} made {tokens} token and {creds} credentials requests; "
            f"expected at most {most_tokens} and exactly {exact_creds}"
        )
    return run


def interleave(
    spawner: Spawner, commands: list[Command], rounds: int, standin: Standin
) -> dict[str, Samples]:
    for _ in range(WARMUP_RUNS):  # writes byte-code caches, warms the page cache
        for command in commands:
            measure(spawner, command, standin)
    samples = {command.name: Samples() for command in commands}
    for index in range(rounds):
        shift = index % len(commands)
        for command in commands[shift:] + commands[:shift]:
            samples[command.name].runs.append(measure(spawner, command, standin))
    return samples


@dataclass(frozen=True)
class Burst:
    processes: int
    total_ms: float
    slowest_ms: float
    failures: list[str]
    distinct_answers: int
    tokens: int
    credentials: int


def burst(
    spawner: Spawner, argv: list[str], env: dict[str, str], count: int, standin: Standin
) -> Burst:
    """`count` processes started at once on stale credentials, timed from the first start."""
    standin.control("POST", "reset_stats")
    runs = spawner.run_at_once([(argv, env)] * count)
    tokens, creds = standin.counts()
    failures = [f"exit {run.returncode}: {run.stderr.strip()}" for run in runs if run.returncode]
    return Burst(
        processes=count,
        total_ms=max(run.ended_ms for run in runs),
        slowest_ms=max(run.wall_ms for run in runs),
        failures=failures,
        distinct_answers=len({run.stdout for run in runs}),
        tokens=tokens,
        credentials=creds,
    )


# -- verdicts and the table ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    what: str
    value: str
    limit: str
    passed: bool

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        return f"  {mark}  {self.what:<46} {self.value:>10}   limit {self.limit}"


def paired(a: Samples, b: Samples, how: str) -> float:
    """Median over rounds of a/b ("ratio") or a-b ("diff"), pairing runs of one round."""
    pairs = zip(a.runs, b.runs)
    if how == "ratio":
        return statistics.median(x.wall_ms / y.wall_ms for x, y in pairs)
    if how == "rss":
        return statistics.median(x.rss_mb / y.rss_mb for x, y in pairs)
    return statistics.median(x.wall_ms - y.wall_ms for x, y in pairs)


def verdicts(samples: dict[str, Samples], shot: Burst) -> list[Verdict]:
    bare, cached = samples["bare start"], samples["cached"]
    wall = paired(cached, bare, "ratio")
    rss = paired(cached, bare, "rss")
    extra = paired(samples["refresh"], samples["import requests, filelock"], "diff")
    concurrent = (
        not shot.failures
        and shot.distinct_answers == 1
        and (shot.tokens, shot.credentials) == (1, 1)
    )
    return [
        Verdict(
            "cached / bare, wall (paired median)",
            f"{wall:.2f}x",
            f"{CACHED_MAX_WALL_RATIO}x",
            wall <= CACHED_MAX_WALL_RATIO,
        ),
        Verdict(
            "cached / bare, peak RSS (paired median)",
            f"{rss:.2f}x",
            f"{CACHED_MAX_RSS_RATIO}x",
            rss <= CACHED_MAX_RSS_RATIO,
        ),
        Verdict(
            "refresh - import requests,filelock (paired median)",
            f"{extra:+.1f} ms",
            f"+{REFRESH_MAX_EXTRA_MS:.0f} ms",
            extra <= REFRESH_MAX_EXTRA_MS,
        ),
        Verdict(
            f"{shot.processes} at once: ok, answers, token+creds requests",
            f"{shot.processes - len(shot.failures)}, {shot.distinct_answers}, "
            f"{shot.tokens}+{shot.credentials}",
            f"{shot.processes}, 1, 1+1",
            concurrent,
        ),
    ]


def table(samples: dict[str, Samples]) -> list[str]:
    bare = statistics.median(samples["bare start"].wall())
    lines = [
        f"  {'command':<28} {'median':>8} {'min':>8} {'max':>8} {'peak RSS':>9} {'vs bare':>8}",
        f"  {'':<28} {'ms':>8} {'ms':>8} {'ms':>8} {'MB':>9} {'':>8}",
    ]
    for name, group in samples.items():
        wall = group.wall()
        lines.append(
            f"  {name:<28} {statistics.median(wall):8.1f} {min(wall):8.1f} {max(wall):8.1f} "
            f"{statistics.median(group.rss()):9.1f} {statistics.median(wall) / bare:7.2f}x"
        )
    return lines


def launcher_advice(script: str) -> list[str]:
    """What makes this install slower than a current one; the numbers still hold for it."""
    with open(script, "rb") as file:
        if b"import re" not in file.read(2048):
            return []
    return [
        f"{script} imports `re` before quilt-credproc runs, as launchers written by pip older "
        "than 25.2 do: reinstall with a current pip, pipx or uv to save that on every call"
    ]


def baseline_flaws(probe: dict[str, Any]) -> list[str]:
    """Reasons `python -c pass` here is no fair floor: each makes the verdict untrustworthy."""
    heavy = [name for name in HEAVY_AT_START if name in probe["at_start"]]
    if not heavy:
        return []
    culprits = ", ".join(probe["code_pth"]) or "sitecustomize or usercustomize"
    return [
        f"a bare start of this Python already imports {', '.join(heavy)} (.pth files that run "
        f"code: {culprits}), so the floor is raised and every ratio flattered. A setuptools "
        "editable install of a flat layout does this through its import finder; measure a "
        "non-editable install with --script, or make the editable install a plain path .pth"
    ]


def machine(probe: dict[str, Any], python: list[str], script: str) -> list[str]:
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as file:
        model = next((line.split(":", 1)[1].strip() for line in file if "model name" in line), "")
    with open(script, "rb") as file:
        imports_re = b"import re" in file.read(2048)
    return [
        f"  python    {probe['implementation']} {probe['python']}: {' '.join(python)}",
        f"  launcher  written by {probe['installer']} (pip in that environment: "
        f"{probe['pip'] or 'none'}); imports re: {'yes' if imports_re else 'no'}; "
        f"editable install: {'yes' if probe['editable'] else 'no'}",
        f"  machine   {platform.system()} {platform.machine()}, {usable} of {cpus} CPUs usable"
        + (f", {model}" if model else ""),
    ]


# -- putting it together ---------------------------------------------------------------------


def probe_environment(python: list[str], home: str) -> dict[str, Any]:
    done = run_plainly([*python, "-c", _PROBE], child_env(home))
    if done.returncode != 0:
        raise BenchError(f"cannot inspect {python[0]}: {done.stderr.strip()}")
    return dict(json.loads(done.stdout))


def build_commands(
    standin: Standin, script: str, python: list[str], probe: dict[str, Any], homes: list[str]
) -> list[Command]:
    fresh, stale = child_env(homes[0]), child_env(homes[1])
    registry = ["--registry", standin.registry_url]
    module = [*python, "-m", "credproc", *registry]
    commands = [
        Command("bare start", [*python, "-c", "pass"], fresh),
        Command("cached", [script, *registry], fresh, requests=(0, 0)),
        Command("cached, python -m credproc", module, fresh, requests=(0, 0)),
        Command("refresh", [script, *registry], stale, requests=(1, 1)),
        Command("import requests, filelock", [*python, "-c", IMPORT_REFERENCE], fresh),
    ]
    # boto3 is a reference only: an install of quilt-credproc alone does not have it.
    boto3 = ["-c", "import boto3"]
    if probe["boto3"]:
        commands.append(Command("import boto3", [*python, *boto3], fresh))
    elif run_plainly([sys.executable, *boto3], fresh).returncode == 0:
        commands.append(Command("import boto3 (bench's Python)", [sys.executable, *boto3], fresh))
    return commands


def run_benchmark(options: argparse.Namespace) -> int:
    script = os.path.abspath(options.script)
    python = launcher_python(script)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="credproc-bench-"))
        homes = [os.path.join(folder, name) for name in ("fresh", "stale", "burst", "output")]
        for home in homes:
            os.makedirs(home)
        probe = probe_environment(python, homes[0])
        standin = stack.enter_context(running_standin(folder))
        spawner = Spawner(homes[3])
        stack.callback(spawner.close)
        log_in(standin, script, child_env(homes[0]), ttl=FRESH_TTL, token_ttl=FRESH_TTL)
        for home in homes[1:3]:
            stale = {"ttl": STALE_CREDENTIALS_TTL, "token_ttl": STALE_ACCESS_TOKEN_TTL}
            log_in(standin, script, child_env(home), **stale)
        floor = spawner.run([shutil.which("true") or "/bin/true"], child_env(homes[0])).rss_mb
        commands = build_commands(standin, script, python, probe, homes)
        samples = interleave(spawner, commands, options.rounds, standin)
        # The one refresh must leave credentials that the other processes find fresh.
        standin.control("POST", "configure", {"credentials_ttl": FRESH_TTL})
        argv = [script, "--registry", standin.registry_url]
        shot = burst(spawner, argv, child_env(homes[2]), options.concurrent, standin)
    return report(samples, shot, probe, script, python, options.rounds, floor)


def report(
    samples: dict[str, Samples],
    shot: Burst,
    probe: dict[str, Any],
    script: str,
    python: list[str],
    rounds: int,
    floor_mb: float,
) -> int:
    results = verdicts(samples, shot)
    flaws = baseline_flaws(probe)
    if floor_mb >= 0.9 * statistics.median(samples["bare start"].rss()):
        flaws.append(f"the spawner's own {floor_mb:.1f} MB hide the children's peak RSS")
    print(f"quilt-credproc benchmark: {script}, {rounds} interleaved rounds")
    print("\n".join(machine(probe, python, script)))
    print(f"  RSS       peak of each child, from wait4; the floor (`true`) is {floor_mb:.1f} MB")
    print()
    print("\n".join(table(samples)))
    print()
    print(
        f"  {shot.processes} processes at once on stale credentials: all done in "
        f"{shot.total_ms:.0f} ms, slowest process {shot.slowest_ms:.0f} ms, "
        f"{shot.distinct_answers} distinct answer(s)"
    )
    print()
    print("\n".join(result.line() for result in results))
    for note in launcher_advice(script):
        print("\n" + textwrap.fill(note, 98, initial_indent="  NOTE: ", subsequent_indent="  "))
    for flaw in flaws:
        print("\n" + textwrap.fill(flaw, 98, initial_indent="  INVALID: ", subsequent_indent="  "))
    passed = all(result.passed for result in results) and not flaws
    print(f"\n  {'all targets met' if passed else 'NOT MET'}")
    return 0 if passed else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (40)")
    parser.add_argument("--concurrent", type=int, default=100, help="processes at once (100)")
    parser.add_argument(
        "--script",
        default=os.path.join(os.path.dirname(sys.executable), "quilt-credproc"),
        help="the installed quilt-credproc to measure (default: next to this Python)",
    )
    options = parser.parse_args(argv)
    if options.rounds < 1 or options.concurrent < 2:
        parser.error("--rounds must be at least 1 and --concurrent at least 2")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        return run_benchmark(options)
    except (BenchError, OSError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
