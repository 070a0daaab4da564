"""Point an AWS profile at quilt-credproc by editing the AWS config file one line at a time.

configparser cannot do this: it writes the whole file back, dropping comments, spacing and key
case. So this module reads lines the way botocore's RawConfigParser does (same headers, same
`key = value` and `key: value`, same rule for indented continuation lines, `#` and `;` comments)
and replaces, or inserts, only the lines it owns; every other byte is written back as it was.

It refuses, and leaves the file untouched, any file botocore refuses to read, since no AWS tool
could then use the profile we write, wherever the fault is: a byte order mark, text before the
first header, a section given twice (headers compare as written; only [DEFAULT] may repeat), a
key given twice in one section (keys compare lowercased), a line that is neither `key = value`
nor `key: value`, a `= value` with no key, and an indented block under `key =` with a line that
is not `name = value` (under a [DEFAULT] key, only once a section inherits it: the new section
of ours counts). It also refuses what botocore reads but we cannot edit without guessing: an
oddly spaced or quoted header for the target profile, or two sections that both name it, such
as [default] and [profile default].
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shlex
import stat
import tempfile
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from credproc.errors import AwsConfigError, InvalidProfileError

# Universal newlines, as configparser sees the file: \r\n, \r and \n all end a line.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_HEADER = re.compile(r"\[(?P<name>.+)\]")
_SETTING = re.compile(r"(?P<key>.*?)\s*[=:]\s*(?P<value>.*)")
# botocore splits headers with shlex, so a name with spaces, quotes or brackets would not survive.
_PROFILE_NAME = re.compile(r"[^\s\[\]\"'\\]+")
_KEY = re.compile(r"[a-z0-9_]+")
# configparser's section whose keys every other section inherits; it alone may appear twice.
_DEFAULTS = "DEFAULT"
_AS_IT_IS = "so the AWS tools cannot read the file as it is"

_Kind = Literal["blank", "header", "setting", "more", "unnamed", "other"]


@dataclass(frozen=True)
class Profile:
    """A profile as the AWS tools see it; a key with an indented block maps to its first line."""

    name: str
    settings: dict[str, str]


@dataclass(frozen=True)
class _Line:
    text: str  # without its line ending
    ending: str
    # blank also covers comments; "more" continues the setting above; "unnamed" is `= value`
    kind: _Kind = "blank"
    name: str = ""  # a header's text between the brackets, or a setting's lowercased key
    value: str = ""


@dataclass(frozen=True)
class _Section:
    header: int  # index of the header line
    end: int  # index one past its last line


@dataclass(frozen=True)
class _Reading:
    """What botocore's parser makes of a file; a problem is (line index, where and what, fix)."""

    problems: list[tuple[int, str, str]] = field(default_factory=list)
    headers: dict[str, int] = field(default_factory=dict)  # section -> its first header's index
    keys: dict[str, dict[str, int]] = field(default_factory=dict)  # section -> key -> line index
    blocks: list[tuple[int, str, str]] = field(default_factory=list)  # bad block line, section, key


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file the AWS tools read: $AWS_CONFIG_FILE, else ~/.aws/config."""
    value = (os.environ if environ is None else environ).get("AWS_CONFIG_FILE")
    return Path(value or "~/.aws/config").expanduser()


def credentials_path(environ: Mapping[str, str] | None = None) -> Path:
    """The shared credentials file: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials."""
    value = (os.environ if environ is None else environ).get("AWS_SHARED_CREDENTIALS_FILE")
    return Path(value or "~/.aws/credentials").expanduser()


def has_static_keys(path: Path, profile: str) -> bool:
    """Whether the credentials file gives `profile` keys of its own, which every SDK prefers
    to a credential_process. Its sections are bare profile names, [default] included."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False
        text = _decode(path.read_bytes(), path)[1]
    except (OSError, AwsConfigError):
        return False  # a file the SDKs cannot read gives them no keys either
    section = None
    for line in _parse(text):
        if line.kind == "header":
            section = line.name.strip()
        elif line.kind == "setting" and section == profile and line.name == "aws_access_key_id":
            return True
    return False


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
    updated = _edit(_text_to_edit(data, path), profile, settings, keep_existing, path).encode()
    if updated != data:  # an unchanged file is not rewritten, so its mtime tells the truth
        _write(path, updated, mode)


