from __future__ import annotations

import codecs
import configparser
import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from botocore.configloader import load_config, raw_config_parse
from botocore.exceptions import ConfigParseError
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from credproc.awsconfig import (
    Profile,
    config_path,
    get_profile,
    read_profiles,
    section_name,
    set_profile,
)
from credproc.errors import AwsConfigError

CP = '"/path with space/quilt-credproc" --registry https://registry.example.com'
SETTINGS = {"credential_process": CP, "region": "us-east-1"}
NEW = f"[profile quilt]\ncredential_process = {CP}\nregion = us-east-1\n"

OTHERS = """\
# my AWS config ; with notes
; another comment style

[default]\t
region = eu-west-1 # inline comment stays
output=json
s3 =
  max_concurrent_requests = 20
    signature_version = s3v4

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1

[services local]
s3 =
  endpoint_url = http://localhost:9000

[plugins]
cli_legacy_plugin_path = /opt/plugins
"""

# (profile, file before, file after): each `after` spells out every byte, so anything we touched
# beyond the intended lines shows up as a difference.
CASES = [
    pytest.param("quilt", "", NEW, id="empty-file"),
    pytest.param("quilt", OTHERS, OTHERS + "\n" + NEW, id="new-section-after-others"),
    pytest.param(
        "quilt",
        "[profile quilt-dev]\nregion = x\n[profile quiltx]\n",
        "[profile quilt-dev]\nregion = x\n[profile quiltx]\n\n" + NEW,
        id="similar-names-untouched",
    ),
    pytest.param(
        "quilt",
        "[default]\nregion = eu-west-1\n\n[profile quilt]\n# written by quilt-credproc\n"
        "credential_process = /old/quilt-credproc --registry https://old\n"
        "region = eu-central-1\noutput = json ; inline\n\n[profile other]\nregion = us-west-2\n",
        "[default]\nregion = eu-west-1\n\n[profile quilt]\n# written by quilt-credproc\n"
        f"credential_process = {CP}\n"
        "region = eu-central-1\noutput = json ; inline\n\n[profile other]\nregion = us-west-2\n",
        id="update-in-place-region-kept",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\ncredential_process = /old\n\n# about next\n[profile next]\nregion = x\n",
        f"[profile quilt]\ncredential_process = {CP}\nregion = us-east-1\n\n# about next\n"
        "[profile next]\nregion = x\n",
        id="region-added-after-last-setting",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\n# nothing yet\n\n[default]\nregion = x\n",
        f"[profile quilt]\ncredential_process = {CP}\nregion = us-east-1\n# nothing yet\n\n"
        "[default]\nregion = x\n",
        id="empty-section",
    ),
    pytest.param(
        "quilt",
        "[profile quilt] ; managed by hand\nregion = x\n",
        f"[profile quilt] ; managed by hand\nregion = x\ncredential_process = {CP}\n",
        id="header-with-comment",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\nregion =\noutput = json\n",
        f"[profile quilt]\nregion = us-east-1\noutput = json\ncredential_process = {CP}\n",
        id="empty-region-is-no-region",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\ns3 =\n  max_concurrent_requests = 20\n  # tuned\n"
        "  addressing_style = path\ncredential_process = /old\n",
        "[profile quilt]\ns3 =\n  max_concurrent_requests = 20\n  # tuned\n"
        f"  addressing_style = path\ncredential_process = {CP}\nregion = us-east-1\n",
        id="nested-block-before",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\ncredential_process = /old\ns3 =\n  max_concurrent_requests = 20\n\n"
        "  addressing_style = path\n\n[default]\n",
        f"[profile quilt]\ncredential_process = {CP}\ns3 =\n  max_concurrent_requests = 20\n\n"
        "  addressing_style = path\nregion = us-east-1\n\n[default]\n",
        id="nested-block-last",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\ncredential_process =\n  command = /old\n  # note\n\n  flag = 1\n"
        "region = eu-west-1\n",
        f"[profile quilt]\ncredential_process = {CP}\nregion = eu-west-1\n",
        id="replace-key-with-nested-block",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\n  credential_process = /old\n  output = json\n",
        f"[profile quilt]\n  credential_process = {CP}\n  output = json\nregion = us-east-1\n",
        id="indented-keys-keep-indent",
    ),
    pytest.param(
        "quilt",
        f"[profile quilt]\ncredential_process  =  {CP}\nregion:us-west-2\n",
        f"[profile quilt]\ncredential_process  =  {CP}\nregion:us-west-2\n",
        id="same-value-other-spacing",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\nCredential_Process = /old\n",
        f"[profile quilt]\ncredential_process = {CP}\nregion = us-east-1\n",
        id="key-case",
    ),
    pytest.param(
        "default",
        "[default]\nregion = eu-west-1\n\n[profile quilt]\nregion = x\n",
        f"[default]\nregion = eu-west-1\ncredential_process = {CP}\n\n"
        "[profile quilt]\nregion = x\n",
        id="default",
    ),
    pytest.param(
        "default",
        "[profile quilt]\nregion = x\n",
        "[profile quilt]\nregion = x\n\n"
        f"[default]\ncredential_process = {CP}\nregion = us-east-1\n",
        id="default-new",
    ),
    pytest.param(
        "default",
        "[profile default]\nregion = eu-west-1\n",
        f"[profile default]\nregion = eu-west-1\ncredential_process = {CP}\n",
        id="default-spelled-as-profile",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\r\ncredential_process = /old\r\n\r\n[default]\r\nregion = x\r\n",
        f"[profile quilt]\r\ncredential_process = {CP}\r\nregion = us-east-1\r\n\r\n"
        "[default]\r\nregion = x\r\n",
        id="crlf-update",
    ),
    pytest.param(
        "quilt",
        "[default]\r\nregion = x\r\n",
        "[default]\r\nregion = x\r\n\r\n" + NEW.replace("\n", "\r\n"),
        id="crlf-new-section",
    ),
    pytest.param(
        "quilt",
        "[default]\r\nregion = x\r\noutput = json\n",
        "[default]\r\nregion = x\r\noutput = json\n\r\n" + NEW.replace("\n", "\r\n"),
        id="mixed-endings-use-dominant",
    ),
    pytest.param(
        "quilt",
        "[default]\nregion = x",
        "[default]\nregion = x\n\n" + NEW.rstrip("\n"),
        id="no-final-newline-new-section",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\ncredential_process = /old",
        f"[profile quilt]\ncredential_process = {CP}\nregion = us-east-1",
        id="no-final-newline-insert-after-last-line",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\r\ncredential_process = /old\r\n\r\n[default]\r\nregion = x",
        f"[profile quilt]\r\ncredential_process = {CP}\r\nregion = us-east-1\r\n\r\n"
        "[default]\r\nregion = x",
        id="no-final-newline-elsewhere-crlf",
    ),
    pytest.param(
        "quilt",
        "# Grüße, 日本\n[profile quilt]\n# café ☕\nregion = eu-west-1\n",
        "# Grüße, 日本\n[profile quilt]\n# café ☕\nregion = eu-west-1\n"
        f"credential_process = {CP}\n",
        id="utf8-content",
    ),
    pytest.param(
        "quilt",
        "[profile  a ]\nregion = x\n[ profile b]\n[profile\tc]\n[d] trailing text\n",
        "[profile  a ]\nregion = x\n[ profile b]\n[profile\tc]\n[d] trailing text\n\n" + NEW,
        id="odd-headers-for-other-profiles",
    ),
    pytest.param(
        "quilt",
        "[DEFAULT]\nregion = a\n[profile a]\n[DEFAULT]\ncredential_process = b\n",
        "[DEFAULT]\nregion = a\n[profile a]\n[DEFAULT]\ncredential_process = b\n\n" + NEW,
        id="defaults-section-twice",
    ),
    pytest.param(
        "quilt",
        "[DEFAULT]\ns3 =\n  bad\n[profile quilt]\ns3 = 1\n",
        f"[DEFAULT]\ns3 =\n  bad\n[profile quilt]\ns3 = 1\ncredential_process = {CP}\n"
        "region = us-east-1\n",
        id="defaults-bad-block-not-inherited",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\n  output = json\n [default]\nregion = x\n",
        f"[profile quilt]\n  output = json\n credential_process = {CP}\n region = us-east-1\n"
        " [default]\nregion = x\n",
        id="indented-next-header",
    ),
    pytest.param(
        "quilt",
        "[profile quilt]\n# empty\n  [default]\n",
        f"[profile quilt]\n  credential_process = {CP}\n  region = us-east-1\n# empty\n"
        "  [default]\n",
        id="indented-next-header-empty-section",
    ),
]


