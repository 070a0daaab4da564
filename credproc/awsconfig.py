"""Point an AWS profile at quilt-credproc by editing the AWS config file one line at a time.

configparser cannot do this: it writes the whole file back, dropping comments, spacing and key
case. So this module reads lines the way botocore's RawConfigParser does (same headers, same
`key = value` and `key: value`, same rule for indented continuation lines, `#` and `;` comments)
and replaces, or inserts, only the lines it owns; every other byte is written back as it was.

It refuses, and leaves the file untouched, when it cannot tell what the edit would mean: text
before the first header, a second section or an oddly spaced header for the target profile, and a
repeated key or a line that is not `key = value` inside the target section. A repeated key or
section elsewhere is left alone: the file is the user's, botocore names such lines itself, and
which copy to keep is not ours to guess.
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import stat
import tempfile
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from credproc.errors import AwsConfigError

# Universal newlines, as configparser sees the file: \r\n, \r and \n all end a line.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_HEADER = re.compile(r"\[(?P<name>.+)\]")
_SETTING = re.compile(r"(?P<key>.*?)\s*[=:]\s*(?P<value>.*)")
# botocore splits headers with shlex, so a name with spaces, quotes or brackets would not survive.
_PROFILE_NAME = re.compile(r"[^\s\[\]\"'\\]+")
_KEY = re.compile(r"[a-z0-9_]+")

_Kind = Literal["blank", "header", "setting", "more", "other"]


@dataclass(frozen=True)
class Profile:
    """A profile as the AWS tools see it; a key with an indented block maps to its first line."""

    name: str
    settings: dict[str, str]


@dataclass(frozen=True)
class _Line:
    text: str  # without its line ending
    ending: str
    kind: _Kind = "blank"  # blank also covers comments; "more" continues the setting above
    name: str = ""  # a header's text between the brackets, or a setting's lowercased key
    value: str = ""


@dataclass(frozen=True)
class _Section:
    header: int  # index of the header line
    end: int  # index one past its last line


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file the AWS tools read: $AWS_CONFIG_FILE, else ~/.aws/config."""
    value = (os.environ if environ is None else environ).get("AWS_CONFIG_FILE")
    return Path(value or "~/.aws/config").expanduser()


def section_name(profile: str) -> str:
    return "default" if profile == "default" else f"profile {profile}"


def set_profile(
    path: Path,
    profile: str,
    settings: Mapping[str, str],
    *,
    keep_existing: Collection[str] = ("region",),
) -> None:
    """Write `settings` into the profile's section; keys in `keep_existing` only if missing."""
    _check_request(path, profile, settings)
    data, mode = _read(path)
    bom, text = _decode(data or b"", path)
    updated = bom + _edit(text, profile, settings, keep_existing, path).encode("utf-8")
    if updated != data:  # an unchanged file is not rewritten, so its mtime tells the truth
        _write(path, updated, mode)