def check_editable(path: Path, profile: str, settings: Mapping[str, str]) -> None:
    """Raise now what set_profile would raise, so a login is not spent on a file we can't edit."""
    _check_request(path, profile, settings)
    data, _ = _read(path)
    _edit(_text_to_edit(data, path), profile, settings, (), path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AwsConfigError(f"cannot write {path}: no permission to write in {folder}")
    if data is not None:
        # Opened for writing, never written: the file may still refuse what its mode allows
        # (chattr +i or +a), and the rename that replaces it would fail the same way.
        try:
            os.close(os.open(path, os.O_WRONLY))
        except OSError as exc:
            raise AwsConfigError(f"cannot write {path}: {_reason(exc)}") from exc


def read_profiles(path: Path) -> list[Profile]:
    """Every [default] and [profile NAME] section, in file order; a missing file has none."""
    try:
        # Process mode reads this too: a FIFO here must be refused, not waited on for ever.
        if not stat.S_ISREG(path.stat().st_mode):
            raise AwsConfigError(f"{path} is not a regular file")
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


def check_profile_name(path: Path, profile: str) -> None:
    """Refuse a name that no section of `path` could hold, as setup would."""
    if not profile:
        raise InvalidProfileError("the profile name is empty")
    if not _PROFILE_NAME.fullmatch(profile) or profile.startswith("-"):
        raise InvalidProfileError(
            f"profile name {profile!r} cannot go into {path}: use a name without spaces, "
            "brackets, quotes or backslashes, that does not start with -"
        )


def _check_request(path: Path, profile: str, settings: Mapping[str, str]) -> None:
    check_profile_name(path, profile)
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
        data = path.read_bytes()
    except OSError as exc:
        raise AwsConfigError(f"cannot read {path}: {_reason(exc)}; check its permissions") from exc
    # The rename would get past a write protection the user set on purpose.
    if not info.st_mode & stat.S_IWUSR:
        raise AwsConfigError(f"{path} is read-only; to let setup edit it, run: chmod u+w {path}")
    return data, stat.S_IMODE(info.st_mode)


def _decode(data: bytes, path: Path) -> tuple[bytes, str]:
    """The byte order mark, if any (reading skips it, editing refuses it), and the text after."""
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        return bom, data[len(bom) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start + len(bom)
        raise AwsConfigError(f"{path} is not UTF-8 (byte {position}); save it as UTF-8") from exc


def _text_to_edit(data: bytes | None, path: Path) -> str:
    bom, text = _decode(data or b"", path)
    # botocore decodes with the locale's codec, never utf-8-sig, so the mark hides the first header.
    if bom:
        raise AwsConfigError(
            f"{path} line 1: the file starts with a byte order mark, {_AS_IT_IS}; "
            "save it as UTF-8 without one"
        )
    return text


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
            # configparser keeps the current key across a malformed line, but `= value` clears it
            after_setting = line.kind == "setting" or (after_setting and line.kind == "other")
    return lines


def _classify(line: _Line, stripped: str) -> _Line:
    header = _HEADER.match(stripped)
    if header:
        return replace(line, kind="header", name=header["name"])
    setting = _SETTING.match(stripped)
    if setting is None:
        return replace(line, kind="other")
    if not setting["key"]:
        return replace(line, kind="unnamed")
    return replace(line, kind="setting", name=setting["key"].lower(), value=setting["value"])


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
    found = _sections_naming(lines, profile)
    target = lines[found[0].header].name if found else section_name(profile)
    _check_readable(lines, target, settings.keys(), path)
    section = _one_section(lines, found, profile, path)
    counts = Counter(line.ending for line in lines if line.ending)
    ending = counts.most_common(1)[0][0] if counts else "\n"
    # A file without a final line break keeps ending without one, whatever its last line now is.
    open_end = bool(lines) and not lines[-1].ending
    if open_end:
        lines[-1] = replace(lines[-1], ending=ending)
    out = [line.text + line.ending for line in lines]
    if section is None:
        out += _new_section(lines, profile, settings, ending)
    else:
        for span, new in _changes(lines, section, settings, keep_existing, ending):
            out[span.start : span.stop] = new
    if open_end:
        out[-1] = out[-1].rstrip("\r\n")
    return "".join(out)


def _check_readable(lines: list[_Line], target: str, added: Collection[str], path: Path) -> None:
    """Refuse what botocore refuses now, or would once section `target` holds the `added` keys."""
    reading = _read_like_botocore(lines)
    problems = reading.problems + _block_problems(reading, {})
    outcome = _AS_IT_IS
    if not problems:
        # Every section inherits [DEFAULT]'s keys, so a new section can expose a bad block there.
        problems = _block_problems(reading, {target: added})
        outcome = f"so the AWS tools could not read the file once [{target}] is added"
    if problems:
        _, where, fix = min(problems)
        raise AwsConfigError(f"{path} {where}, {outcome}; {fix}")


def _read_like_botocore(lines: list[_Line]) -> _Reading:
    """RawConfigParser(strict=True) read: its errors, each section's keys and the bad blocks."""
    reading = _Reading()
    section: str | None = None
    for index, line in enumerate(lines):
        if line.kind == "header":
            section = line.name
            _read_header(reading, index, section)
        elif line.kind in ("blank", "more"):
            continue
        elif line.kind == "setting" and section is not None:
            _read_setting(reading, lines, index, section)
        else:
            reading.problems.append(_unreadable(line.kind, index, section))
    return reading


def _read_header(reading: _Reading, index: int, section: str) -> None:
    # Headers compare as written: [profile  a] and [profile a] are two sections to configparser.
    first = reading.headers.setdefault(section, index)
    if first != index and section != _DEFAULTS:
        where = f"lines {first + 1} and {index + 1}: [{section}] appears twice"
        reading.problems.append((index, where, "merge the two sections into one"))
    reading.keys.setdefault(section, {})


def _read_setting(reading: _Reading, lines: list[_Line], index: int, section: str) -> None:
    line, seen = lines[index], reading.keys[section]
    # A key is what precedes `=`; a pasted secret can land there, so only a plain name is shown.
    key = line.name if _KEY.fullmatch(line.name) else "a key"
    if line.name in seen:
        where = f"line {index + 1}: {key} is set twice in [{section}] (also line "
        reading.problems.append((index, f"{where}{seen[line.name] + 1})", "delete one of them"))
    seen.setdefault(line.name, index)
    if line.value:
        return  # botocore reads a block as name = value lines only under an empty first line
    for more in range(index + 1, _block_end(lines, index)):
        # botocore splits the joined block with str.splitlines, which also breaks at \v, \f, \x1c…
        parts = lines[more].text.strip().splitlines() if lines[more].kind == "more" else []
        if any(part.strip() and "=" not in part for part in parts):
            reading.blocks.append((more, section, key))
            return


def _unreadable(kind: _Kind, index: int, section: str | None) -> tuple[int, str, str]:
    if section is None:
        where = f"line {index + 1}: text before the first [section] header"
        return index, where, "move it into a section or comment it out with #"
    if kind == "unnamed":
        where = f"line {index + 1}: a '= value' line without a key in [{section}]"
        return index, where, "write the setting's name before the = or remove the line"
    where = f"line {index + 1}: not a 'key = value' line in [{section}]"
    return index, where, "fix it, remove it or comment it out with #"


def _block_problems(
    reading: _Reading, added: Mapping[str, Collection[str]]
) -> list[tuple[int, str, str]]:
    """The bad blocks botocore parses: every section's own, and [DEFAULT]'s a section inherits."""
    sections = {name: set(keys) for name, keys in reading.keys.items() if name != _DEFAULTS}
    for name, keys in added.items():
        sections.setdefault(name, set()).update(keys)
    problems = []
    for index, section, key in reading.blocks:
        if section != _DEFAULTS or any(key not in keys for keys in sections.values()):
            where = f"line {index + 1}: this line in the block under {key} in [{section}] has no ="
            problems.append((index, where, "write it as name = value or remove it"))
    return problems


def _sections_naming(lines: list[_Line], profile: str) -> list[_Section]:
    """Every section whose header botocore reads as the profile's, spaced oddly or not."""
    starts = [index for index, line in enumerate(lines) if line.kind == "header"]
    ends = [*starts[1:], len(lines)]
    return [
        _Section(start, end)
        for start, end in zip(starts, ends)
        if _profile_of(lines[start].name.strip()) == profile
    ]


def _one_section(
    lines: list[_Line], found: list[_Section], profile: str, path: Path
) -> _Section | None:
    """The profile's one section; a header with odd spacing or a second section is refused."""
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
) -> list[tuple[range, list[str]]]:
    """The spans of old lines to replace and their new lines, last span first."""
    existing = _settings_of(lines, section)
    changes: list[tuple[range, list[str]]] = []
    # Added keys take the next header's indent: one indented deeper would continue their value.
    after = lines[section.end].text if section.end < len(lines) else ""
    added_indent = after[: len(after) - len(after.lstrip())]
    added: list[str] = []
    for key, value in settings.items():
        span = existing.get(key)
        if span is None:
            added.append(f"{added_indent}{key} = {value}{ending}")
            continue
        alone = len(span) == 1
        # `region =` with nothing after it is no region: the AWS CLI refuses it.
        kept = key in keep_existing and not (alone and not lines[span[0]].value)
        if not kept and not (alone and lines[span[0]].value == value):
            first = lines[span[0]]
            # The old indent stays: indented keys below would otherwise become its continuation.
            indent = first.text[: len(first.text) - len(first.text.lstrip())]
            changes.append((span, [f"{indent}{key} = {value}{first.ending}"]))
    end = max((span.stop for span in existing.values()), default=section.header + 1)
    changes.append((range(end, end), added))
    return sorted(changes, key=lambda change: change[0].start, reverse=True)


def _settings_of(lines: list[_Line], section: _Section) -> dict[str, range]:
    """Each key of the section and the lines it spans, its indented block included."""
    return {
        lines[index].name: range(index, _block_end(lines, index))
        for index in range(section.header + 1, section.end)
        if lines[index].kind == "setting"
    }


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
    _remove_leftovers(path)


def _remove_leftovers(path: Path) -> None:
    """Remove the temp files of writers killed before their rename (SIGKILL, power cut).

    Setup edits under the store's editing lock, so no other writer of these names is alive.
    """
    leftover = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    with contextlib.suppress(OSError):
        for other in path.parent.iterdir():
            if leftover.fullmatch(other.name):
                other.unlink(missing_ok=True)


def _cannot_write(path: Path, exc: OSError) -> str:
    return f"cannot write {path}: {_reason(exc)}; check that you may write to {path.parent}"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