def _config(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def _refused(path: Path, profile: str, settings: dict[str, str] | None = None) -> str:
    """Run an edit that must be refused; check nothing changed and return the message."""
    before = path.read_bytes()
    entries = _names(path.parent)
    with pytest.raises(AwsConfigError) as caught:
        set_profile(path, profile, SETTINGS if settings is None else settings)
    assert path.read_bytes() == before
    assert _names(path.parent) == entries
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(("profile", "before", "after"), CASES)
def test_only_our_lines_change(tmp_path: Path, profile: str, before: str, after: str) -> None:
    path = _config(tmp_path, before)
    set_profile(path, profile, SETTINGS)
    assert path.read_bytes() == after.encode()


@pytest.mark.parametrize(("profile", "before", "after"), CASES)
def test_second_run_changes_nothing(tmp_path: Path, profile: str, before: str, after: str) -> None:
    path = _config(tmp_path, before)
    set_profile(path, profile, SETTINGS)
    written = path.stat()
    set_profile(path, profile, SETTINGS)
    assert path.read_bytes() == after.encode()
    assert path.stat().st_ino == written.st_ino  # not even rewritten with the same bytes


@pytest.mark.parametrize(("profile", "before", "after"), CASES)
def test_botocore_reads_what_we_wrote(
    tmp_path: Path, profile: str, before: str, after: str
) -> None:
    path = _config(tmp_path, before)
    old: dict[str, Any] = load_config(str(path))
    set_profile(path, profile, SETTINGS)
    new: dict[str, Any] = load_config(str(path))
    kept = old["profiles"].pop(profile, {})
    written = new["profiles"].pop(profile)
    assert written["credential_process"] == CP
    assert written["region"] == (kept.get("region") or "us-east-1")
    for key in SETTINGS:
        kept.pop(key, None)
        written.pop(key)
    assert written == kept
    assert new == old


def test_byte_order_mark_is_refused(tmp_path: Path) -> None:
    # botocore decodes without utf-8-sig, so the mark glues itself to the first header.
    path = _config(tmp_path, codecs.BOM_UTF8 + b"[default]\nregion = x\n")
    with pytest.raises(ConfigParseError):
        raw_config_parse(str(path))
    message = _refused(path, "quilt")
    assert message.startswith(
        f"{path} line 1: the file starts with a byte order mark, {UNREADABLE}"
    )
    assert read_profiles(path) == [Profile("default", {"region": "x"})]


@pytest.mark.parametrize(
    ("keep_existing", "after"),
    [
        pytest.param(
            (), f"[profile quilt]\nregion = us-east-1\ncredential_process = {CP}\n", id="none"
        ),
        pytest.param(
            ("region", "credential_process"),
            "[profile quilt]\nregion = eu-west-1\ncredential_process = /mine\n",
            id="all",
        ),
    ],
)
def test_keep_existing(tmp_path: Path, keep_existing: tuple[str, ...], after: str) -> None:
    path = _config(tmp_path, "[profile quilt]\nregion = eu-west-1\ncredential_process = /mine\n")
    set_profile(path, "quilt", SETTINGS, keep_existing=keep_existing)
    assert path.read_bytes() == after.encode()


UNREADABLE = "so the AWS tools cannot read the file as it is"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            "region = x\n[profile quilt]\n", "line 1: text before", id="text-before-header"
        ),
        pytest.param(
            "\n# fine\n  stray\n[profile quilt]\n", "line 3: text before", id="indented-text-before"
        ),
        pytest.param(
            "[profile quilt]\nregion = a\n\n[profile quilt]\noutput = json\n",
            "lines 1 and 4: [profile quilt] appears twice",
            id="duplicate-section",
        ),
        pytest.param(
            "[profile a]\n[sso-session s]\n[profile a]\n",
            "lines 1 and 3: [profile a] appears twice",
            id="duplicate-section-elsewhere",
        ),
        pytest.param(
            "[profile quilt]\nregion = a\noutput = json\nregion = b\n",
            "line 4: region is set twice in [profile quilt] (also line 2)",
            id="duplicate-key",
        ),
        pytest.param(
            "[profile quilt]\nregion = a\nREGION: b\n",
            "line 3: region is set twice in [profile quilt] (also line 2)",
            id="duplicate-key-other-case",
        ),
        pytest.param(
            "[profile a]\nregion = a\n[profile quilt]\n[profile b]\nRegion=b\nregion = c\n",
            "line 6: region is set twice in [profile b] (also line 5)",
            id="duplicate-key-elsewhere",
        ),
        pytest.param(
            "[DEFAULT]\nregion = a\n[profile a]\n[DEFAULT]\nregion = b\n",
            "line 5: region is set twice in [DEFAULT] (also line 2)",
            id="duplicate-key-across-defaults",
        ),
        pytest.param(
            "[profile quilt]\nregion = a\njust words\n",
            "line 3: not a 'key = value' line in [profile quilt]",
            id="not-key-value",
        ),
        pytest.param(
            "[profile quilt]\n[profile a]\nregion = a\n  more\nwords\n",
            "line 5: not a 'key = value' line in [profile a]",
            id="not-key-value-elsewhere",
        ),
        pytest.param("[profile a]\n  = x\n", "line 2: a '= value' line without a key", id="no-key"),
        pytest.param(
            "[profile a]\ns3 =\n  addressing_style = path\n\n  signature_version: s3v4\n",
            "line 5: this line in the block under s3 in [profile a] has no =",
            id="block-line-without-equals",
        ),
        pytest.param(
            "[DEFAULT]\ns3 =\n  words\n[profile a]\nregion = x\n",
            "line 3: this line in the block under s3 in [DEFAULT] has no =",
            id="inherited-block-line-without-equals",
        ),
    ],
)
@pytest.mark.parametrize("profile", ["quilt", "default"])
def test_files_botocore_cannot_read_are_refused(
    tmp_path: Path, profile: str, content: str, expected: str
) -> None:
    path = _config(tmp_path, content)
    with pytest.raises(ConfigParseError):
        raw_config_parse(str(path))
    message = _refused(path, profile)
    assert message.startswith(f"{path} {expected}")
    assert UNREADABLE in message