def check_editable(path: Path, profile: str, settings: Mapping[str, str]) -> None:
    """Raise now what set_profile would raise, so a login is not spent on a file we can't edit."""
    _check_request(path, profile, settings)
    data, _ = _read(path)
    _edit(_decode(data or b"", path)[1], profile, settings, (), path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AwsConfigError(f"cannot write {path}: no permission to write in {folder}")


def read_profiles(path: Path) -> list[Profile]:
    """Every [default] and [profile NAME] section, in file order; a missing file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AwsConfigError(f"cannot read {path}: {_reason(exc)}") from exc
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in _parse(_decode(data, path)[1]):
        if line.kind == "header":
            name = _profile_of(line.name)
            current = None if name is None else found.setdefault(name, {})
        elif line.kind == "setting" and current is not None:
            current[line.name] = line.value
    return [Profile(name, settings) for name, settings in found.items()]


def get_profile(path: Path, profile: str) -> Profile | None:
    return next((found for found in read_profiles(path) if found.name == profile), None)


def _check_request(path: Path, profile: str, settings: Mapping[str, str]) -> None:
    if not _PROFILE_NAME.fullmatch(profile):
        raise AwsConfigError(
            f"profile name {profile!r} cannot go into {path}: "
            "use a name without spaces, brackets, quotes or backslashes"
        )
    for key, value in settings.items():
        if not _KEY.fullmatch(key):
            raise AwsConfigError(f"{key!r} is not a setting name that {path} can hold")
        if "\n" in value or "\r" in value:
            raise AwsConfigError(f"the value for {key} has a line break; {path} needs one line")


def _read(path: Path) -> tuple[bytes | None, int]:
    """The file's bytes (None if it does not exist yet) and the mode its new version gets."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None, 0o600
    except OSError as exc:
        raise AwsConfigError(f"cannot read {path}: {_reason(exc)}") from exc
    # Replacing a link would cut it off from the file it points to (often kept in a dotfiles repo).
    if stat.S_ISLNK(info.st_mode):
        raise AwsConfigError(
            f"{path} is a symbolic link; set AWS_CONFIG_FILE={os.path.realpath(path)} and run again"
        )
    if not stat.S_ISREG(info.st_mode):
        raise AwsConfigError(f"{path} is not a regular file; move it away or set AWS_CONFIG_FILE")
    try:
        return path.read_bytes(), stat.S_IMODE(info.st_mode)
    except OSError as exc:
        raise AwsConfigError(f"cannot read {path}: {_reason(exc)}; check its permissions") from exc


def _decode(data: bytes, path: Path) -> tuple[bytes, str]:
    """The byte order mark (kept aside so it is written back) and the text after it."""
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        return bom, data[len(bom) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start + len(bom)
        raise AwsConfigError(f"{path} is not UTF-8 (byte {position}); save it as UTF-8") from exc


def _parse(text: str) -> list[_Line]:
    """Split `text` into lines and tell what each one is, by RawConfigParser's rules."""
    lines: list[_Line] = []
    indent, after_setting = 0, False
    for raw in _LINES.findall(text):
        body = raw.rstrip("\r\n")
        line = _Line(body, raw[len(body) :])
        stripped = body.strip()
        depth = len(body) - len(body.lstrip())
        if not stripped or stripped[0] in "#;":
            lines.append(line)
        elif after_setting and depth > indent:
            lines.append(replace(line, kind="more"))
        else:
            indent = depth
            line = _classify(line, stripped)
            lines.append(line)
            # configparser keeps the current key across a malformed line, so continuations do too
            after_setting = line.kind == "setting" or (after_setting and line.kind == "other")
    return lines


def _classify(line: _Line, stripped: str) -> _Line:
    header = _HEADER.match(stripped)
    if header:
        return replace(line, kind="header", name=header["name"])
    setting = _SETTING.match(stripped)
    if setting and setting["key"]:
        return replace(line, kind="setting", name=setting["key"].lower(), value=setting["value"])
    return replace(line, kind="other")


def _profile_of(header: str) -> str | None:
    """The profile a header names, read as botocore reads it (shlex, so quotes count)."""
    if header == "default":
        return "default"
    if not header.startswith("profile"):
        return None
    try:
        words = shlex.split(header)
    except ValueError:
        return None
    return words[1] if len(words) == 2 and words[0] == "profile" else None


def _edit(
    text: str,
    profile: str,
    settings: Mapping[str, str],
    keep_existing: Collection[str],
    path: Path,
) -> str:
    lines = _parse(text)
    _check_start(lines, path)
    counts = Counter(line.ending for line in lines if line.ending)
    ending = counts.most_common(1)[0][0] if counts else "\n"
    # A file without a final line break keeps ending without one, whatever its last line now is.
    open_end = bool(lines) and not lines[-1].ending
    if open_end:
        lines[-1] = replace(lines[-1], ending=ending)
    out = [line.text + line.ending for line in lines]
    section = _target_section(lines, profile, path)
    if section is None:
        out += _new_section(lines, profile, settings, ending)
    else:
        for span, new in _changes(lines, section, settings, keep_existing, ending, path):
            out[span.start : span.stop] = new
    if open_end:
        out[-1] = out[-1].rstrip("\r\n")
    return "".join(out)


def _check_start(lines: list[_Line], path: Path) -> None:
    for number, line in enumerate(lines, start=1):
        if line.kind == "header":
            return
        if line.kind != "blank":
            raise AwsConfigError(
                f"{path} line {number}: text before the first [section] header; "
                "move it into a section or comment it out with #"
            )


def _target_section(lines: list[_Line], profile: str, path: Path) -> _Section | None:
    """The profile's one section; a header with odd spacing or a second section is refused."""
    starts = [index for index, line in enumerate(lines) if line.kind == "header"]
    ends = [*starts[1:], len(lines)]
    found = [
        _Section(start, end)
        for start, end in zip(starts, ends)
        if _profile_of(lines[start].name.strip()) == profile
    ]
    wanted = section_name(profile)
    for section in found:
        if lines[section.header].name not in (wanted, f"profile {profile}"):
            raise AwsConfigError(
                f"{path} line {section.header + 1}: the header [{lines[section.header].name}] "
                f"is ambiguous; write it as [{wanted}]"
            )
    if len(found) > 1:
        raise AwsConfigError(
            f"{path} lines {found[0].header + 1} and {found[1].header + 1}: profile {profile} "
            "has two sections; merge them into one"
        )
    return found[0] if found else None


def _new_section(
    lines: list[_Line], profile: str, settings: Mapping[str, str], ending: str
) -> list[str]:
    new = [f"[{section_name(profile)}]{ending}"]
    new += [f"{key} = {value}{ending}" for key, value in settings.items()]
    if lines and lines[-1].text.strip():
        new.insert(0, ending)  # a blank line keeps the new section apart from the one above
    return new


def _changes(
    lines: list[_Line],
    section: _Section,
    settings: Mapping[str, str],
    keep_existing: Collection[str],
    ending: str,
    path: Path,
) -> list[tuple[range, list[str]]]:
    """The spans of old lines to replace and their new lines, last span first."""
    existing = _settings_of(lines, section, path)
    changes: list[tuple[range, list[str]]] = []
    added: list[str] = []
    for key, value in settings.items():
        span = existing.get(key)
        if span is None:
            added.append(f"{key} = {value}{ending}")
        elif key not in keep_existing and not (len(span) == 1 and lines[span[0]].value == value):
            first = lines[span[0]]
            # The old indent stays: indented keys below would otherwise become its continuation.
            indent = first.text[: len(first.text) - len(first.text.lstrip())]
            changes.append((span, [f"{indent}{key} = {value}{first.ending}"]))
    end = max((span.stop for span in existing.values()), default=section.header + 1)
    changes.append((range(end, end), added))
    return sorted(changes, key=lambda change: change[0].start, reverse=True)


def _settings_of(lines: list[_Line], section: _Section, path: Path) -> dict[str, range]:
    """Each key of the section and the lines it spans, its indented block included."""
    found: dict[str, range] = {}
    where = f"[{lines[section.header].name}]"
    for index in range(section.header + 1, section.end):
        line = lines[index]
        if line.kind == "other":
            raise AwsConfigError(
                f"{path} line {index + 1}: not a 'key = value' line in {where}; fix or remove it"
            )
        if line.kind != "setting":
            continue
        if line.name in found:
            raise AwsConfigError(
                f"{path} line {index + 1}: {line.name} is set twice in {where} (also line "
                f"{found[line.name][0] + 1}); delete one of them"
            )
        found[line.name] = range(index, _block_end(lines, index))
    return found


def _block_end(lines: list[_Line], start: int) -> int:
    """One past the last continuation line of the setting at `start`."""
    end = start + 1
    for index in range(start + 1, len(lines)):
        if lines[index].kind == "more":
            end = index + 1
        elif lines[index].kind != "blank":
            break
    return end


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` in one step: a crash leaves either the old file or the new one."""
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise AwsConfigError(_cannot_write(path, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temp).replace(path)
    except BaseException as exc:
        # Even Ctrl-C must not leave a stray copy of the config next to it.
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise AwsConfigError(_cannot_write(path, exc)) from exc
        raise


def _cannot_write(path: Path, exc: OSError) -> str:
    return f"cannot write {path}: {_reason(exc)}; check that you may write to {path.parent}"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