def test_a_new_section_must_not_inherit_a_bad_block(tmp_path: Path) -> None:
    # Readable now, since every section has its own s3; ours would inherit [DEFAULT]'s.
    path = _config(tmp_path, "[DEFAULT]\ns3 =\n  words\n[profile a]\ns3 = x\n")
    load_config(str(path))
    message = _refused(path, "quilt")
    assert message.startswith(f"{path} line 3: this line in the block under s3 in [DEFAULT]")
    assert "could not read the file once [profile quilt] is added" in message
    path.write_bytes(
        b"[DEFAULT]\ncredential_process =\n  words\n[profile a]\ncredential_process=x\n"
    )
    set_profile(path, "quilt", SETTINGS)  # ours sets credential_process itself
    assert load_config(str(path))["profiles"]["quilt"]["credential_process"] == CP


@pytest.mark.parametrize(
    ("profile", "content", "expected"),
    [
        pytest.param(
            "default",
            "[default]\nregion = a\n[profile default]\nregion = b\n",
            "lines 1 and 3: profile default has two sections",
            id="default-in-both-spellings",
        ),
        pytest.param(
            "quilt",
            "[default]\n[ profile quilt ]\n",
            "line 2: the header [ profile quilt ] is ambiguous; write it as [profile quilt]",
            id="spaced-header",
        ),
        pytest.param(
            "quilt", "[profile  quilt ]\n", "line 1: the header", id="double-space-header"
        ),
        pytest.param("quilt", "[profile\tquilt]\n", "line 1: the header", id="tab-header"),
        pytest.param("quilt", '[profile "quilt"]\n', "line 1: the header", id="quoted-header"),
        pytest.param(
            "default", "[ default ]\n", "write it as [default]", id="spaced-default-header"
        ),
        pytest.param(
            "quilt",
            "[profile quilt]\nregion = a\n[profile  quilt]\n",
            "line 3: the header",
            id="ambiguous-second-header",
        ),
    ],
)
def test_refusals_leave_the_file_alone(
    tmp_path: Path, profile: str, content: str, expected: str
) -> None:
    # botocore reads these; it is the target section that we cannot edit without guessing.
    path = _config(tmp_path, content)
    load_config(str(path))
    message = _refused(path, profile)
    assert str(path) in message
    assert expected in message


def test_messages_never_quote_values(tmp_path: Path) -> None:
    path = _config(tmp_path, "[profile quilt]\naws_secret_access_key = s3cr3t\ns3cr3t s3cr3t\n")
    assert "s3cr3t" not in _refused(path, "quilt")


@pytest.mark.parametrize(
    ("profile", "settings"),
    [
        pytest.param("", SETTINGS, id="empty-profile"),
        pytest.param("two words", SETTINGS, id="profile-with-space"),
        pytest.param("a]b", SETTINGS, id="profile-with-bracket"),
        pytest.param('q"uote', SETTINGS, id="profile-with-quote"),
        pytest.param("-x", SETTINGS, id="profile-like-an-option"),
        pytest.param("quilt", {"credential_process": "a\nregion = evil"}, id="value-newline"),
        pytest.param("quilt", {"credential_process": "a\rb"}, id="value-carriage-return"),
        pytest.param("quilt", {"bad key": "x"}, id="key-with-space"),
        pytest.param("quilt", {"[x]": "x"}, id="key-header"),
    ],
)
def test_bad_requests_are_refused(tmp_path: Path, profile: str, settings: dict[str, str]) -> None:
    _refused(_config(tmp_path, "[default]\nregion = x\n"), profile, settings)


def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".aws" / "config"
    set_profile(path, "quilt", SETTINGS)
    assert path.read_bytes() == NEW.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, "[default]\n")
    path.chmod(0o444)
    assert f"read-only; to let setup edit it, run: chmod u+w {path}" in _refused(path, "quilt")
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640], ids=oct)
def test_existing_mode_is_kept(tmp_path: Path, mode: int) -> None:
    path = _config(tmp_path, "[default]\n")
    path.chmod(mode)
    set_profile(path, "quilt", SETTINGS)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("dangling", [False, True], ids=["to-file", "dangling"])
def test_symlink_is_refused(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "dotfiles" / "aws-config"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"[default]\nregion = x\n")
    link = tmp_path / "aws" / "config"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(AwsConfigError, match="symbolic link") as caught:
        set_profile(link, "quilt", SETTINGS)
    assert f"AWS_CONFIG_FILE={target}" in str(caught.value)
    assert link.is_symlink()
    assert dangling or target.read_bytes() == b"[default]\nregion = x\n"
    assert _names(link.parent) == ["config"]


def test_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    with pytest.raises(AwsConfigError, match="not a regular file"):
        set_profile(tmp_path / "config", "quilt", SETTINGS)


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = _config(tmp_path, b"[default]\nregion = \xff\n")
    assert "not UTF-8 (byte 19)" in _refused(path, "quilt")
    with pytest.raises(AwsConfigError, match="not UTF-8"):
        read_profiles(path)


def test_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "aws").write_bytes(b"not a folder")
    with pytest.raises(AwsConfigError, match="Not a directory"):
        set_profile(tmp_path / "aws" / "config", "quilt", SETTINGS)
    assert (tmp_path / "aws").read_bytes() == b"not a folder"


def test_failed_replace_leaves_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    path = _config(tmp_path, "[default]\n")
    monkeypatch.setattr(Path, "replace", fail)
    assert "Permission denied" in _refused(path, "quilt")


def test_interrupted_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    path = _config(tmp_path, "[default]\n")
    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        set_profile(path, "quilt", SETTINGS)
    assert path.read_bytes() == b"[default]\n"
    assert _names(tmp_path) == ["config"]


READ_SAMPLE = """\
stray text that botocore would refuse, ignored here
[default]
region = eu-west-1
s3 =
  max_concurrent_requests = 20

[profile quilt]
credential_process = /x/quilt-credproc --registry https://r
Region = us-east-1

[ profile spaced ]
region = not-a-profile-for-botocore

[profile  double ]
region = double-region

[sso-session corp]
sso_region = us-east-1

[profile "quoted"]
output = json

[profile quilt]
output = text
"""


def test_read_profiles(tmp_path: Path) -> None:
    assert read_profiles(_config(tmp_path, READ_SAMPLE)) == [
        Profile("default", {"region": "eu-west-1", "s3": ""}),
        Profile(
            "quilt",
            {
                "credential_process": "/x/quilt-credproc --registry https://r",
                "region": "us-east-1",
                "output": "text",
            },
        ),
        Profile("double", {"region": "double-region"}),
        Profile("quoted", {"output": "json"}),
    ]


def test_read_profiles_names_match_botocore(tmp_path: Path) -> None:
    # botocore refuses the sample's stray line and repeated section, so compare without them.
    lines = READ_SAMPLE.splitlines(keepends=True)[1:-3]
    path = _config(tmp_path, "".join(lines))
    names = [found.name for found in read_profiles(path)]
    assert names == list(load_config(str(path))["profiles"])


def test_missing_file_has_no_profiles(tmp_path: Path) -> None:
    assert read_profiles(tmp_path / "nothing") == []
    assert get_profile(tmp_path / "nothing", "quilt") is None


def test_get_profile(tmp_path: Path) -> None:
    path = _config(tmp_path, READ_SAMPLE)
    assert get_profile(path, "double") == Profile("double", {"region": "double-region"})
    assert get_profile(path, "spaced") is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, "home/.aws/config", id="default"),
        pytest.param({"AWS_CONFIG_FILE": ""}, "home/.aws/config", id="empty-means-default"),
        pytest.param({"AWS_CONFIG_FILE": "~/custom/config"}, "home/custom/config", id="tilde"),
        pytest.param({"AWS_CONFIG_FILE": "/etc/aws.conf"}, "/etc/aws.conf", id="absolute"),
    ],
)
def test_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path(environ) == tmp_path / expected


def test_config_path_reads_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws.conf"))
    assert config_path() == tmp_path / "aws.conf"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("default", "default"), ("quilt", "profile quilt"), ("profile", "profile profile")],
    ids=["default", "named", "named-profile"],
)
def test_section_name(profile: str, expected: str) -> None:
    assert section_name(profile) == expected


# A small grammar of AWS config lines. Odd spacing is only ever given to other profiles' headers:
# for our own, set_profile refuses what botocore reads, so the two are not meant to agree there.
OUR_HEADERS = ["[default]", "[profile default]", "[profile quilt]", "[profile quilt] ; mine"]
OTHER_HEADERS = [
    "[profile a]",
    "[profile  a ]",
    "[profile\ta]",
    "[ profile b]",
    "[sso-session corp]",
    "[services local]",
    "[DEFAULT]",
    "[a] trailing text",
    "[A]",
]
INDENTS = ["", "", " ", "  ", "\t"]
KEYS = ["region", "Region", "credential_process", "CREDENTIAL_PROCESS", "s3", "output"]
KEYS += ["role_arn", "sso_session", "mfa_serial", "duration_seconds", "source_profile"]
DELIMITERS = [" = ", "=", ": ", ":", " =", "  =  "]
VALUES = ["us-west-2", "json", "", "x = y", "a:b", "v # not a comment", "[x]"]
BLOCK_LINES = [
    "  max_concurrent_requests = 20",
    "    addressing_style = path",
    "\tsignature_version=s3v4",
    "  = bare",
    "  # in a block",
    "",
]
# botocore splits a block with str.splitlines, which also breaks at \v, \f, \x1c to \x1e and \x85.
BAD_BLOCK_LINES = ["  addressing_style: path", "  words", "  k = v\x0bwords", "  k = v\x85w"]
OTHER_LINES = ["# comment", "; comment", "   # indented", "", "  "]
GARBAGE = ["just words", "  indented words", "= nameless", ": nameless", "[]", "[profile a"]
OURS = {"credential_process": "/bin/quilt-credproc --registry https://r", "region": "r"}


def _now_and_then(draw: st.DrawFn, odds: int) -> bool:
    """True one time in `odds`: for the faults, so that most files are still readable."""
    return draw(st.integers(0, odds - 1)) == 0


@st.composite
def sections(draw: st.DrawFn, header: str) -> list[str]:
    """A header and its settings, with comments and blank lines, and now and then a fault."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=3, unique_by=str.lower))
    if keys and _now_and_then(draw, 8):
        keys.append(draw(st.sampled_from(keys)).upper())
    lines = [draw(st.sampled_from(INDENTS)) + header]
    usual_indent = draw(st.sampled_from(INDENTS))
    for key in keys:
        lines += draw(st.lists(st.sampled_from(OTHER_LINES), max_size=1))
        if _now_and_then(draw, 12):
            lines.append(draw(st.sampled_from(GARBAGE)))
        indent = draw(st.sampled_from(INDENTS)) if _now_and_then(draw, 4) else usual_indent
        delimiter = draw(st.sampled_from(DELIMITERS))
        if _now_and_then(draw, 3):
            lines.append(f"{indent}{key}{delimiter}".rstrip())
            lines += draw(st.lists(st.sampled_from(BLOCK_LINES), min_size=1, max_size=3))
            if _now_and_then(draw, 4):
                lines.append(draw(st.sampled_from(BAD_BLOCK_LINES)))
        else:
            lines.append(f"{indent}{key}{delimiter}{draw(st.sampled_from(VALUES))}".rstrip())
    return lines


@st.composite
def aws_configs(draw: st.DrawFn) -> list[str]:
    """A config file as its lines, each with its line ending; the last may have none."""
    lines: list[str] = []
    if _now_and_then(draw, 6):
        lines += draw(st.lists(st.sampled_from(["region = x", *OTHER_LINES, *GARBAGE]), max_size=2))
    # Mostly one section of ours among the others, so that updating it is tried often.
    ours = draw(st.sampled_from([0, 1, 1, 1, 1, 2]))
    others = draw(st.lists(st.sampled_from(OTHER_HEADERS), max_size=3, unique=True))
    headers = others[:2]
    headers += draw(st.lists(st.sampled_from(OUR_HEADERS), min_size=ours, max_size=ours))
    headers += others[2:]
    if headers and _now_and_then(draw, 6):
        headers.append(draw(st.sampled_from(["[DEFAULT]", "[DEFAULT]", *headers])))  # it may
    for header in headers:
        lines += draw(sections(header))
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines)))
    lines = [line + ending for line, ending in zip(lines, endings)]
    open_end: bool = draw(st.booleans())
    if lines and open_end:
        lines[-1] = lines[-1].rstrip("\r\n")
    return lines


def _botocore_reads(path: Path) -> dict[str, Any] | None:
    try:
        return dict(raw_config_parse(str(path)))
    except ConfigParseError:
        return None


def _fresh_section(path: Path, before: bytes) -> dict[str, Any] | None:
    """How botocore reads a new section with only our keys added to `before` (None: it cannot)."""
    lines = "".join(f"{key} = {value}\n" for key, value in OURS.items())
    path.write_bytes(before + f"\n[quilt-fresh]\n{lines}".encode())
    read = _botocore_reads(path)
    return None if read is None else dict(read["quilt-fresh"])


def _header_on(lines: list[str], index: int) -> str | None:
    """The header configparser reads on line `index`, asking it with a probe header put there.

    An indented header-like line may instead continue the value above it.
    """
    match = configparser.RawConfigParser.SECTCRE.match(lines[index].strip())
    text = lines[index].rstrip("\r\n")
    indent = text[: len(text) - len(text.lstrip())]
    probe = [line.rstrip("\r\n") for line in lines[:index]] + [f"{indent}[quilt-probe]"]
    parser = configparser.RawConfigParser(strict=False)
    with contextlib.suppress(configparser.Error):
        parser.read_string("\n".join(probe))
    return match["header"] if match and parser.has_section("quilt-probe") else None


def _section_lines(lines: list[str], header: str) -> tuple[int, int] | None:
    """The first and one past the last line of the section botocore reads as [header]."""
    headers = [(index, _header_on(lines, index)) for index in range(len(lines))]
    starts = [(index, name) for index, name in headers if name is not None]
    for (start, name), end in zip(starts, [*(index for index, _ in starts[1:]), len(lines)]):
        if name == header:
            return start, end
    return None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(lines=aws_configs(), profile=st.sampled_from(["quilt", "default"]))
# Shapes the grammar reaches too seldom for 300 draws to be sure of them:
@example(["[profile a]\n", "s3 =\n", "  k = v\x0bwords\n"], "quilt")
@example(["[profile quilt]\n", "  region = old\n", "  output = json\n"], "quilt")
@example(["[DEFAULT]\n", "s3 =\n", "  words\n", "[profile a]\n", "s3 = 1\n"], "quilt")
@example(["[DEFAULT]\n", "region = a\n", "[profile a]\n", "[DEFAULT]\n", "output = b\n"], "quilt")
def test_refuses_exactly_what_botocore_cannot_read(lines: list[str], profile: str) -> None:
    before = "".join(lines).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _config(Path(folder), before)
        old = _botocore_reads(path)
        fresh = _fresh_section(Path(folder) / "fresh", before)
        headers = set(old or ())
        assume(profile != "default" or not {"default", "profile default"} <= headers)
        target = section_name(profile)
        if profile == "default" and "profile default" in headers:
            target = "profile default"
        try:
            set_profile(path, profile, OURS, keep_existing=())
        except AwsConfigError as exc:
            assert path.read_bytes() == before
            assert str(exc).startswith(f"{path} line")
            assert "the AWS tools c" in str(exc)  # cannot read it, or could not once ours is added
            # Past what botocore refuses, only a [DEFAULT] block our new section inherits counts.
            assert old is None or (target not in old and fresh is None)
            event("refused: botocore cannot read it" if old is None else "refused: [DEFAULT] block")
            return
        new = _botocore_reads(path)
        after = path.read_bytes()
    assert old is not None, "botocore cannot read the file we accepted"
    assert new is not None, "botocore cannot read the file we wrote"
    mine, theirs = new.pop(target), old.pop(target) if target in old else fresh
    assert theirs is not None, "botocore could not read a new section with our keys"
    assert {key: mine.pop(key) for key in OURS} == OURS
    assert mine == {key: value for key, value in theirs.items() if key not in OURS}
    assert new == old
    span = _section_lines(lines, target)
    event("written: new section" if span is None else "written: section changed")
    start, end = (len(lines), len(lines)) if span is None else span
    assert after.startswith("".join(lines[:start]).encode())
    assert after.endswith("".join(lines[end:]).encode())


def test_a_killed_writers_temp_file_is_cleared_away(tmp_path: Path) -> None:
    path = _config(tmp_path, "[default]\n")
    leftover = tmp_path / ".config.k3j2h1g0.tmp"
    leftover.write_text("[default]\n[profile half")
    unrelated = tmp_path / ".config.bak"
    unrelated.write_text("mine")
    set_profile(path, "quilt", SETTINGS)
    assert not leftover.exists()
    assert unrelated.read_text() == "mine"
